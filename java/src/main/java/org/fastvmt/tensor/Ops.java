package org.fastvmt.tensor;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import org.fastvmt.backend.Backend;
import org.fastvmt.nativeabi.FastVmtH;
import org.fastvmt.nativeabi.FastVmtLibrary;

/**
 * The layers of the Wan2.1 DiT as differentiable ops on one {@link Graph}: each runs its forward
 * on the graph's backend (fastvmt.h kernels, GEMMs through {@link Backend#gemm}), returns a new
 * fp32 tensor owned by the graph and, when the graph records and an input needs a gradient,
 * records its backward, which accumulates gradients into every input that needs one (weights,
 * biases and norm parameters included).
 *
 * <p>Activations are fp32, row-major [rows, cols]; per-column vectors (bias, gamma, shift, ...)
 * are any fp32 tensor of cols elements. Shapes are checked here, before any native call, with
 * messages naming the argument; a kernel's own refusal surfaces as a NativeCallException.
 */
public final class Ops {

    private final Graph graph;
    private final Backend backend;
    private final FastVmtLibrary library;
    private final FastVmtH h;

    /** The widest attention head every build takes (Wan: 128; fastvmt.h, fvmt_attention_forward). */
    public static final int MAX_ATTENTION_HEAD_DIM = 256;

    public Ops(Graph graph) {
        this.graph = graph;
        this.backend = graph.backend();
        this.library = backend.library();
        this.h = library.h();
    }

    public Graph graph() {
        return graph;
    }

    /** y [rows, out] = x [rows, in] · weight^T + bias; weight [out, in] is F32 or BF16, bias [out] or null. */
    public Tensor linear(Tensor x, Tensor weight, Tensor bias) {
        requireMatrix(x, "x");
        requireOnBackend(weight, "weight");
        if (weight.rank() != 2 || weight.dim(1) != x.dim(1)) {
            throw new IllegalArgumentException("linear: weight must be [out, " + x.dim(1) + "] (x is "
                    + shape(x) + "), got " + shape(weight));
        }
        if (weight.dtype() == DType.I32) {
            throw new IllegalArgumentException("linear: weight must be F32 or BF16, got " + weight.dtype());
        }
        int rows = intRows(x, "x");
        int in = (int) x.dim(1);
        int out = dimension(weight.dim(0), "the rows of weight");
        requireVector(bias, out, "bias", true);
        int weightDtype = weight.dtype().nativeCode();
        Tensor y = graph.newTensor(rows, out);
        backend.gemm(false, true, rows, out, in, 1f, x.segment(), weight.segment(), weightDtype, 0f, y.segment());
        if (bias != null) {
            check(h.fvmt_bias_add_forward(y.segment(), bias.segment(), rows, out, y.segment(), stream()));
        }
        record("linear", y, dy -> {
            try (GradientTargets g = graph.gradientTargets(x, weight, bias)) {
                if (g.wanted(0)) { // dx [rows, in] += dy [rows, out] · weight [out, in]
                    backend.gemm(false, false, rows, in, out, 1f, dy.segment(), weight.segment(), weightDtype, 1f,
                            g.segment(0));
                }
                if (g.wanted(1)) { // dweight [out, in] += dy^T · x
                    backend.gemm(true, false, out, in, rows, 1f, dy.segment(), x.segment(), FastVmtH.FVMT_DTYPE_F32,
                            1f, g.segment(1));
                }
                if (g.wanted(2)) {
                    long bytes = h.fvmt_column_reduction_workspace_bytes(rows, out);
                    check(h.fvmt_bias_add_backward(dy.segment(), rows, out, g.segment(2), backend.workspace(bytes),
                            bytes, stream()));
                }
            }
        }, x, weight, bias);
        return y;
    }

    /**
     * LayerNorm over each row of x [rows, cols] (biased variance), then · gamma + beta when both
     * are given ([cols] each); both null: no affine.
     */
    public Tensor layerNorm(Tensor x, Tensor gamma, Tensor beta, float eps) {
        requireMatrix(x, "x");
        if ((gamma == null) != (beta == null)) {
            throw new IllegalArgumentException("layerNorm: gamma and beta must both be given or both be null");
        }
        long rows = x.dim(0);
        int cols = (int) x.dim(1);
        requireVector(gamma, cols, "gamma", true);
        requireVector(beta, cols, "beta", true);
        requireEps(eps);
        Tensor y = graph.newTensor(rows, cols);
        check(h.fvmt_layer_norm_forward(x.segment(), segmentOrNull(gamma), segmentOrNull(beta), rows, cols, eps,
                y.segment(), stream()));
        record("layerNorm", y, dy -> {
            try (GradientTargets g = graph.gradientTargets(x, gamma, beta)) {
                long bytes = h.fvmt_column_reduction_workspace_bytes(rows, cols);
                check(h.fvmt_layer_norm_backward(x.segment(), segmentOrNull(gamma), dy.segment(), rows, cols, eps,
                        g.segment(0), g.segment(1), g.segment(2), backend.workspace(bytes), bytes, stream()));
            }
        }, x, gamma, beta);
        return y;
    }

