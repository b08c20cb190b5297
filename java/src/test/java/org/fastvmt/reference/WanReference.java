package org.fastvmt.reference;

import static org.fastvmt.reference.DitOpsReference.add;
import static org.fastvmt.reference.DitOpsReference.attention;
import static org.fastvmt.reference.DitOpsReference.gatedResidual;
import static org.fastvmt.reference.DitOpsReference.geluTanh;
import static org.fastvmt.reference.DitOpsReference.layerNorm;
import static org.fastvmt.reference.DitOpsReference.linear;
import static org.fastvmt.reference.DitOpsReference.modulate;
import static org.fastvmt.reference.DitOpsReference.patchify;
import static org.fastvmt.reference.DitOpsReference.rmsNorm;
import static org.fastvmt.reference.DitOpsReference.rope3d;
import static org.fastvmt.reference.DitOpsReference.silu;
import static org.fastvmt.reference.DitOpsReference.timestepEmbedding;
import static org.fastvmt.reference.DitOpsReference.unpatchify;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

import org.fastvmt.model.wan.WanConfig;
import org.fastvmt.model.wan.WanWeights;
import org.fastvmt.reference.DitOpsReference.AttentionShape;
import org.fastvmt.reference.DitOpsReference.PatchShape;
import org.fastvmt.reference.DitOpsReference.RopeShape;
import org.fastvmt.tensor.PatchLayout;
import org.fastvmt.tensor.Tensor;

/**
 * The whole Wan2.1 text-to-video DiT in plain Java and double precision, composed of the
 * {@link DitOpsReference} ops and written from the official {@code WanModel.forward}
 * (Wan-Video/Wan2.1 {@code wan/modules/model.py}) to be read line by line against it; never
 * for speed. Weights are the values the model's tensors hold (bf16 ones widened), by their
 * original keys.
 */
public final class WanReference {

    /** e [dim], e0 [6·dim] and the embedded, padded text [textLength, dim]. */
    public record Conditioning(double[] e, double[] e0, double[] context) {
    }

    /** The self-attention query and key of one block, [tokens, dim] each. */
    public record QueryKey(double[] q, double[] k) {
    }

    private final WanConfig config;
    private final Map<String, double[]> weights;

    public WanReference(WanConfig config, Map<String, double[]> weights) {
        this.config = config;
        this.weights = Map.copyOf(weights);
        for (String key : config.parameterShapes().keySet()) {
            if (!weights.containsKey(key)) {
                throw new IllegalArgumentException("missing weight " + key);
            }
        }
    }

    /** The reference of a model's weights (read back from the backend). */
    public static WanReference of(WanWeights weights) {
        Map<String, double[]> values = new LinkedHashMap<>();
        for (Map.Entry<String, Tensor> entry : weights.tensors().entrySet()) {
            values.put(entry.getKey(), TestData.toDouble(entry.getValue().toFloatArray()));
        }
        return new WanReference(weights.config(), values);
    }

    private double[] w(String key) {
        return weights.get(key);
    }

    /** Linear of the module {@code name} ({@code name.weight} [out, in], {@code name.bias} [out]). */
    private double[] dense(double[] x, String name, int rows, int in, int out) {
        return linear(x, w(name + ".weight"), w(name + ".bias"), rows, in, out);
    }

    /** The conditioning of text [rows, textDim] and timestep t. */
    public Conditioning condition(double[] text, int rows, double t) {
        int dim = config.dim();
        if (text.length != rows * config.textDim() || rows > config.textLength()) {
            throw new IllegalArgumentException("text must be [" + rows + " <= " + config.textLength() + ", "
                    + config.textDim() + "]");
        }
        double[] padded = Arrays.copyOf(text, config.textLength() * config.textDim()); // zero rows after the prompt
        double[] context = dense(geluTanh(dense(padded, "text_embedding.0", config.textLength(), config.textDim(),
                dim)), "text_embedding.2", config.textLength(), dim, dim);
        double[] sinusoid = timestepEmbedding(new double[] {t}, config.freqDim());
        double[] e = dense(silu(dense(sinusoid, "time_embedding.0", 1, config.freqDim(), dim)), "time_embedding.2", 1,
                dim, dim);
        double[] e0 = dense(silu(e), "time_projection.1", 1, dim, 6 * dim);
        return new Conditioning(e, e0, context);
    }

    private PatchShape patches(int channels, int frames, int height, int width) {
        return new PatchShape(channels, frames, height, width, config.patchT(), config.patchH(), config.patchW());
    }

    /** patch_embedding: Conv3d with kernel = stride = patch, i.e. patchify then a Linear of the kernel. */
    public double[] embed(double[] latent, int frames, int height, int width) {
        PatchShape s = patches(config.inDim(), frames, height, width);
        double[] tokens = patchify(latent, s, PatchLayout.CHANNEL_FIRST);
        return linear(tokens, w("patch_embedding.weight"), w("patch_embedding.bias"), s.tokens(), s.features(),
                config.dim());
    }

