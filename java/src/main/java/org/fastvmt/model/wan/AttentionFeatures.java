package org.fastvmt.model.wan;

import java.util.Arrays;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

import org.fastvmt.backend.Backend;
import org.fastvmt.tensor.DType;
import org.fastvmt.tensor.Graph;
import org.fastvmt.tensor.Ops;
import org.fastvmt.tensor.Tensor;

/**
 * The self-attention query and key of one block of a {@link WanDiT} for one latent, as
 * [F', H', W', dim] (the layout the attention motion flow reads), and, when made by
 * {@link WanDiT#differentiableFeatures}, the checkpoints to differentiate a loss on them back to
 * the latent.
 *
 * <p>The backward uses per-block activation checkpointing: the forward kept only the input of
 * every block up to this one; {@link #backward} recomputes one block at a time on a recording
 * {@link Graph}, from this block down to block 0 and through the patch embedding, and frees each
 * block's activations before the next. Memory: the checkpoints (block + 1 hidden states) plus one
 * block's activations, never the activations of all blocks.
 *
 * <p>In FastVMT's guidance loop each AdamW iteration that needs a fresh gradient makes one
 * instance for the current latent, reads {@link #q()} and {@link #k()}, calls {@link #backward}
 * once and closes it. Owns everything it holds; close it.
 */
public final class AttentionFeatures implements AutoCloseable {

    private final WanDiT model;
    /** Inference graph owning q, k, the checkpoints and the latent copy. */
    private final Graph graph;
    private final WanConditioning conditioning;
    private final TokenGrid grid;
    private final int block;
    private final Tensor q;
    private final Tensor k;
    private final Tensor latent;
    /** The input of blocks 0 .. block (empty when not differentiable). */
    private final List<Tensor> checkpoints;
    private boolean closed;

    AttentionFeatures(WanDiT model, Graph graph, WanConditioning conditioning, TokenGrid grid, int block,
            WanBlock.QueryKey qk, Tensor latent, List<Tensor> checkpoints) {
        this.model = model;
        this.graph = graph;
        this.conditioning = conditioning;
        this.grid = grid;
        this.block = block;
        long[] shape = model.featureShape(grid);
        this.q = qk.q().view(shape);
        this.k = qk.k().view(shape);
        this.latent = latent;
        this.checkpoints = List.copyOf(checkpoints);
    }

    /** The query of the block's self-attention, after RMSNorm and RoPE: [F', H', W', dim]; owned by this. */
    public Tensor q() {
        checkOpen();
        return q;
    }

    /** The key of the block's self-attention, after RMSNorm and RoPE: [F', H', W', dim]; owned by this. */
    public Tensor k() {
        checkOpen();
        return k;
    }

    public TokenGrid grid() {
        return grid;
    }

    public int block() {
        return block;
    }

    /** Whether {@link #backward} is available (made by {@link WanDiT#differentiableFeatures}). */
    public boolean differentiable() {
        return latent != null;
    }

    /**
     * dL/dlatent [inDim, F, H, W] for the upstream gradients {@code dQ} = dL/dQ and {@code dK} =
     * dL/dK (F32, tokens·dim elements each, e.g. [F', H', W', dim]; one of them may be null for
     * zero). May be called more than once. The caller closes the result.
     *
     * @throws IllegalStateException if these features keep no checkpoints
     */
    public Tensor backward(Tensor dQ, Tensor dK) {
        checkOpen();
        if (!differentiable()) {
            throw new IllegalStateException("backward: these features keep no checkpoints; make them with "
                    + "WanDiT.differentiableFeatures");
        }
        if (dQ == null && dK == null) {
            throw new IllegalArgumentException("backward: dQ and dK must not both be null");
        }
        checkUpstream(dQ, "dQ");
        checkUpstream(dK, "dK");
        Backend backend = model.backend();
        WanWeights weights = model.weights();
        Tensor upstream = null; // dL/d(input of the block being differentiated), owned here
        try {
            try (Graph tape = new Graph(backend, true)) {
                Tensor x = checkpoints.get(block);
                tape.requireGradient(x);
                WanBlock.QueryKey qk = WanBlock.queryKey(new Ops(tape), weights, block, x, conditioning, grid);
                Map<Tensor, Tensor> seeds = new IdentityHashMap<>();
                if (dQ != null) {
                    seeds.put(qk.q(), dQ);
                }
                if (dK != null) {
                    seeds.put(qk.k(), dK);
                }
                tape.backward(seeds);
                upstream = gradientOf(tape, x);
            }
            for (int n = block - 1; n >= 0; n--) {
                try (Graph tape = new Graph(backend, true)) {
                    Tensor x = checkpoints.get(n);
                    tape.requireGradient(x);
                    Tensor out = WanBlock.forward(new Ops(tape), weights, n, x, conditioning, grid);
                    tape.backward(out, upstream);
                    Tensor next = gradientOf(tape, x);
                    upstream.close();
                    upstream = next;
                }
            }
            try (Graph tape = new Graph(backend, true)) {
                tape.requireGradient(latent);
                Tensor x = model.embed(new Ops(tape), latent);
                tape.backward(x, upstream);
                return gradientOf(tape, latent);
            }
        } finally {
            if (upstream != null) {
                upstream.close();
            }
        }
    }

    /** A copy (the caller's) of the gradient the tape accumulated for leaf {@code x}. */
    private Tensor gradientOf(Graph tape, Tensor x) {
        Tensor gradient = tape.gradient(x);
        if (gradient == null) {
            // Every leaf here reaches the seeds; a missing gradient would be a wiring error.
            throw new IllegalStateException("backward: no gradient reached " + x);
        }
        return model.copy(gradient, x.shape());
    }

    private void checkUpstream(Tensor gradient, String name) {
        if (gradient == null) {
            return;
        }
        long count = (long) grid.tokens() * model.config().dim();
        if (gradient.backend() != model.backend() || gradient.dtype() != DType.F32 || gradient.elementCount() != count) {
            throw new IllegalArgumentException("backward: " + name + " must be F32 on " + model.backend().name()
                    + " with " + count + " elements (" + Arrays.toString(model.featureShape(grid)) + "), got "
                    + gradient);
        }
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("the attention features are closed");
        }
    }

    /** Frees q, k and the checkpoints. */
    @Override
    public void close() {
        closed = true;
        graph.close();
    }

    @Override
    public String toString() {
        return "AttentionFeatures[block " + block + ", " + grid + (differentiable() ? ", " + checkpoints.size()
                + " checkpoints" : "") + (closed ? ", closed" : "") + "]";
    }
}