    /** RMSNorm over each row of x [rows, cols]: x / sqrt(mean(x²) + eps) · weight ([cols], or null for 1). */
    public Tensor rmsNorm(Tensor x, Tensor weight, float eps) {
        requireMatrix(x, "x");
        long rows = x.dim(0);
        int cols = (int) x.dim(1);
        requireVector(weight, cols, "weight", true);
        requireEps(eps);
        Tensor y = graph.newTensor(rows, cols);
        check(h.fvmt_rms_norm_forward(x.segment(), segmentOrNull(weight), rows, cols, eps, y.segment(), stream()));
        record("rmsNorm", y, dy -> {
            try (GradientTargets g = graph.gradientTargets(x, weight)) {
                long bytes = h.fvmt_column_reduction_workspace_bytes(rows, cols);
                check(h.fvmt_rms_norm_backward(x.segment(), segmentOrNull(weight), dy.segment(), rows, cols, eps,
                        g.segment(0), g.segment(1), backend.workspace(bytes), bytes, stream()));
            }
        }, x, weight);
        return y;
    }

    /** x [rows, cols] · (1 + scale) + shift, with shift and scale [cols]. */
    public Tensor modulate(Tensor x, Tensor shift, Tensor scale) {
        requireMatrix(x, "x");
        long rows = x.dim(0);
        int cols = (int) x.dim(1);
        requireVector(shift, cols, "shift", false);
        requireVector(scale, cols, "scale", false);
        Tensor y = graph.newTensor(rows, cols);
        check(h.fvmt_modulate_forward(x.segment(), shift.segment(), scale.segment(), rows, cols, y.segment(),
                stream()));
        record("modulate", y, dy -> {
            try (GradientTargets g = graph.gradientTargets(x, shift, scale)) {
                long bytes = h.fvmt_column_reduction_workspace_bytes(rows, cols);
                check(h.fvmt_modulate_backward(x.segment(), scale.segment(), dy.segment(), rows, cols, g.segment(0),
                        g.segment(1), g.segment(2), backend.workspace(bytes), bytes, stream()));
            }
        }, x, shift, scale);
        return y;
    }

    /** x + gate · y for x, y [rows, cols] and gate [cols]; a null gate is 1 (a residual add). */
    public Tensor gatedResidual(Tensor x, Tensor y, Tensor gate) {
        requireMatrix(x, "x");
        requireOnBackend(y, "y");
        if (!Arrays.equals(y.shape(), x.shape()) || y.dtype() != DType.F32) {
            throw new IllegalArgumentException("gatedResidual: y must be F32 " + shape(x) + " like x, got " + y);
        }
        long rows = x.dim(0);
        int cols = (int) x.dim(1);
        requireVector(gate, cols, "gate", true);
        return residual("gatedResidual", x, y, gate, rows, cols, x.shape());
    }

    /** a + b, for F32 tensors of one shape. */
    public Tensor add(Tensor a, Tensor b) {
        requireF32(a, "a");
        requireF32(b, "b");
        if (!Arrays.equals(a.shape(), b.shape())) {
            throw new IllegalArgumentException("add: b must have the shape of a " + shape(a) + ", got "
                    + shape(b));
        }
        if (a.elementCount() == 0) {
            throw new IllegalArgumentException("add: a must not be empty, got " + shape(a));
        }
        // An element-wise sum: any factorisation of the element count into rows · cols will do.
        int cols = a.rank() == 0 ? 1 : dimension(a.dim(a.rank() - 1), "the last dimension of a");
        return residual("add", a, b, null, a.elementCount() / cols, cols, a.shape());
    }

    private Tensor residual(String op, Tensor x, Tensor y, Tensor gate, long rows, int cols, long[] shape) {
        Tensor out = graph.newTensor(shape);
        check(h.fvmt_gated_residual_forward(x.segment(), y.segment(), segmentOrNull(gate), rows, cols,
                out.segment(), stream()));
        record(op, out, dOut -> {
            try (GradientTargets g = graph.gradientTargets(x, y, gate)) {
                long bytes = gate == null ? 0 : h.fvmt_column_reduction_workspace_bytes(rows, cols);
                check(h.fvmt_gated_residual_backward(y.segment(), segmentOrNull(gate), dOut.segment(), rows, cols,
                        g.segment(0), g.segment(1), g.segment(2), backend.workspace(bytes), bytes, stream()));
            }
        }, x, y, gate);
        return out;
    }

    /** GELU with PyTorch's tanh approximation, element-wise, any shape. */
    public Tensor geluTanh(Tensor x) {
        requireF32(x, "x");
        Tensor y = graph.newTensor(x.shape());
        check(h.fvmt_gelu_tanh_forward(x.segment(), x.elementCount(), y.segment(), stream()));
        record("geluTanh", y, dy -> {
            try (GradientTargets g = graph.gradientTargets(x)) {
                check(h.fvmt_gelu_tanh_backward(x.segment(), dy.segment(), x.elementCount(), g.segment(0), stream()));
            }
        }, x);
        return y;
    }

    /** SiLU x·sigmoid(x), element-wise, any shape. */
    public Tensor silu(Tensor x) {
        requireF32(x, "x");
        Tensor y = graph.newTensor(x.shape());
        check(h.fvmt_silu_forward(x.segment(), x.elementCount(), y.segment(), stream()));
        record("silu", y, dy -> {
            try (GradientTargets g = graph.gradientTargets(x)) {
                check(h.fvmt_silu_backward(x.segment(), dy.segment(), x.elementCount(), g.segment(0), stream()));
            }
        }, x);
        return y;
    }