    /** Chunk {@code n} of [6, dim] (or [2, dim]). */
    private double[] chunk(double[] table, int n) {
        return Arrays.copyOfRange(table, n * config.dim(), (n + 1) * config.dim());
    }

    /**
     * Block {@code index} on x [tokens, dim]; fills {@code qk[0]} with its query and key when not
     * null, and then returns null right away when {@code stopAfterQueryKey}.
     */
    public double[] block(int index, double[] x, Conditioning c, int[] grid, QueryKey[] qk,
            boolean stopAfterQueryKey) {
        int dim = config.dim();
        int tokens = grid[0] * grid[1] * grid[2];
        double eps = config.eps();
        String p = "blocks." + index + ".";
        double[] m = add(w(p + "modulation"), c.e0());

        // self-attention
        double[] h = modulate(layerNorm(x, null, null, tokens, dim, eps), chunk(m, 0), chunk(m, 1), tokens, dim);
        RopeShape rope = new RopeShape(grid[0], grid[1], grid[2], config.heads(), config.headDim());
        double[] q = rope3d(rmsNorm(dense(h, p + "self_attn.q", tokens, dim, dim), w(p + "self_attn.norm_q.weight"),
                tokens, dim, eps), rope, config.ropeTheta());
        double[] k = rope3d(rmsNorm(dense(h, p + "self_attn.k", tokens, dim, dim), w(p + "self_attn.norm_k.weight"),
                tokens, dim, eps), rope, config.ropeTheta());
        if (qk != null) {
            qk[0] = new QueryKey(q, k);
            if (stopAfterQueryKey) {
                return null;
            }
        }
        double[] v = dense(h, p + "self_attn.v", tokens, dim, dim);
        double[] y = dense(attention(q, k, v, new AttentionShape(tokens, tokens, config.heads(), config.headDim())),
                p + "self_attn.o", tokens, dim, dim);
        x = gatedResidual(x, y, chunk(m, 2), tokens, dim);

        // cross-attention on the (padded) text: q from norm3(x), k and v from the context
        int text = config.textLength();
        double[] n3 = layerNorm(x, w(p + "norm3.weight"), w(p + "norm3.bias"), tokens, dim, eps);
        double[] cq = rmsNorm(dense(n3, p + "cross_attn.q", tokens, dim, dim), w(p + "cross_attn.norm_q.weight"), tokens,
                dim, eps);
        double[] ck = rmsNorm(dense(c.context(), p + "cross_attn.k", text, dim, dim),
                w(p + "cross_attn.norm_k.weight"), text, dim, eps);
        double[] cv = dense(c.context(), p + "cross_attn.v", text, dim, dim);
        double[] cy = dense(attention(cq, ck, cv, new AttentionShape(tokens, text, config.heads(), config.headDim())),
                p + "cross_attn.o", tokens, dim, dim);
        x = gatedResidual(x, cy, null, tokens, dim);

        // feed-forward
        double[] h2 = modulate(layerNorm(x, null, null, tokens, dim, eps), chunk(m, 3), chunk(m, 4), tokens, dim);
        double[] f = dense(geluTanh(dense(h2, p + "ffn.0", tokens, dim, config.ffnDim())), p + "ffn.2", tokens,
                config.ffnDim(), dim);
        return gatedResidual(x, f, chunk(m, 5), tokens, dim);
    }

    private int[] grid(int frames, int height, int width) {
        return new int[] {frames / config.patchT(), height / config.patchH(), width / config.patchW()};
    }

    /** The velocity [outDim, frames, height, width] of latent [inDim, frames, height, width]. */
    public double[] forward(double[] latent, int frames, int height, int width, Conditioning c) {
        int[] grid = grid(frames, height, width);
        int tokens = grid[0] * grid[1] * grid[2];
        int dim = config.dim();
        double[] x = embed(latent, frames, height, width);
        for (int block = 0; block < config.layers(); block++) {
            x = block(block, x, c, grid, null, false);
        }
        double[] table = add(w("head.modulation"), concat(c.e(), c.e()));
        double[] h = modulate(layerNorm(x, null, null, tokens, dim, config.eps()), chunk(table, 0), chunk(table, 1),
                tokens, dim);
        double[] y = dense(h, "head.head", tokens, dim, config.outFeatures());
        return unpatchify(y, patches(config.outDim(), frames, height, width), PatchLayout.CHANNEL_LAST);
    }

    /** The self-attention query and key of block {@code block}, [tokens, dim] each. */
    public QueryKey queryKey(double[] latent, int frames, int height, int width, Conditioning c, int block) {
        int[] grid = grid(frames, height, width);
        double[] x = embed(latent, frames, height, width);
        for (int n = 0; n < block; n++) {
            x = block(n, x, c, grid, null, false);
        }
        QueryKey[] qk = new QueryKey[1];
        block(block, x, c, grid, qk, true);
        return qk[0];
    }

    private static double[] concat(double[] a, double[] b) {
        double[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }
}
