package org.fastvmt.model.wan;

import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

/**
 * The shape of a Wan2.1 text-to-video DiT ({@code WanModel} in the official code).
 *
 * <p>The 1.3B and 14B values are those of the official configs
 * ({@code wan/configs/wan_t2v_1_3B.py}, {@code wan_t2v_14B.py}, {@code shared_config.py}) and of
 * the published {@code config.json} files; {@link #TINY} is a small model of the same
 * architecture for tests.
 *
 * @param name          how the CLI and the error messages call it
 * @param dim           hidden width
 * @param ffnDim        width of the feed-forward hidden layer
 * @param freqDim       width of the sinusoidal timestep embedding
 * @param textDim       width of the text encoder's output (umT5-XXL: 4096)
 * @param inDim         latent channels in
 * @param outDim        latent channels out
 * @param heads         attention heads (head width = dim / heads)
 * @param layers        transformer blocks
 * @param patchT        patch size along frames
 * @param patchH        patch size along rows
 * @param patchW        patch size along columns
 * @param eps           epsilon of every LayerNorm and RMSNorm
 * @param textLength    text tokens the model is conditioned on (padded)
 * @param ropeTheta     base of the rotary position frequencies
 */
public record WanConfig(String name, int dim, int ffnDim, int freqDim, int textDim, int inDim, int outDim,
        int heads, int layers, int patchT, int patchH, int patchW, float eps, int textLength, float ropeTheta) {

    /** Wan2.1-T2V-1.3B. */
    public static final WanConfig WAN_1_3B =
            new WanConfig("1.3b", 1536, 8960, 256, 4096, 16, 16, 12, 30, 1, 2, 2, 1e-6f, 512, 10000f);

    /** Wan2.1-T2V-14B. */
    public static final WanConfig WAN_14B =
            new WanConfig("14b", 5120, 13824, 256, 4096, 16, 16, 40, 40, 1, 2, 2, 1e-6f, 512, 10000f);

    /** A two-block model with the same architecture, small enough for finite differences. */
    public static final WanConfig TINY =
            new WanConfig("tiny", 64, 96, 32, 24, 4, 4, 2, 2, 1, 2, 2, 1e-6f, 16, 10000f);

    public WanConfig {
        if (name == null || name.isBlank()) {
            throw new IllegalArgumentException("name must not be blank");
        }
        positive("dim", dim);
        positive("ffnDim", ffnDim);
        positive("freqDim", freqDim);
        positive("textDim", textDim);
        positive("inDim", inDim);
        positive("outDim", outDim);
        positive("heads", heads);
        positive("layers", layers);
        positive("patchT", patchT);
        positive("patchH", patchH);
        positive("patchW", patchW);
        positive("textLength", textLength);
        if (dim % heads != 0) {
            throw new IllegalArgumentException("dim " + dim + " is not a multiple of heads " + heads);
        }
        // 3D RoPE splits each head's complex pairs into frame/row/column frequencies.
        int pairs = dim / heads / 2;
        if ((dim / heads) % 2 != 0 || pairs / 3 < 1) {
            throw new IllegalArgumentException("head width " + dim / heads + " must be even and at least 6 for 3D RoPE");
        }
        if (freqDim % 2 != 0) {
            throw new IllegalArgumentException("freqDim must be even, got " + freqDim);
        }
        if (!(eps > 0) || !(ropeTheta > 1)) {
            throw new IllegalArgumentException("eps must be > 0 and ropeTheta > 1, got " + eps + ", " + ropeTheta);
        }
    }

    private static void positive(String what, int value) {
        if (value <= 0) {
            throw new IllegalArgumentException(what + " must be positive, got " + value);
        }
    }

    /** The configs selectable by name: tiny, 1.3b, 14b. */
    public static WanConfig named(String name) {
        return switch (name.toLowerCase(Locale.ROOT)) {
            case "tiny" -> TINY;
            case "1.3b" -> WAN_1_3B;
            case "14b" -> WAN_14B;
            default -> throw new IllegalArgumentException("unknown model config '" + name + "' (expected tiny, 1.3b or 14b)");
        };
    }

    /** This config with another number of blocks (a truncated model for benchmarks and tests). */
    public WanConfig withLayers(int newLayers) {
        return new WanConfig(newLayers == layers ? name : name + "-" + newLayers + "-blocks", dim, ffnDim, freqDim,
                textDim, inDim, outDim, heads, newLayers, patchT, patchH, patchW, eps, textLength, ropeTheta);
    }

    /** Width of one attention head. */
    public int headDim() {
        return dim / heads;
    }

    /** Features of one patch token: inDim · patchT · patchH · patchW. */
    public int patchFeatures() {
        return inDim * patchT * patchH * patchW;
    }

    /** Features the head writes per token: outDim · patchT · patchH · patchW. */
    public int outFeatures() {
        return outDim * patchT * patchH * patchW;
    }

    /**
     * Every parameter of the model by its key in the original Wan2.1 checkpoint, with its shape,
     * in the order of the official module tree (825 tensors for 1.3B).
     */
    public Map<String, long[]> parameterShapes() {
        Map<String, long[]> shapes = new LinkedHashMap<>();
        shapes.put("patch_embedding.weight", new long[] {dim, inDim, patchT, patchH, patchW});
        shapes.put("patch_embedding.bias", new long[] {dim});
        linear(shapes, "text_embedding.0", dim, textDim);
        linear(shapes, "text_embedding.2", dim, dim);
        linear(shapes, "time_embedding.0", dim, freqDim);
        linear(shapes, "time_embedding.2", dim, dim);
        linear(shapes, "time_projection.1", 6L * dim, dim);
        for (int block = 0; block < layers; block++) {
            String prefix = "blocks." + block + ".";
            for (String attention : new String[] {"self_attn", "cross_attn"}) {
                for (String projection : new String[] {"q", "k", "v", "o"}) {
                    linear(shapes, prefix + attention + "." + projection, dim, dim);
                }
                shapes.put(prefix + attention + ".norm_q.weight", new long[] {dim});
                shapes.put(prefix + attention + ".norm_k.weight", new long[] {dim});
            }
            shapes.put(prefix + "norm3.weight", new long[] {dim});
            shapes.put(prefix + "norm3.bias", new long[] {dim});
            linear(shapes, prefix + "ffn.0", ffnDim, dim);
            linear(shapes, prefix + "ffn.2", dim, ffnDim);
            shapes.put(prefix + "modulation", new long[] {1, 6, dim});
        }
        linear(shapes, "head.head", outFeatures(), dim);
        shapes.put("head.modulation", new long[] {1, 2, dim});
        return shapes;
    }

    private static void linear(Map<String, long[]> shapes, String name, long out, long in) {
        shapes.put(name + ".weight", new long[] {out, in});
        shapes.put(name + ".bias", new long[] {out});
    }
}