    /**
     * Wan's 3D rotary embedding of x [tokens, heads·headDim] with tokens = frames·height·width in
     * (f, r, c) order; headDim is even (fastvmt.h fvmt_rope3d_forward has the frequencies).
     */
    public Tensor rope3d(Tensor x, int frames, int height, int width, int heads, float theta) {
        requireMatrix(x, "x");
        requirePositive(frames, "frames");
        requirePositive(height, "height");
        requirePositive(width, "width");
        requirePositive(heads, "heads");
        if (x.dim(0) != (long) frames * height * width) {
            throw new IllegalArgumentException("rope3d: x must have frames·height·width = " + frames + "·" + height
                    + "·" + width + " rows, got " + shape(x));
        }
        int headDim = headDim(x, heads, "x");
        if (headDim % 2 != 0) {
            throw new IllegalArgumentException("rope3d: the head dimension must be even, got " + headDim);
        }
        if (!(theta > 0 && Float.isFinite(theta))) {
            throw new IllegalArgumentException("rope3d: theta must be finite and positive, got " + theta);
        }
        Tensor y = graph.newTensor(x.shape());
        check(h.fvmt_rope3d_forward(x.segment(), frames, height, width, heads, headDim, theta, y.segment(), stream()));
        record("rope3d", y, dy -> {
            try (GradientTargets g = graph.gradientTargets(x)) {
                check(h.fvmt_rope3d_backward(dy.segment(), frames, height, width, heads, headDim, theta,
                        g.segment(0), stream()));
            }
        }, x);
        return y;
    }

    /**
     * Fused multi-head attention softmax(q·k^T / sqrt(d))·v per head, never materialising the
     * score matrix: q [sq, heads·d], k and v [sk, heads·d] → [sq, heads·d]. The backward
     * recomputes the probabilities from q, k and the log-sum-exp rows kept by the forward.
     */
    public Tensor attention(Tensor q, Tensor k, Tensor v, int heads) {
        requireMatrix(q, "q");
        requireMatrix(k, "k");
        requireMatrix(v, "v");
        requirePositive(heads, "heads");
        int headDim = headDim(q, heads, "q");
        if (headDim > MAX_ATTENTION_HEAD_DIM) {
            throw new IllegalArgumentException("attention: the head width must be at most " + MAX_ATTENTION_HEAD_DIM
                    + " (the CUDA kernel keeps a head row in registers), got " + headDim);
        }
        if (k.dim(1) != q.dim(1)) {
            throw new IllegalArgumentException("attention: k must have " + q.dim(1) + " columns like q, got "
                    + shape(k));
        }
        if (!Arrays.equals(v.shape(), k.shape())) {
            throw new IllegalArgumentException("attention: v must have the shape of k " + shape(k) + ", got "
                    + shape(v));
        }
        int qTokens = intRows(q, "q");
        int kvTokens = intRows(k, "k");
        float scale = (float) (1.0 / Math.sqrt(headDim));
        Tensor out = graph.newTensor(q.shape());
        Tensor lse = Tensor.zeros(backend, DType.F32, heads, qTokens);
        boolean recorded = false;
        try {
            long bytes = h.fvmt_attention_workspace_bytes(qTokens, kvTokens, heads, headDim);
            check(h.fvmt_attention_forward(q.segment(), k.segment(), v.segment(), qTokens, kvTokens, heads, headDim,
                    scale, out.segment(), lse.segment(), backend.workspace(bytes), bytes, stream()));
            recorded = record("attention", out, dOut -> {
                try (GradientTargets g = graph.gradientTargets(q, k, v)) {
                    long backwardBytes = h.fvmt_attention_workspace_bytes(qTokens, kvTokens, heads, headDim);
                    // The kernel writes all three gradients: one not wanted goes to a discarded temporary.
                    check(h.fvmt_attention_backward(q.segment(), k.segment(), v.segment(), out.segment(),
                            lse.segment(), dOut.segment(), qTokens, kvTokens, heads, headDim, scale,
                            g.required(0, q.shape()), g.required(1, k.shape()), g.required(2, v.shape()),
                            backend.workspace(backwardBytes), backwardBytes, stream()));
                }
            }, q, k, v);
        } finally {
            if (recorded) {
                graph.own(lse);
            } else {
                lse.close();
            }
        }
        return out;
    }

    /** Wan's sinusoidal embedding [count, dim] (cos half, then sin half) of the timesteps t [count]. */
    public Tensor timestepEmbedding(Tensor t, int dim) {
        requireF32(t, "t");
        int count = dimension(t.elementCount(), "the element count of t");
        if (dim < 2 || dim % 2 != 0) {
            throw new IllegalArgumentException("timestepEmbedding: dim must be even and >= 2, got " + dim);
        }
        Tensor out = graph.newTensor(count, dim);
        check(h.fvmt_timestep_embedding_forward(t.segment(), count, dim, out.segment(), stream()));
        record("timestepEmbedding", out, dOut -> {
            try (GradientTargets g = graph.gradientTargets(t)) {
                check(h.fvmt_timestep_embedding_backward(t.segment(), count, dim, dOut.segment(), g.segment(0),
                        stream()));
            }
        }, t);
        return out;
    }

