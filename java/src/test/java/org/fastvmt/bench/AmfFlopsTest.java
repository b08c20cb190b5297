package org.fastvmt.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.fastvmt.motion.AmfParams;
import org.fastvmt.motion.FramePairs;
import org.junit.jupiter.api.Test;

/** The FLOP accounting against hand counts. */
class AmfFlopsTest {

    /**
     * Wan shapes: T = 1560 tokens, 130 tiles, a 21×21 window, 441 full pairs; 78 FastVMT pairs of
     * which 21 have i == j. Every figure below is the formula multiplied out by hand.
     */
    @Test
    void wanShapesGiveTheIssuesTenAndAHalfFoldRatio() {
        AmfBenchShape wan = AmfBenchShape.wan();
        double self = 1560.0 * 1560 * 2 * 1536;                      // 7.4760192e9
        double crossForward = 130.0 * 1560 * 2 * 1536 + 1560.0 * 441 * 2 * 1536;
        double crossBackward = 1560.0 * 441 * 4 * 1536;
        assertEquals(441 * self, AmfFlops.fullForward(wan, wan.fullPairs()));
        assertEquals(3_296_924_467_200.0, AmfFlops.fullForward(wan, wan.fullPairs()));
        assertEquals(2 * 441 * self, AmfFlops.fullBackward(wan, wan.fullPairs()));
        assertEquals(21 * self + 57 * crossForward, AmfFlops.windowForward(wan, wan.windowPairs()));
        assertEquals(312_972_042_240.0, AmfFlops.windowForward(wan, wan.windowPairs()));
        assertEquals(21 * 2 * self + 57 * crossBackward, AmfFlops.windowBackward(wan, wan.windowPairs()));
        double ratio = AmfFlops.fullForward(wan, wan.fullPairs()) / AmfFlops.windowForward(wan, wan.windowPairs());
        assertEquals(10.53, ratio, 0.01);
    }

    /** A window larger than the frame along one axis covers that axis only (lh = min(l, H)). */
    @Test
    void theWindowIsClippedToTheFrame() {
        AmfBenchShape shape = new AmfBenchShape(2, 5, 40, 8, 2, AmfParams.defaults(2).withWindow(7));
        FramePairs pairs = FramePairs.of(2, new int[] {0, 1}, new float[] {1});
        double tokens = 5 * 40;
        double tiles = 2 * 10;
        assertEquals(tiles * tokens * 16 + tokens * (5 * 7) * 16, AmfFlops.windowForward(shape, pairs));
        assertEquals(tokens * (5 * 7) * 32, AmfFlops.windowBackward(shape, pairs));
        assertEquals(tokens * tokens * 16, AmfFlops.fullForward(shape, pairs));
    }

    /** A pair with i == j costs the windowed AMF as much as the full one. */
    @Test
    void selfPairsCostTheFullPrice() {
        AmfBenchShape shape = AmfBenchShape.of(3, 9, 12, 24);
        FramePairs selfOnly = FramePairs.of(3, new int[] {0, 0, 2, 2}, new float[] {1, 1});
        assertEquals(AmfFlops.fullForward(shape, selfOnly), AmfFlops.windowForward(shape, selfOnly));
        assertEquals(AmfFlops.fullBackward(shape, selfOnly), AmfFlops.windowBackward(shape, selfOnly));
    }
}
