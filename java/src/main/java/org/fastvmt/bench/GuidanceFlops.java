package org.fastvmt.bench;

import org.fastvmt.model.wan.WanConfig;
import org.fastvmt.motion.AmfParams;
import org.fastvmt.motion.FramePairs;

/**
 * The FLOP expectation of the guidance benchmark (GEMMs and attention products only, as
 * {@link DitFlops} and {@link AmfFlops} count them; losses, norms and AdamW are memory-bound and
 * left out). Per guided step, with b = the AMF block, fwd/bwd = one block's forward/backward:
 * <ul>
 * <li>reference AMF: the truncated forward b · fwd, then the AMF forward;</li>
 * <li>a fresh gradient: the truncated forward b · fwd, the AMF forward and backward, and the
 * DiT backward, which recomputes each block's forward before its backward: b · (fwd + bwd);</li>
 * <li>a reused iteration: only the AdamW step;</li>
 * <li>denoising: two full forwards, 2 · layers · fwd.</li>
 * </ul>
 * The truncated block's own q/k projections are a few percent of a block and are left out.
 * fastvmt computes a fresh gradient at iterations i with i % interval == 0 (4 of 10 for interval 3)
 * with the windowed AMF over the pairs j in [i, i+sf); ditflow one every iteration with the full
 * AMF over all pairs. With the AMF negligible, the DiT work alone bounds the speedup by
 * iterations / fresh (2.5 for 10 and 3); the windowed AMF adds to it as far as the AMF matters.
 */
public final class GuidanceFlops {

    private GuidanceFlops() {
    }

    /** Fresh gradients among {@code iterations} with a fresh one when i % interval == 0. */
    public static int freshGradients(int iterations, int interval) {
        return (iterations + interval - 1) / interval;
    }

    /** Flops of the guidance of one step (reference AMF and the iterations), without denoising. */
    public static double guidanceStep(GuidanceBenchShape shape, boolean windowed, int iterations, int interval) {
        WanConfig config = shape.config();
        long tokens = shape.tokens();
        double fwd = DitFlops.blockForward(config, tokens, config.textLength());
        double bwd = DitFlops.blockBackward(config, tokens, config.textLength());
        AmfBenchShape amf = new AmfBenchShape(shape.tokenFrames(), shape.tokenHeight(), shape.tokenWidth(),
                config.dim(), AmfBenchShape.DEFAULT_SF, AmfParams.defaults(config.heads()));
        double amfForward;
        double amfBackward;
        if (windowed) {
            FramePairs pairs = FramePairs.forward(amf.frames(), amf.sf());
            amfForward = AmfFlops.windowForward(amf, pairs);
            amfBackward = AmfFlops.windowBackward(amf, pairs);
        } else {
            FramePairs pairs = FramePairs.all(amf.frames());
            amfForward = AmfFlops.fullForward(amf, pairs);
            amfBackward = AmfFlops.fullBackward(amf, pairs);
        }
        int b = shape.amfBlock();
        double reference = b * fwd + amfForward;
        double fresh = b * fwd + amfForward + amfBackward + b * (fwd + bwd);
        return reference + freshGradients(iterations, interval) * fresh;
    }

    /** Flops of the denoising of one step (two full forwards for classifier-free guidance). */
    public static double denoisingStep(GuidanceBenchShape shape) {
        WanConfig config = shape.config();
        return 2.0 * config.layers() * DitFlops.blockForward(config, shape.tokens(), config.textLength());
    }
}