    /**
     * latent [channels, frames, height, width] → tokens [(frames/pt)·(height/ph)·(width/pw),
     * channels·pt·ph·pw], tokens in (f, r, c) order, features in {@code layout} order.
     */
    public Tensor patchify(Tensor latent, int pt, int ph, int pw, PatchLayout layout) {
        requireF32(latent, "latent");
        if (latent.rank() != 4) {
            throw new IllegalArgumentException("patchify: latent must be [channels, frames, height, width], got "
                    + shape(latent));
        }
        int channels = dimension(latent.dim(0), "channels");
        int frames = dimension(latent.dim(1), "frames");
        int height = dimension(latent.dim(2), "height");
        int width = dimension(latent.dim(3), "width");
        long[] tokenShape = tokenShape(channels, frames, height, width, pt, ph, pw, layout);
        Tensor tokens = graph.newTensor(tokenShape);
        check(h.fvmt_patchify(latent.segment(), channels, frames, height, width, pt, ph, pw, layout.nativeCode(),
                tokens.segment(), stream()));
        record("patchify", tokens, dTokens -> {
            // The inverse permutation writes its output: permute into a temporary, then accumulate.
            try (GradientTargets g = graph.gradientTargets(latent);
                    Tensor permuted = Tensor.zeros(backend, DType.F32, latent.shape())) {
                check(h.fvmt_unpatchify(dTokens.segment(), channels, frames, height, width, pt, ph, pw,
                        layout.nativeCode(), permuted.segment(), stream()));
                check(h.fvmt_add_scaled(permuted.segment(), 1f, g.segment(0), permuted.elementCount(), stream()));
            }
        }, latent);
        return tokens;
    }

    /** The inverse of {@link #patchify}: tokens → latent [channels, frames, height, width]. */
    public Tensor unpatchify(Tensor tokens, int channels, int frames, int height, int width, int pt, int ph, int pw,
            PatchLayout layout) {
        requireF32(tokens, "tokens");
        long[] tokenShape = tokenShape(channels, frames, height, width, pt, ph, pw, layout);
        if (!Arrays.equals(tokens.shape(), tokenShape)) {
            throw new IllegalArgumentException("unpatchify: tokens must be " + Arrays.toString(tokenShape)
                    + " for latent [" + channels + ", " + frames + ", " + height + ", " + width + "] and patch ("
                    + pt + ", " + ph + ", " + pw + "), got " + shape(tokens));
        }
        Tensor latent = graph.newTensor(channels, frames, height, width);
        check(h.fvmt_unpatchify(tokens.segment(), channels, frames, height, width, pt, ph, pw, layout.nativeCode(),
                latent.segment(), stream()));
        record("unpatchify", latent, dLatent -> {
            try (GradientTargets g = graph.gradientTargets(tokens);
                    Tensor permuted = Tensor.zeros(backend, DType.F32, tokenShape)) {
                check(h.fvmt_patchify(dLatent.segment(), channels, frames, height, width, pt, ph, pw,
                        layout.nativeCode(), permuted.segment(), stream()));
                check(h.fvmt_add_scaled(permuted.segment(), 1f, g.segment(0), permuted.elementCount(), stream()));
            }
        }, tokens);
        return latent;
    }

    // ------------------------------------------- text encoder ops (forward only)

    /**
     * a · b element-wise, for F32 tensors of one shape (T5's gated-GELU feed-forward). Forward
     * only: refused on a recording graph where a or b needs a gradient.
     */
    public Tensor mul(Tensor a, Tensor b) {
        requireF32(a, "a");
        requireF32(b, "b");
        if (!Arrays.equals(a.shape(), b.shape())) {
            throw new IllegalArgumentException("mul: b must have the shape of a " + shape(a) + ", got " + shape(b));
        }
        requireForwardOnly("mul", a, b);
        Tensor y = graph.newTensor(a.shape());
        check(h.fvmt_mul_forward(a.segment(), b.segment(), a.elementCount(), y.segment(), stream()));
        return y;
    }

    /**
     * The rows of {@code table} [vocab, dim] (F32 or BF16) at {@code ids} (an I32 tensor of any
     * shape, count elements) as an F32 [count, dim] tensor. An id outside [0, vocab) is refused by
     * the kernel (a NativeCallException naming its position). Forward only.
     */
    public Tensor embedding(Tensor ids, Tensor table) {
        requireOnBackend(ids, "ids");
        requireOnBackend(table, "table");
        if (ids.dtype() != DType.I32 || ids.elementCount() < 1) {
            throw new IllegalArgumentException("embedding: ids must be a non-empty I32 tensor, got " + ids);
        }
        if (table.rank() != 2 || table.dim(0) < 1 || table.dim(1) < 1 || table.dtype() == DType.I32) {
            throw new IllegalArgumentException("embedding: table must be an F32 or BF16 matrix [vocab, dim], got "
                    + table);
        }
        requireForwardOnly("embedding", table);
        int count = dimension(ids.elementCount(), "the element count of ids");
        int vocab = dimension(table.dim(0), "the rows (vocab) of table");
        int dim = dimension(table.dim(1), "the columns (dim) of table");
        Tensor out = graph.newTensor(count, dim);
        long bytes = h.fvmt_embedding_workspace_bytes();
        check(h.fvmt_embedding_forward(ids.segment(), count, table.segment(), table.dtype().nativeCode(), vocab, dim,
                out.segment(), backend.workspace(bytes), bytes, stream()));
        return out;
    }

