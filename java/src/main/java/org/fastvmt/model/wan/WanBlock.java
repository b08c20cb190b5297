package org.fastvmt.model.wan;

import java.util.function.Consumer;

import org.fastvmt.tensor.Graph;
import org.fastvmt.tensor.Ops;
import org.fastvmt.tensor.Tensor;

/**
 * One transformer block of the Wan2.1 DiT ({@code WanAttentionBlock}, text-to-video), as ops on
 * a {@link Graph}: differentiable when the graph records, and frugal when it does not (then every
 * intermediate is freed as soon as it has been used, so an inference pass holds about one block's
 * widest activations at a time).
 *
 * <pre>
 *   m = modulation [6, dim] + e0                    (shift, scale, gate)_msa, (shift, scale, gate)_mlp
 *   h = LayerNorm(x)·(1 + m1) + m0                  no affine
 *   q = rope(RMSNorm(q(h))), k = rope(RMSNorm(k(h))), v = v(h)     RMSNorm over the full dim
 *   x = x + m2 · o(attention(q, k, v))
 *   x = x + cross_o(attention(RMSNorm(cross_q(norm3(x))), RMSNorm(cross_k(ctx)), cross_v(ctx)))
 *   x = x + m5 · ffn(LayerNorm(x)·(1 + m4) + m3)    ffn = Linear → GELU(tanh) → Linear
 * </pre>
 * (Wan-Video/Wan2.1 {@code wan/modules/model.py}; eps = config.eps everywhere, RoPE θ =
 * config.ropeTheta over the token grid.)
 */
public final class WanBlock {

    /** The self-attention query and key of a block, after RMSNorm and RoPE: [tokens, dim] each. */
    public record QueryKey(Tensor q, Tensor k) {
    }

    private WanBlock() {
    }

    /**
     * Block {@code index} applied to the hidden states {@code x} [grid.tokens(), dim]; returns the
     * new hidden states, a tensor of {@code ops}' graph. {@code x} itself is never freed.
     */
    public static Tensor forward(Ops ops, WanWeights weights, int index, Tensor x, WanConditioning conditioning,
            TokenGrid grid) {
        return forward(ops, weights, index, x, conditioning, grid, null);
    }

    /**
     * {@link #forward} that also shows the self-attention query and key to {@code observer} (when
     * not null) while they exist: it must copy what it wants to keep.
     */
    static Tensor forward(Ops ops, WanWeights weights, int index, Tensor x, WanConditioning conditioning,
            TokenGrid grid, Consumer<QueryKey> observer) {
        Parts parts = new Parts(ops, weights, index, x, conditioning, grid);
        Tensor modulation = parts.modulation();
        Tensor attended = parts.selfAttention(modulation, observer);
        Tensor x1 = ops.gatedResidual(x, attended, parts.chunk(modulation, 2));
        parts.release(attended);
        Tensor x2 = parts.crossAttention(x1);
        parts.release(x1);
        Tensor ffn = parts.feedForward(x2, modulation);
        Tensor x3 = ops.gatedResidual(x2, ffn, parts.chunk(modulation, 5));
        parts.release(ffn, x2, modulation);
        return x3;
    }

    /**
     * Block {@code index} up to its self-attention query and key (after RMSNorm and RoPE), the
     * tensors the attention motion flow is read from; nothing after them is computed.
     */
    public static QueryKey queryKey(Ops ops, WanWeights weights, int index, Tensor x, WanConditioning conditioning,
            TokenGrid grid) {
        Parts parts = new Parts(ops, weights, index, x, conditioning, grid);
        Tensor modulation = parts.modulation();
        Tensor h = parts.modulatedNorm(x, modulation, 0, 1);
        QueryKey qk = parts.queryKey(h);
        parts.release(h, modulation);
        return qk;
    }

    /** The block's weights and inputs, and the steps of its forward. */
    private static final class Parts {

        private final Ops ops;
        private final Graph graph;
        private final WanWeights weights;
        private final WanConfig config;
        private final String prefix;
        private final Tensor x;
        private final WanConditioning conditioning;
        private final TokenGrid grid;

