package org.fastvmt.bench;

import org.fastvmt.model.wan.WanConfig;

/**
 * The FLOP accounting of the DiT benchmarks (a multiply-add is 2 flops; only the GEMMs and the
 * attention products are counted: norms, RoPE and elementwise ops are memory-bound and left
 * out). One Wan block at L video tokens and T text tokens, width d, FFN width f:
 * <ul>
 * <li>forward: token GEMMs 2·L·d·(4d + 2d + 2f) (self q, k, v, o; cross q, o; FFN), context
 * GEMMs 2·T·d·2d (cross k, v), attention 4·L²·d + 4·L·T·d (scores and P·V);</li>
 * <li>backward to the block input only (weights and text are constants, as in guidance): the
 * token GEMMs once more (dX), and the attention backward as the kernel runs it, 10·L·Lk·d
 * (recomputed scores, dV, dP, dQ, dK) for self- and cross-attention.</li>
 * </ul>
 */
public final class DitFlops {

    private DitFlops() {
    }

    /** Forward flops of one block. */
    public static double blockForward(WanConfig config, long tokens, long textTokens) {
        double d = config.dim();
        return tokenGemms(config, tokens) + 2.0 * textTokens * d * 2 * d
                + 4.0 * tokens * tokens * d + 4.0 * tokens * textTokens * d;
    }

    /** Backward flops of one block (to its input). */
    public static double blockBackward(WanConfig config, long tokens, long textTokens) {
        double d = config.dim();
        return tokenGemms(config, tokens) + 10.0 * tokens * tokens * d + 10.0 * tokens * textTokens * d;
    }

    /** Flops of the fused attention forward: [q, heads·d] against [kv, heads·d]. */
    public static double attentionForward(long qTokens, long kvTokens, long width) {
        return 4.0 * qTokens * kvTokens * width;
    }

    /** Flops of the fused attention backward, recomputing the scores. */
    public static double attentionBackward(long qTokens, long kvTokens, long width) {
        return 10.0 * qTokens * kvTokens * width;
    }

    private static double tokenGemms(WanConfig config, long tokens) {
        double d = config.dim();
        return 2.0 * tokens * d * (6 * d + 2.0 * config.ffnDim());
    }
}