    /** {@link #embedding(Tensor, Tensor)} of host ids, checked against the table's vocab here first. */
    public Tensor embedding(int[] ids, Tensor table) {
        if (ids == null || ids.length == 0) {
            throw new IllegalArgumentException("embedding: ids must hold at least one id");
        }
        requireOnBackend(table, "table");
        if (table.rank() != 2) {
            throw new IllegalArgumentException("embedding: table must be a matrix [vocab, dim], got " + table);
        }
        for (int t = 0; t < ids.length; t++) {
            if (ids[t] < 0 || ids[t] >= table.dim(0)) {
                throw new IllegalArgumentException("embedding: ids[" + t + "] = " + ids[t] + " is outside [0, vocab="
                        + table.dim(0) + ")");
            }
        }
        try (Tensor device = Tensor.ofInts(backend, ids, ids.length)) {
            return embedding(device, table);
        }
    }

    /**
     * T5's multi-head attention, forward only: per head h, out_i = Σ_j softmax_j(scale · q_i·k_j +
     * relBias[h, j − i + sq − 1]) v_j over the keys j with keyMask[j] ≠ 0, for q [sq, heads·d] and
     * k, v [sk, heads·d] (F32); relBias F32 [heads, sq + sk − 1] or null (no bias), keyMask I32
     * [sk] or null (every key). T5 passes scale 1 (its scores are not divided by √d). A query
     * with every key masked gets zeros. Any head width on the cpu build, at most 4096 on CUDA.
     */
    public Tensor relativeAttention(Tensor q, Tensor k, Tensor v, Tensor relBias, Tensor keyMask, int heads,
            float scale) {
        requireMatrix(q, "q");
        requireMatrix(k, "k");
        requireMatrix(v, "v");
        requirePositive(heads, "heads");
        int headDim = headDim(q, heads, "q");
        if (k.dim(1) != q.dim(1)) {
            throw new IllegalArgumentException("relativeAttention: k must have " + q.dim(1) + " columns like q, got "
                    + shape(k));
        }
        if (!Arrays.equals(v.shape(), k.shape())) {
            throw new IllegalArgumentException("relativeAttention: v must have the shape of k " + shape(k) + ", got "
                    + shape(v));
        }
        int qTokens = intRows(q, "q");
        int kvTokens = intRows(k, "k");
        if (relBias != null) {
            requireF32(relBias, "relBias");
            long positions = (long) qTokens + kvTokens - 1;
            if (relBias.elementCount() != heads * positions) {
                throw new IllegalArgumentException("relativeAttention: relBias must be [heads, q tokens + kv tokens - 1]"
                        + " = [" + heads + ", " + positions + "], got " + shape(relBias));
            }
        }
        if (keyMask != null) {
            requireOnBackend(keyMask, "keyMask");
            if (keyMask.dtype() != DType.I32 || keyMask.elementCount() != kvTokens) {
                throw new IllegalArgumentException("relativeAttention: keyMask must be I32 with one element per key ("
                        + kvTokens + "), got " + keyMask);
            }
        }
        if (!Float.isFinite(scale)) {
            throw new IllegalArgumentException("relativeAttention: scale must be finite, got " + scale);
        }
        requireForwardOnly("relativeAttention", q, k, v, relBias);
        Tensor out = graph.newTensor(q.shape());
        check(h.fvmt_relative_attention_forward(q.segment(), k.segment(), v.segment(), segmentOrNull(relBias),
                segmentOrNull(keyMask), qTokens, kvTokens, heads, headDim, scale, out.segment(), stream()));
        return out;
    }

    /** The text encoder ops have no backward: refuse inputs whose gradient this graph would need. */
    private void requireForwardOnly(String op, Tensor... inputs) {
        for (Tensor input : inputs) {
            if (graph.needsGradient(input)) {
                throw new IllegalStateException(op + " is forward-only (the text encoder is never differentiated),"
                        + " but its input " + input + " needs a gradient on this recording graph; run it on an"
                        + " inference graph, new Graph(backend, false)");
            }
        }
    }

    // ------------------------------------------- video autoencoder ops (forward only)
    // The Wan VAE runs for inference only: these ops record nothing and refuse inputs that need
    // a gradient. Activations are channel-last [frames, height, width, channels].

    /** Rows of the im2col buffer a convolution fills at a time: 2^25 floats (128 MiB) at most. */
    public static final long CONV_BLOCK_ELEMENTS = 1L << 25;

    /** Scores of a {@link #singleHeadAttention} block at a time: 2^25 floats (128 MiB) at most. */
    public static final long ATTENTION_BLOCK_ELEMENTS = 1L << 25;