        Parts(Ops ops, WanWeights weights, int index, Tensor x, WanConditioning conditioning, TokenGrid grid) {
            this.ops = ops;
            this.graph = ops.graph();
            this.weights = weights;
            this.config = weights.config();
            if (index < 0 || index >= config.layers()) {
                throw new IllegalArgumentException("block index must be in [0, " + config.layers() + ") for the "
                        + config.name() + " model, got " + index);
            }
            if (conditioning.config().dim() != config.dim() || conditioning.backend() != weights.backend()) {
                throw new IllegalArgumentException("conditioning was computed for another model or backend: "
                        + conditioning);
            }
            if (x.rank() != 2 || x.dim(0) != grid.tokens() || x.dim(1) != config.dim()) {
                throw new IllegalArgumentException("x must be [" + grid.tokens() + ", " + config.dim()
                        + "] (the hidden states of " + grid + "), got " + x);
            }
            this.prefix = "blocks." + index + ".";
            this.x = x;
            this.conditioning = conditioning;
            this.grid = grid;
        }

        Tensor weight(String name) {
            return weights.get(prefix + name);
        }

        /** blocks.i.modulation [1, 6, dim] + e0 [1, 6·dim], as [6, dim]. */
        Tensor modulation() {
            int dim = config.dim();
            return ops.add(weight("modulation").view(6, dim), conditioning.e0().view(6, dim));
        }

        Tensor chunk(Tensor modulation, int n) {
            return modulation.slice((long) n * config.dim(), config.dim());
        }

        /** LayerNorm (no affine) of {@code input}, modulated by chunks {@code shift} and {@code scale}. */
        Tensor modulatedNorm(Tensor input, Tensor modulation, int shift, int scale) {
            Tensor normed = ops.layerNorm(input, null, null, config.eps());
            Tensor h = ops.modulate(normed, chunk(modulation, shift), chunk(modulation, scale));
            release(normed);
            return h;
        }

        Tensor linear(Tensor input, String name) {
            return ops.linear(input, weight(name + ".weight"), weight(name + ".bias"));
        }

        /** RMSNorm(projection(input)) with the attention's norm_q or norm_k. */
        Tensor normedProjection(Tensor input, String attention, String projection) {
            Tensor projected = linear(input, attention + "." + projection);
            Tensor normed = ops.rmsNorm(projected, weight(attention + ".norm_" + projection + ".weight"),
                    config.eps());
            release(projected);
            return normed;
        }

        Tensor rope(Tensor input) {
            Tensor rotated = ops.rope3d(input, grid.frames(), grid.height(), grid.width(), config.heads(),
                    config.ropeTheta());
            release(input);
            return rotated;
        }

        QueryKey queryKey(Tensor h) {
            Tensor q = rope(normedProjection(h, "self_attn", "q"));
            Tensor k = rope(normedProjection(h, "self_attn", "k"));
            return new QueryKey(q, k);
        }

        /** o(attention(q, k, v)) of the modulated, normalised x (not yet gated). */
        Tensor selfAttention(Tensor modulation, Consumer<QueryKey> observer) {
            Tensor h = modulatedNorm(x, modulation, 0, 1);
            QueryKey qk = queryKey(h);
            if (observer != null) {
                observer.accept(qk);
            }
            Tensor v = linear(h, "self_attn.v");
            release(h);
            Tensor attended = ops.attention(qk.q(), qk.k(), v, config.heads());
            release(qk.q(), qk.k(), v);
            Tensor out = linear(attended, "self_attn.o");
            release(attended);
            return out;
        }

        /** input + cross_attn(norm3(input), context): a plain residual. */
        Tensor crossAttention(Tensor input) {
            Tensor normed = ops.layerNorm(input, weight("norm3.weight"), weight("norm3.bias"), config.eps());
            Tensor q = normedProjection(normed, "cross_attn", "q");
            release(normed);
            Tensor context = conditioning.context();
            Tensor k = normedProjection(context, "cross_attn", "k");
            Tensor v = linear(context, "cross_attn.v");
            Tensor attended = ops.attention(q, k, v, config.heads());
            release(q, k, v);
            Tensor out = linear(attended, "cross_attn.o");
            release(attended);
            Tensor sum = ops.gatedResidual(input, out, null);
            release(out);
            return sum;
        }

        /** ffn(LayerNorm(input)·(1 + m4) + m3) (not yet gated). */
        Tensor feedForward(Tensor input, Tensor modulation) {
            Tensor h = modulatedNorm(input, modulation, 3, 4);
            Tensor hidden = linear(h, "ffn.0");
            release(h);
            Tensor activated = ops.geluTanh(hidden);
            release(hidden);
            Tensor out = linear(activated, "ffn.2");
            release(activated);
            return out;
        }

        /** Frees intermediates at once when nothing is recorded (a recording graph keeps them for backward). */
        void release(Tensor... tensors) {
            if (graph.recording()) {
                return;
            }
            for (Tensor tensor : tensors) {
                graph.free(tensor);
            }
        }
    }
}
