package org.fastvmt.model.t5;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import java.util.function.Consumer;

import org.fastvmt.backend.Backend;
import org.fastvmt.tensor.DType;
import org.fastvmt.tensor.Graph;
import org.fastvmt.tensor.Ops;
import org.fastvmt.tensor.Tensor;

/**
 * The umT5 encoder forward (inference only), as wan/modules/t5.py's {@code T5Encoder} computes it
 * and Wan's {@code T5EncoderModel} uses it:
 *
 * <pre>
 * x = token_embedding[ids]                                  (dropout: identity in eval)
 * per block:  x = x + o(attn(norm1(x)))                      attn: per head softmax(q·kᵀ + bias_h) v,
 *                                                            NOT scaled by 1/√d; bias_h[i, j] =
 *                                                            pos_embedding[bucket(j − i), h]
 *             x = x + fc2(fc1(norm2(x)) · gelu_tanh(gate(norm2(x))))
 * out = norm(x)                                             normᵢ: x · rsqrt(mean(x²) + eps) · w (T5LayerNorm)
 * </pre>
 *
 * Wan tokenises to text_len (512) tokens padded with a mask, runs the encoder with padding keys
 * masked, keeps the first (prompt length) rows and lets the DiT pad them back to text_len with
 * zeros. Because padded keys are masked and the bias depends only on j − i, the prompt rows do not
 * depend on the padding: {@link #encode} runs the prompt's tokens alone and writes zeros after
 * them, which is the same result for less work ({@link #hiddenStates} with a mask is the padded
 * computation; the tests check that the two agree).
 *
 * <p>Activations are fp32 (the official model runs in bf16); weights may be BF16. Host copies of
 * the small position tables are kept to build each block's relative bias.
 */
public final class UmT5Encoder {

    private final UmT5Weights weights;
    private final UmT5Config config;
    private final Backend backend;
    private final RelativePositionBuckets buckets;
    private final List<float[]> positionTables = new ArrayList<>();
    private final Consumer<String> warnings;

    /** An encoder that reports truncation on standard error. */
    public UmT5Encoder(UmT5Weights weights) {
        this(weights, message -> System.err.println("warning: " + message));
    }

    /** @param warnings receives a sentence whenever ids are truncated to the text length */
    public UmT5Encoder(UmT5Weights weights, Consumer<String> warnings) {
        this.weights = Objects.requireNonNull(weights, "weights");
        this.warnings = Objects.requireNonNull(warnings, "warnings");
        this.config = weights.config();
        this.backend = weights.backend();
        this.buckets = config.buckets();
        for (int b = 0; b < config.layers(); b++) {
            positionTables.add(weights.get("blocks." + b + ".pos_embedding.embedding.weight").toFloatArray());
        }
    }

    public UmT5Config config() {
        return config;
    }

    /**
     * The text embedding Wan's DiT receives: an F32 [textLength, dim] tensor (the caller closes
     * it) whose first min(ids.length, textLength) rows encode the prompt and whose other rows are
     * zero. ids longer than textLength are cut to their first textLength, with a warning.
     *
     * @param ids token ids in [0, vocab), as {@link UmT5Tokenizer} gives them (ending with EOS)
     */
    public Tensor encode(int[] ids) {
        int[] prompt = truncated(ids);
        Tensor out = Tensor.zeros(backend, DType.F32, config.textLength(), config.dim());
        try (Graph graph = new Graph(backend, false)) {
            Tensor hidden = forward(graph, prompt, prompt.length);
            out.slice(0, prompt.length, config.dim()).copyFrom(hidden);
            return out;
        } catch (RuntimeException e) {
            out.close();
            throw e;
        }
    }