    /**
     * Kernel size, stride and zero padding per side of a channel-last 3D convolution (fastvmt.h,
     * fvmt_im2col3d): time (t), height (h), width (w); padding "0" in front / top / left, "1" after
     * / bottom / right. Wan's CausalConv3d with kernel 3 pads time by (2, 0) and space by (1, 1).
     */
    public record ConvGeometry(int kt, int kh, int kw, int st, int sh, int sw, int padT0, int padT1, int padH0,
            int padH1, int padW0, int padW1) {

        public ConvGeometry {
            axis("time", kt, st, padT0, padT1);
            axis("height", kh, sh, padH0, padH1);
            axis("width", kw, sw, padW0, padW1);
        }

        private static void axis(String axis, int kernel, int stride, int pad0, int pad1) {
            if (kernel < 1 || stride < 1) {
                throw new IllegalArgumentException("ConvGeometry: the " + axis + " kernel and stride must be >= 1, got "
                        + kernel + " and " + stride);
            }
            if (pad0 < 0 || pad0 >= kernel || pad1 < 0 || pad1 >= kernel) {
                throw new IllegalArgumentException("ConvGeometry: the " + axis + " paddings must be in [0, " + kernel
                        + "), got " + pad0 + " and " + pad1);
            }
        }

        /** Kernel taps kt·kh·kw. */
        public int taps() {
            return kt * kh * kw;
        }

        /** [outFrames, outHeight, outWidth] for an input [frames, height, width]; refuses an empty output. */
        public int[] outputSize(int frames, int height, int width) {
            return new int[] {out("frames", frames, kt, st, padT0, padT1), out("height", height, kh, sh, padH0, padH1),
                    out("width", width, kw, sw, padW0, padW1)};
        }

        private static int out(String axis, int extent, int kernel, int stride, int pad0, int pad1) {
            long padded = (long) extent + pad0 + pad1;
            if (padded < kernel) {
                throw new IllegalArgumentException("conv3d: the padded " + axis + " extent " + padded
                        + " is smaller than the kernel (" + kernel + ")");
            }
            return (int) ((padded - kernel) / stride + 1);
        }
    }

    /**
     * The im2col rows [rowCount, taps·channels] of output positions [rowBegin, rowBegin + rowCount)
     * of a convolution of x [frames, height, width, channels] (fastvmt.h fvmt_im2col3d).
     */
    public Tensor im2col3d(Tensor x, ConvGeometry geometry, long rowBegin, long rowCount) {
        int[] in = requireVolume(x, "x");
        requireInference("im2col3d", x);
        int[] out = geometry.outputSize(in[0], in[1], in[2]);
        long positions = (long) out[0] * out[1] * out[2];
        if (rowBegin < 0 || rowCount < 1 || rowBegin > positions - rowCount) {
            throw new IllegalArgumentException("im2col3d: rowBegin " + rowBegin + " and rowCount " + rowCount
                    + " must select a non-empty range of the " + positions + " output positions");
        }
        long features = (long) geometry.taps() * in[3];
        Tensor rows = graph.newTensor(rowCount, features);
        im2colInto(x, in, geometry, rowBegin, rowCount, rows);
        return rows;
    }

    private void im2colInto(Tensor x, int[] in, ConvGeometry g, long rowBegin, long rowCount, Tensor rows) {
        check(h.fvmt_im2col3d(x.segment(), in[0], in[1], in[2], in[3], g.kt(), g.kh(), g.kw(), g.st(), g.sh(),
                g.sw(), g.padT0(), g.padT1(), g.padH0(), g.padH1(), g.padW0(), g.padW1(), rowBegin, rowCount,
                rows.segment(), stream()));
    }

    /**
     * A channel-last 3D convolution: x [frames, height, width, cIn] → [frames', height', width',
     * cOut] with weight [cOut, taps·cIn] (F32 or BF16, features in (kt, kh, kw, cIn) order: PyTorch's
     * [cOut, cIn, kt, kh, kw] permuted once at load) and bias [cOut] or null. Runs as im2col and
     * GEMM over blocks of output positions, so the im2col buffer stays within
     * {@link #CONV_BLOCK_ELEMENTS}; a 1×1×1 kernel without stride or padding is one GEMM.
     */
    public Tensor conv3d(Tensor x, Tensor weight, Tensor bias, ConvGeometry geometry) {
        return conv3d(x, weight, bias, geometry, CONV_BLOCK_ELEMENTS);
    }

