package org.fastvmt.model.wan;

import java.util.Arrays;

import org.fastvmt.backend.Backend;
import org.fastvmt.tensor.DType;
import org.fastvmt.tensor.Graph;
import org.fastvmt.tensor.Ops;
import org.fastvmt.tensor.Tensor;

/**
 * What a Wan2.1 DiT is conditioned on for one (prompt, timestep): the time embedding
 * {@code e} [1, dim], its projection {@code e0} [1, 6·dim] (the six modulation offsets of every
 * block) and the embedded text {@code context} [textLength, dim]. Computed once, without a tape
 * (nothing in the guidance loop differentiates it), and shared by every block of every call that
 * uses this prompt and timestep. Owns its three tensors: close it.
 *
 * <p>As in {@code WanModel.forward} (Wan-Video/Wan2.1 {@code wan/modules/model.py}):
 * <pre>
 *   e       = time_embedding(sinusoidal_embedding_1d(freq_dim, t))   Linear → SiLU → Linear
 *   e0      = time_projection(e).unflatten(1, (6, dim))              SiLU → Linear(dim, 6·dim)
 *   context = text_embedding(text zero-padded to text_len rows)      Linear → GELU(tanh) → Linear
 * </pre>
 * The padding rows are embedded too (they become the embedding of a zero vector) and the
 * text-to-video cross-attention attends to all textLength rows.
 */
public final class WanConditioning implements AutoCloseable {

    private final WanConfig config;
    private final float timestep;
    private final int textTokens;
    private final Tensor e;
    private final Tensor e0;
    private final Tensor context;
    private boolean closed;

    private WanConditioning(WanConfig config, float timestep, int textTokens, Tensor e, Tensor e0, Tensor context) {
        this.config = config;
        this.timestep = timestep;
        this.textTokens = textTokens;
        this.e = e;
        this.e0 = e0;
        this.context = context;
    }

    /**
     * Embeds {@code timestep} (the scheduler's t, 0..1000) and the prompt's text encoder output
     * {@code textEmbeddings} [n, textDim] with 1 ≤ n ≤ textLength, F32 on the weights' backend.
     */
    public static WanConditioning compute(WanWeights weights, Tensor textEmbeddings, float timestep) {
        WanConfig config = weights.config();
        Backend backend = weights.backend();
        check(config, backend, textEmbeddings, timestep);
        int rows = (int) textEmbeddings.dim(0);
        try (Graph graph = new Graph(backend, false)) {
            Ops ops = new Ops(graph);
            // The official code pads with zero rows before the embedding, not after.
            Tensor padded = graph.own(Tensor.zeros(backend, DType.F32, config.textLength(), config.textDim()));
            padded.slice(0, rows, config.textDim()).copyFrom(textEmbeddings);
            Tensor hidden = ops.geluTanh(ops.linear(padded, weights.get("text_embedding.0.weight"),
                    weights.get("text_embedding.0.bias")));
            Tensor context = ops.linear(hidden, weights.get("text_embedding.2.weight"),
                    weights.get("text_embedding.2.bias"));

            Tensor t = graph.own(Tensor.of(backend, new float[] {timestep}, 1));
            Tensor sinusoid = ops.timestepEmbedding(t, config.freqDim());
            Tensor e = ops.linear(ops.silu(ops.linear(sinusoid, weights.get("time_embedding.0.weight"),
                    weights.get("time_embedding.0.bias"))), weights.get("time_embedding.2.weight"),
                    weights.get("time_embedding.2.bias"));
            Tensor e0 = ops.linear(ops.silu(e), weights.get("time_projection.1.weight"),
                    weights.get("time_projection.1.bias"));
            graph.disown(context);
            graph.disown(e);
            graph.disown(e0);
            return new WanConditioning(config, timestep, rows, e, e0, context);
        }
    }

    private static void check(WanConfig config, Backend backend, Tensor text, float timestep) {
        if (text == null) {
            throw new IllegalArgumentException("textEmbeddings must not be null");
        }
        if (text.backend() != backend) {
            throw new IllegalArgumentException("textEmbeddings live on " + text.backend().name()
                    + ", the weights on " + backend.name());
        }
        if (text.dtype() != DType.F32 || text.rank() != 2) {
            throw new IllegalArgumentException("textEmbeddings must be an F32 matrix [tokens, " + config.textDim()
                    + "], got " + text);
        }
        if (text.dim(1) != config.textDim()) {
            throw new IllegalArgumentException("textEmbeddings must have " + config.textDim()
                    + " columns (the text encoder width of the " + config.name() + " model), got "
                    + Arrays.toString(text.shape()));
        }
        if (text.dim(0) < 1 || text.dim(0) > config.textLength()) {
            throw new IllegalArgumentException("textEmbeddings must have 1 to " + config.textLength()
                    + " rows (the model's text length), got " + text.dim(0));
        }
        if (!Float.isFinite(timestep)) {
            throw new IllegalArgumentException("timestep must be finite, got " + timestep);
        }
    }

    public WanConfig config() {
        return config;
    }

    public float timestep() {
        return timestep;
    }

    /** How many rows of text the prompt had before padding. */
    public int textTokens() {
        return textTokens;
    }

    /** The time embedding [1, dim] (the head's modulation offset). */
    public Tensor e() {
        checkOpen();
        return e;
    }

    /** The projected time embedding [1, 6·dim]: chunk j is the j-th modulation offset of every block. */
    public Tensor e0() {
        checkOpen();
        return e0;
    }

    /** The embedded text [textLength, dim], the keys and values of every cross-attention. */
    public Tensor context() {
        checkOpen();
        return context;
    }

    public Backend backend() {
        return e.backend();
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("the conditioning is closed");
        }
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        e.close();
        e0.close();
        context.close();
    }

    @Override
    public String toString() {
        return "WanConditioning[t=" + timestep + ", " + textTokens + " text tokens" + (closed ? ", closed" : "")
                + "]";
    }
}
