package org.fastvmt.model.t5;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The shape of a umT5 text encoder ({@code T5Encoder} of Wan-Video/Wan2.1 wan/modules/t5.py).
 *
 * <p>{@link #XXL} is {@code umt5_xxl()} of t5.py (vocab 256384, dim 4096, dim_attn 4096, dim_ffn
 * 10240, 64 heads, 24 encoder layers, 32 buckets, shared_pos False: every block has its own
 * relative position embedding), with T5RelativeEmbedding's max_dist 128, T5LayerNorm's eps 1e-6
 * and Wan's text_len 512 (wan/configs/shared_config.py). The same values are google/umt5-xxl's
 * config.json (d_model, d_kv 64, d_ff, num_heads, num_layers, relative_attention_num_buckets,
 * relative_attention_max_distance, layer_norm_epsilon) for the diffusers {@code UMT5EncoderModel}.
 * {@link #TINY} is a two-layer model of the same architecture for tests; its dim is
 * {@code WanConfig.TINY.textDim()} and its few buckets (8, max distance 16) put short prompts
 * into the logarithmic buckets.
 *
 * @param name        how error messages call it
 * @param vocab       rows of the token embedding
 * @param dim         hidden width (the output width)
 * @param dimAttn     width of q, k, v (heads · head width)
 * @param ffnDim      width of the gated-GELU feed-forward
 * @param heads       attention heads
 * @param layers      encoder blocks
 * @param numBuckets  relative position buckets (both directions together)
 * @param maxDistance distance from which every position shares the last bucket
 * @param eps         epsilon of every T5LayerNorm
 * @param textLength  tokens of the (padded) output; longer prompts are truncated
 */
public record UmT5Config(String name, int vocab, int dim, int dimAttn, int ffnDim, int heads, int layers,
        int numBuckets, int maxDistance, float eps, int textLength) {

    /** umT5-XXL, the text encoder of every Wan2.1 model. */
    public static final UmT5Config XXL = new UmT5Config("umt5-xxl", 256384, 4096, 4096, 10240, 64, 24, 32, 128, 1e-6f,
            512);

    /** A small model of the same architecture (dim_attn ≠ dim, as t5.py allows), for tests. */
    public static final UmT5Config TINY = new UmT5Config("tiny", 64, 24, 32, 40, 4, 2, 8, 16, 1e-6f, 16);

    public UmT5Config {
        if (name == null || name.isBlank()) {
            throw new IllegalArgumentException("name must not be blank");
        }
        positive("vocab", vocab);
        positive("dim", dim);
        positive("dimAttn", dimAttn);
        positive("ffnDim", ffnDim);
        positive("heads", heads);
        positive("layers", layers);
        positive("textLength", textLength);
        if (dimAttn % heads != 0) {
            throw new IllegalArgumentException("dimAttn (" + dimAttn + ") must be a multiple of heads (" + heads + ")");
        }
        RelativePositionBuckets.check(numBuckets, maxDistance);
        if (!(eps > 0 && Float.isFinite(eps))) {
            throw new IllegalArgumentException("eps must be finite and positive, got " + eps);
        }
    }

    private static void positive(String what, int value) {
        if (value < 1) {
            throw new IllegalArgumentException(what + " must be >= 1, got " + value);
        }
    }

    public int headDim() {
        return dimAttn / heads;
    }

    /** The relative position bucketing of every block (bidirectional, as in the encoder). */
    public RelativePositionBuckets buckets() {
        return new RelativePositionBuckets(numBuckets, maxDistance);
    }

    /**
     * Every parameter by its key in the official checkpoint (state dict of t5.py's T5Encoder, as
     * in models_t5_umt5-xxl-enc-bf16.pth), in module order, with its shape (Linear weights are
     * [out, in]; an Embedding's weight is [rows, width]).
     */
    public Map<String, long[]> parameterShapes() {
        Map<String, long[]> shapes = new LinkedHashMap<>();
        shapes.put("token_embedding.weight", new long[] {vocab, dim});
        for (int b = 0; b < layers; b++) {
            String p = "blocks." + b + ".";
            shapes.put(p + "norm1.weight", new long[] {dim});
            shapes.put(p + "attn.q.weight", new long[] {dimAttn, dim});
            shapes.put(p + "attn.k.weight", new long[] {dimAttn, dim});
            shapes.put(p + "attn.v.weight", new long[] {dimAttn, dim});
            shapes.put(p + "attn.o.weight", new long[] {dim, dimAttn});
            shapes.put(p + "norm2.weight", new long[] {dim});
            shapes.put(p + "ffn.gate.0.weight", new long[] {ffnDim, dim});
            shapes.put(p + "ffn.fc1.weight", new long[] {ffnDim, dim});
            shapes.put(p + "ffn.fc2.weight", new long[] {dim, ffnDim});
            shapes.put(p + "pos_embedding.embedding.weight", new long[] {numBuckets, heads});
        }
        shapes.put("norm.weight", new long[] {dim});
        return shapes;
    }
}