    /** {@link #conv3d} with im2col blocks of at most {@code blockElements} floats (at least one row). */
    public Tensor conv3d(Tensor x, Tensor weight, Tensor bias, ConvGeometry geometry, long blockElements) {
        int[] in = requireVolume(x, "x");
        requireOnBackend(weight, "weight");
        long features = (long) geometry.taps() * in[3];
        if (weight.rank() != 2 || weight.dim(1) != features || weight.dtype() == DType.I32) {
            throw new IllegalArgumentException("conv3d: weight must be F32 or BF16 [cOut, " + features + "] (taps "
                    + geometry.taps() + " × channels " + in[3] + "), got " + weight);
        }
        int cOut = dimension(weight.dim(0), "the rows of weight");
        requireVector(bias, cOut, "bias", true);
        requireInference("conv3d", x, weight, bias);
        int[] out = geometry.outputSize(in[0], in[1], in[2]);
        long positions = (long) out[0] * out[1] * out[2];
        int k = dimension(features, "taps · channels");
        int weightDtype = weight.dtype().nativeCode();
        Tensor y = graph.newTensor(out[0], out[1], out[2], cOut);
        boolean pointwise = geometry.equals(new ConvGeometry(1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0));
        long block = Math.max(1, Math.min(positions, blockElements / features));
        try (Tensor rows = pointwise ? null : Tensor.zeros(backend, DType.F32, block, features)) {
            for (long begin = 0; begin < positions; begin += block) {
                int count = (int) Math.min(block, positions - begin);
                MemorySegment a;
                if (pointwise) {
                    a = x.slice(begin * features, count, features).segment();
                } else {
                    im2colInto(x, in, geometry, begin, count, rows);
                    a = rows.segment();
                }
                backend.gemm(false, true, count, cOut, k, 1f, a, weight.segment(), weightDtype, 0f,
                        y.slice(begin * cOut, count, cOut).segment());
            }
        }
        if (bias != null) {
            check(h.fvmt_bias_add_forward(y.segment(), bias.segment(), positions, cOut, y.segment(), stream()));
        }
        return y;
    }

    /** Nearest-neighbour 2× spatial upsampling: x [images, height, width, channels] → [images, 2h, 2w, channels]. */
    public Tensor upsampleNearest2x(Tensor x) {
        int[] in = requireVolume(x, "x");
        requireInference("upsampleNearest2x", x);
        Tensor y = graph.newTensor(in[0], 2L * in[1], 2L * in[2], in[3]);
        check(h.fvmt_upsample_nearest2x(x.segment(), in[0], in[1], in[2], in[3], y.segment(), stream()));
        return y;
    }

    /**
     * Wan's upsample3d frame interleave: x [frames, height, width, 2c] → [2·frames, height, width,
     * c], output frame 2f + s holding channels [s·c, (s+1)·c) of input frame f.
     */
    public Tensor frameInterleave(Tensor x) {
        int[] in = requireVolume(x, "x");
        if (in[3] % 2 != 0) {
            throw new IllegalArgumentException("frameInterleave: x must have an even channel count, got "
                    + shape(x));
        }
        requireInference("frameInterleave", x);
        int channels = in[3] / 2;
        Tensor y = graph.newTensor(2L * in[0], in[1], in[2], channels);
        check(h.fvmt_frame_interleave(x.segment(), in[0], (long) in[1] * in[2], channels, y.segment(), stream()));
        return y;
    }

    /** softmax(scale · x) over each row of x [rows, cols]; scale finite and positive. */
    public Tensor softmaxRows(Tensor x, float scale) {
        requireMatrix(x, "x");
        if (!(scale > 0 && Float.isFinite(scale))) {
            throw new IllegalArgumentException("softmaxRows: scale must be finite and positive, got " + scale);
        }
        requireInference("softmaxRows", x);
        Tensor y = graph.newTensor(x.shape());
        check(h.fvmt_softmax_rows_forward(x.segment(), x.dim(0), (int) x.dim(1), scale, y.segment(), stream()));
        return y;
    }

    /**
     * One attention head of any width (the Wan VAE's middle attention has 384 channels, wider
     * than {@link #attention} takes on CUDA): softmax(q·k^T / sqrt(d))·v for q [sq, d], k and v
     * [sk, d]. Runs as GEMM, {@link #softmaxRows}, GEMM over blocks of queries, so the scores
     * held at once stay within {@link #ATTENTION_BLOCK_ELEMENTS}.
     */
    public Tensor singleHeadAttention(Tensor q, Tensor k, Tensor v) {
        return singleHeadAttention(q, k, v, ATTENTION_BLOCK_ELEMENTS);
    }

    /** {@link #singleHeadAttention} with at most {@code blockElements} scores at a time (at least one row). */
    public Tensor singleHeadAttention(Tensor q, Tensor k, Tensor v, long blockElements) {
        requireMatrix(q, "q");
        requireMatrix(k, "k");
        requireMatrix(v, "v");
        if (k.dim(1) != q.dim(1)) {
            throw new IllegalArgumentException("singleHeadAttention: k must have " + q.dim(1)
                    + " columns like q, got " + shape(k));
        }
        if (!Arrays.equals(v.shape(), k.shape())) {
            throw new IllegalArgumentException("singleHeadAttention: v must have the shape of k " + shape(k)
                    + ", got " + shape(v));
        }
        requireInference("singleHeadAttention", q, k, v);
        int sq = intRows(q, "q");
        int sk = intRows(k, "k");
        int d = (int) q.dim(1);
        float scale = (float) (1.0 / Math.sqrt(d));
        Tensor out = graph.newTensor(sq, d);
        int block = (int) Math.max(1, Math.min(sq, blockElements / sk));
        try (Tensor scores = Tensor.zeros(backend, DType.F32, block, sk)) {
            for (int begin = 0; begin < sq; begin += block) {
                int count = Math.min(block, sq - begin);
                MemorySegment s = scores.slice(0, count, sk).segment();
                backend.gemm(false, true, count, sk, d, 1f, q.slice((long) begin * d, count, d).segment(),
                        k.segment(), FastVmtH.FVMT_DTYPE_F32, 0f, s);
                check(h.fvmt_softmax_rows_forward(s, count, sk, scale, s, stream()));
                backend.gemm(false, false, count, d, sk, 1f, s, v.segment(), FastVmtH.FVMT_DTYPE_F32, 0f,
                        out.slice((long) begin * d, count, d).segment());
            }
        }
        return out;
    }

