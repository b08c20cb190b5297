package org.fastvmt.bench;

import org.fastvmt.motion.AmfParams;
import org.fastvmt.motion.FramePairs;

/**
 * The FLOP accounting of the AMF benchmarks (one multiply-add = 2 flops; only the Q·K and P·K
 * products are counted, the softmax and the expectation are not). With T = H·W tokens per frame:
 * <pre>
 * forward, per pair     full AMF, or windowed with i == j:  T² · 2C
 *                       windowed with i != j:               tiles · T · 2C   (pass 1: tile centres vs frame j)
 *                                                         + T · lh · lw · 2C (pass 2: every query vs its window)
 * backward, per pair    full AMF, or windowed with i == j:  T² · 4C
 *                       windowed with i != j:               T · lh · lw · 4C (pass 2 only; pass 1 has no gradient)
 * </pre>
 * tiles = ceil(H / tile_h) · ceil(W / tile_w), lh = min(l, H), lw = min(l, W).
 */
public final class AmfFlops {

    private AmfFlops() {
    }

    /** Flops of the full AMF forward over {@code pairs}. */
    public static double fullForward(AmfBenchShape shape, FramePairs pairs) {
        return pairs.count() * selfForward(shape);
    }

    /** Flops of the full AMF backward over {@code pairs}. */
    public static double fullBackward(AmfBenchShape shape, FramePairs pairs) {
        return 2 * fullForward(shape, pairs);
    }

    /** Flops of the windowed AMF forward over {@code pairs}. */
    public static double windowForward(AmfBenchShape shape, FramePairs pairs) {
        double tokens = tokens(shape);
        AmfParams params = shape.params();
        double tiles = (double) AmfParams.tilesAlong(shape.height(), params.tileHeight())
                * AmfParams.tilesAlong(shape.width(), params.tileWidth());
        double crossPair = tiles * tokens * 2.0 * shape.channels() + tokens * windowTokens(shape) * 2.0 * shape.channels();
        double selfPairs = selfPairs(pairs);
        return selfPairs * selfForward(shape) + (pairs.count() - selfPairs) * crossPair;
    }

    /** Flops of the windowed AMF backward over {@code pairs}. */
    public static double windowBackward(AmfBenchShape shape, FramePairs pairs) {
        double crossPair = tokens(shape) * windowTokens(shape) * 4.0 * shape.channels();
        double selfPairs = selfPairs(pairs);
        return selfPairs * 2 * selfForward(shape) + (pairs.count() - selfPairs) * crossPair;
    }

    /** T² · 2C: every token of one frame against every token of another. */
    private static double selfForward(AmfBenchShape shape) {
        double tokens = tokens(shape);
        return tokens * tokens * 2.0 * shape.channels();
    }

    private static double tokens(AmfBenchShape shape) {
        return (double) shape.height() * shape.width();
    }

    /** lh · lw. */
    private static double windowTokens(AmfBenchShape shape) {
        int window = shape.params().window();
        return (double) Math.min(window, shape.height()) * Math.min(window, shape.width());
    }

    private static int selfPairs(FramePairs pairs) {
        int count = 0;
        for (int p = 0; p < pairs.count(); p++) {
            if (pairs.queryFrame(p) == pairs.keyFrame(p)) {
                count++;
            }
        }
        return count;
    }
}