    /**
     * The encoder's output for all of {@code ids}, [ids.length, dim] (the caller closes it), with
     * the keys from {@code validTokens} on masked out, as Wan runs a padded prompt: rows before
     * validTokens are the prompt's, rows after it are what the model computes for padding (Wan
     * discards them).
     */
    public Tensor hiddenStates(int[] ids, int validTokens) {
        checkIds(ids);
        if (validTokens < 1 || validTokens > ids.length) {
            throw new IllegalArgumentException("validTokens must be in [1, ids.length = " + ids.length + "], got "
                    + validTokens);
        }
        try (Graph graph = new Graph(backend, false)) {
            return graph.disown(forward(graph, ids, validTokens));
        }
    }

    private int[] truncated(int[] ids) {
        checkIds(ids);
        if (ids.length <= config.textLength()) {
            return ids;
        }
        warnings.accept("the prompt has " + ids.length + " tokens, more than the text encoder's " + config.textLength()
                + ": only the first " + config.textLength() + " are used");
        return Arrays.copyOf(ids, config.textLength());
    }

    private void checkIds(int[] ids) {
        if (ids == null || ids.length == 0) {
            throw new IllegalArgumentException("ids must hold at least one token id");
        }
        for (int t = 0; t < ids.length; t++) {
            if (ids[t] < 0 || ids[t] >= config.vocab()) {
                throw new IllegalArgumentException("ids[" + t + "] = " + ids[t] + " is outside the vocabulary [0, "
                        + config.vocab() + ")");
            }
        }
    }

    /** The forward over ids on an inference graph; keys from validTokens on are masked. */
    private Tensor forward(Graph graph, int[] ids, int validTokens) {
        Ops ops = new Ops(graph);
        int tokens = ids.length;
        float eps = config.eps();
        int heads = config.heads();
        Tensor x = ops.embedding(ids, weights.get("token_embedding.weight"));
        Tensor mask = null;
        if (validTokens < tokens) {
            int[] keep = new int[tokens];
            Arrays.fill(keep, 0, validTokens, 1);
            mask = graph.own(Tensor.ofInts(backend, keep, tokens));
        }
        for (int b = 0; b < config.layers(); b++) {
            String p = "blocks." + b + ".";
            Tensor bias = graph.own(Tensor.of(backend, buckets.relativeBias(positionTables.get(b), heads, tokens,
                    tokens), heads, 2L * tokens - 1));
            Tensor h = ops.rmsNorm(x, weights.get(p + "norm1.weight"), eps);
            Tensor q = ops.linear(h, weights.get(p + "attn.q.weight"), null);
            Tensor k = ops.linear(h, weights.get(p + "attn.k.weight"), null);
            Tensor v = ops.linear(h, weights.get(p + "attn.v.weight"), null);
            graph.free(h);
            // T5 does not scale the scores (t5.py: "T5 does not use scaling").
            Tensor attended = ops.relativeAttention(q, k, v, bias, mask, heads, 1f);
            free(graph, q, k, v, bias);
            Tensor o = ops.linear(attended, weights.get(p + "attn.o.weight"), null);
            graph.free(attended);
            Tensor x1 = ops.add(x, o);
            free(graph, x, o);
            x = x1;

            Tensor h2 = ops.rmsNorm(x, weights.get(p + "norm2.weight"), eps);
            Tensor gate = ops.linear(h2, weights.get(p + "ffn.gate.0.weight"), null);
            Tensor gelu = ops.geluTanh(gate);
            Tensor linear = ops.linear(h2, weights.get(p + "ffn.fc1.weight"), null);
            free(graph, h2, gate);
            Tensor product = ops.mul(linear, gelu);
            free(graph, linear, gelu);
            Tensor y = ops.linear(product, weights.get(p + "ffn.fc2.weight"), null);
            graph.free(product);
            Tensor x2 = ops.add(x, y);
            free(graph, x, y);
            x = x2;
        }
        Tensor out = ops.rmsNorm(x, weights.get("norm.weight"), eps);
        graph.free(x);
        if (mask != null) {
            graph.free(mask);
        }
        return out;
    }

    private static void free(Graph graph, Tensor... tensors) {
        for (Tensor tensor : tensors) {
            graph.free(tensor);
        }
    }
}
