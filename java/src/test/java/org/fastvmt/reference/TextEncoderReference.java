package org.fastvmt.reference;

import java.util.Map;

/**
 * The text encoder ops and the whole umT5 encoder in plain double-precision Java, written from
 * wan/modules/t5.py for clarity, never for speed: the reference every backend is tested against.
 * Matrices are row-major; a Linear weight is [out, in].
 */
public final class TextEncoderReference {

    private TextEncoderReference() {
    }

    public static double[] mul(double[] a, double[] b) {
        double[] y = new double[a.length];
        for (int i = 0; i < a.length; i++) {
            y[i] = a[i] * b[i];
        }
        return y;
    }

    /** Rows ids[t] of table [vocab, dim]. */
    public static double[] embedding(int[] ids, double[] table, int dim) {
        double[] out = new double[ids.length * dim];
        for (int t = 0; t < ids.length; t++) {
            System.arraycopy(table, ids[t] * dim, out, t * dim, dim);
        }
        return out;
    }

    /**
     * t5.py's _relative_position_bucket with bidirectional=True, in exact arithmetic: for
     * a = |key − query| ≥ e = numBuckets/4, the bucket is e + floor((n − e)·log(a/e)/log(maxDistance/e))
     * with n = numBuckets/2, capped at n − 1, plus n when key > query.
     */
    public static int bucket(int relative, int numBuckets, int maxDistance) {
        int half = numBuckets / 2;
        int offset = relative > 0 ? half : 0;
        int a = Math.abs(relative);
        int exact = half / 2;
        if (a < exact) {
            return offset + a;
        }
        double steps = Math.log((double) a / exact) / Math.log((double) maxDistance / exact) * (half - exact);
        return offset + Math.min(half - 1, exact + (int) Math.floor(steps));
    }

    /**
     * T5 attention for one sequence: per head h, query i, the scores scale·q_i·k_j + bias[h, i, j]
     * over the keys j with mask[j] ≠ 0 (mask null: all), softmax, times v; zeros when no key is
     * left. q [sq, heads·d], k, v [sk, heads·d]; relBias [heads, sq + sk − 1] at j − i + sq − 1, or null.
     */
    public static double[] relativeAttention(double[] q, double[] k, double[] v, double[] relBias, int[] mask,
            int sq, int sk, int heads, int d, double scale) {
        int width = heads * d;
        int positions = sq + sk - 1;
        double[] out = new double[sq * width];
        for (int h = 0; h < heads; h++) {
            for (int i = 0; i < sq; i++) {
                double[] s = new double[sk];
                double max = Double.NEGATIVE_INFINITY;
                for (int j = 0; j < sk; j++) {
                    if (mask != null && mask[j] == 0) {
                        s[j] = Double.NEGATIVE_INFINITY;
                        continue;
                    }
                    double dot = 0;
                    for (int c = 0; c < d; c++) {
                        dot += q[i * width + h * d + c] * k[j * width + h * d + c];
                    }
                    s[j] = scale * dot + (relBias == null ? 0 : relBias[h * positions + j - i + sq - 1]);
                    max = Math.max(max, s[j]);
                }
                if (max == Double.NEGATIVE_INFINITY) {
                    continue;
                }
                double sum = 0;
                for (int j = 0; j < sk; j++) {
                    s[j] = Math.exp(s[j] - max);
                    sum += s[j];
                }
                for (int j = 0; j < sk; j++) {
                    for (int c = 0; c < d; c++) {
                        out[i * width + h * d + c] += s[j] / sum * v[j * width + h * d + c];
                    }
                }
            }
        }
        return out;
    }

    /** The shape of an encoder, as the reference needs it. */
    public record EncoderShape(int dim, int dimAttn, int ffnDim, int heads, int layers, int numBuckets,
            int maxDistance, double eps) {
    }

    /**
     * t5.py's T5Encoder.forward for one sequence of ids, with the keys from {@code validTokens} on
     * masked (Wan's padding mask): [ids.length, dim]. {@code weights} holds every parameter by its
     * official key, as the values the model's tensors hold.
     */
    public static double[] encoder(Map<String, double[]> weights, EncoderShape s, int[] ids, int validTokens) {
        int n = ids.length;
        int headDim = s.dimAttn() / s.heads();
        int[] mask = new int[n];
        for (int t = 0; t < validTokens; t++) {
            mask[t] = 1;
        }
        double[] x = embedding(ids, weights.get("token_embedding.weight"), s.dim());
        for (int b = 0; b < s.layers(); b++) {
            String p = "blocks." + b + ".";
            // T5RelativeEmbedding: bias[h, i, j] = table[bucket(j - i), h], stored here per relative position.
            double[] table = weights.get(p + "pos_embedding.embedding.weight");
            double[] relBias = new double[s.heads() * (2 * n - 1)];
            for (int r = -(n - 1); r <= n - 1; r++) {
                int bucket = bucket(r, s.numBuckets(), s.maxDistance());
                for (int h = 0; h < s.heads(); h++) {
                    relBias[h * (2 * n - 1) + r + n - 1] = table[bucket * s.heads() + h];
                }
            }
            double[] h1 = DitOpsReference.rmsNorm(x, weights.get(p + "norm1.weight"), n, s.dim(), s.eps());
            double[] q = DitOpsReference.linear(h1, weights.get(p + "attn.q.weight"), null, n, s.dim(), s.dimAttn());
            double[] k = DitOpsReference.linear(h1, weights.get(p + "attn.k.weight"), null, n, s.dim(), s.dimAttn());
            double[] v = DitOpsReference.linear(h1, weights.get(p + "attn.v.weight"), null, n, s.dim(), s.dimAttn());
            double[] a = relativeAttention(q, k, v, relBias, mask, n, n, s.heads(), headDim, 1.0);
            double[] o = DitOpsReference.linear(a, weights.get(p + "attn.o.weight"), null, n, s.dimAttn(), s.dim());
            x = DitOpsReference.add(x, o);
            double[] h2 = DitOpsReference.rmsNorm(x, weights.get(p + "norm2.weight"), n, s.dim(), s.eps());
            double[] gate = DitOpsReference.geluTanh(
                    DitOpsReference.linear(h2, weights.get(p + "ffn.gate.0.weight"), null, n, s.dim(), s.ffnDim()));
            double[] fc1 = DitOpsReference.linear(h2, weights.get(p + "ffn.fc1.weight"), null, n, s.dim(), s.ffnDim());
            double[] y = DitOpsReference.linear(mul(fc1, gate), weights.get(p + "ffn.fc2.weight"), null, n, s.ffnDim(),
                    s.dim());
            x = DitOpsReference.add(x, y);
        }
        return DitOpsReference.rmsNorm(x, weights.get("norm.weight"), n, s.dim(), s.eps());
    }
}