    /** An F32 [frames, height, width, channels] tensor: its four sizes as ints. */
    private int[] requireVolume(Tensor x, String name) {
        requireF32(x, name);
        if (x.rank() != 4 || x.elementCount() == 0) {
            throw new IllegalArgumentException(name + " must be a non-empty [frames, height, width, channels] "
                    + "tensor, got " + shape(x));
        }
        return new int[] {dimension(x.dim(0), "frames"), dimension(x.dim(1), "height"),
                dimension(x.dim(2), "width"), dimension(x.dim(3), "channels")};
    }

    private void requireInference(String op, Tensor... inputs) {
        if (graph.shouldRecord(inputs)) {
            throw new IllegalStateException(op + " is forward only (the VAE runs for inference), but an input "
                    + "needs a gradient");
        }
    }

    // ------------------------------------------------------------------ helpers

    /** Records {@code backward} when an input needs a gradient; returns whether it did. */
    private boolean record(String op, Tensor output, Graph.Backward backward, Tensor... inputs) {
        if (!graph.shouldRecord(inputs)) {
            return false;
        }
        List<Tensor> present = new ArrayList<>();
        for (Tensor input : inputs) {
            if (input != null) {
                present.add(input);
            }
        }
        graph.record(op, output, present, backward);
        return true;
    }

    private static long[] tokenShape(int channels, int frames, int height, int width, int pt, int ph, int pw,
            PatchLayout layout) {
        requirePositive(channels, "channels");
        requirePositive(frames, "frames");
        requirePositive(height, "height");
        requirePositive(width, "width");
        requirePositive(pt, "pt");
        requirePositive(ph, "ph");
        requirePositive(pw, "pw");
        if (layout == null) {
            throw new IllegalArgumentException("layout must not be null");
        }
        if (frames % pt != 0 || height % ph != 0 || width % pw != 0) {
            throw new IllegalArgumentException("frames, height and width (" + frames + ", " + height + ", " + width
                    + ") must be multiples of the patch (" + pt + ", " + ph + ", " + pw + ")");
        }
        return new long[] {(long) (frames / pt) * (height / ph) * (width / pw), (long) channels * pt * ph * pw};
    }

    private void requireOnBackend(Tensor tensor, String name) {
        if (tensor == null) {
            throw new IllegalArgumentException(name + " must not be null");
        }
        if (tensor.backend() != backend) {
            throw new IllegalArgumentException(name + " lives on " + tensor.backend().name() + ", the graph on "
                    + backend.name() + ": " + tensor);
        }
    }

    private void requireF32(Tensor tensor, String name) {
        requireOnBackend(tensor, name);
        if (tensor.dtype() != DType.F32) {
            throw new IllegalArgumentException(name + " must be F32, got " + tensor);
        }
    }

    /** An F32 [rows, cols] tensor with cols in int range and at least one element. */
    private void requireMatrix(Tensor tensor, String name) {
        requireF32(tensor, name);
        if (tensor.rank() != 2 || tensor.dim(0) < 1 || tensor.dim(1) < 1) {
            throw new IllegalArgumentException(name + " must be a non-empty matrix [rows, cols], got "
                    + shape(tensor));
        }
        dimension(tensor.dim(1), "the columns of " + name);
    }

    /** An F32 tensor of {@code cols} elements, or null when {@code optional}. */
    private void requireVector(Tensor tensor, int cols, String name, boolean optional) {
        if (tensor == null && optional) {
            return;
        }
        requireF32(tensor, name);
        if (tensor.elementCount() != cols) {
            throw new IllegalArgumentException(name + " must hold " + cols + " elements (one per column), got "
                    + shape(tensor));
        }
    }

    private static int headDim(Tensor x, int heads, String name) {
        if (x.dim(1) % heads != 0) {
            throw new IllegalArgumentException(name + " must have heads·headDim columns with heads = " + heads
                    + ", got " + shape(x));
        }
        return (int) (x.dim(1) / heads);
    }

    private static int intRows(Tensor x, String name) {
        return dimension(x.dim(0), "the rows of " + name);
    }

    private static int dimension(long value, String what) {
        if (value > Integer.MAX_VALUE) {
            throw new IllegalArgumentException(what + " must be < 2^31, got " + value);
        }
        return (int) value;
    }

    private static void requirePositive(int value, String name) {
        if (value < 1) {
            throw new IllegalArgumentException(name + " must be >= 1, got " + value);
        }
    }

    private static void requireEps(float eps) {
        if (!(eps > 0 && Float.isFinite(eps))) {
            throw new IllegalArgumentException("eps must be finite and positive, got " + eps);
        }
    }

    private static String shape(Tensor tensor) {
        return Arrays.toString(tensor.shape());
    }

    private static MemorySegment segmentOrNull(Tensor tensor) {
        return tensor == null ? MemorySegment.NULL : tensor.segment();
    }

    private MemorySegment stream() {
        return backend.stream();
    }

    private void check(int status) {
        library.check(status);
    }
}
