package org.fastvmt.reference;

import org.fastvmt.tensor.PatchLayout;

/**
 * The DiT ops of {@code native/include/fastvmt.h} (section "DiT ops") and of
 * {@code org.fastvmt.tensor.Ops}, in plain Java and double precision, written to be read against
 * the header and never for speed. Each forward has its backward, the vector-Jacobian product:
 * given dL/d(output) it returns dL/d(each input), freshly allocated (not accumulated).
 * {@code DitOpsReferenceTest} ties every backward to central finite differences of its forward.
 *
 * <p>Matrices are row-major: element (r, c) of a [rows, cols] matrix is at r * cols + c.
 * Per-column vectors (bias, gamma, shift, ...) have cols elements; an optional one is null.
 */
public final class DitOpsReference {

    private DitOpsReference() {
    }

    /** dL/dx, dL/dweight and dL/dbias of {@link #linear} (dbias null without a bias). */
    public record LinearGradients(double[] dx, double[] dweight, double[] dbias) {
    }

    /** dL/dx and the gradients of the per-column parameters (null when the op has none). */
    public record NormGradients(double[] dx, double[] dgamma, double[] dbeta) {
    }

    /** dL/dx, dL/dshift, dL/dscale of {@link #modulate}. */
    public record ModulateGradients(double[] dx, double[] dshift, double[] dscale) {
    }

    /** dL/dx, dL/dy, dL/dgate of {@link #gatedResidual} (dgate null without a gate). */
    public record ResidualGradients(double[] dx, double[] dy, double[] dgate) {
    }

    /** dL/dq, dL/dk, dL/dv of {@link #attention}. */
    public record AttentionGradients(double[] dq, double[] dk, double[] dv) {
    }

    /** q [qTokens, heads·headDim], k and v [kvTokens, heads·headDim], token-major. */
    public record AttentionShape(int qTokens, int kvTokens, int heads, int headDim) {

        public int width() {
            return heads * headDim;
        }

        /** 1 / sqrt(headDim), the scale Ops uses. */
        public double scale() {
            return 1.0 / Math.sqrt(headDim);
        }

        @Override
        public String toString() {
            return "q " + qTokens + ", kv " + kvTokens + ", " + heads + "×" + headDim;
        }
    }

    /** x [frames·height·width, heads·headDim], tokens in (f, r, c) order. */
    public record RopeShape(int frames, int height, int width, int heads, int headDim) {

        public int tokens() {
            return frames * height * width;
        }

        public int elementCount() {
            return tokens() * heads * headDim;
        }

        @Override
        public String toString() {
            return frames + "×" + height + "×" + width + " tokens, " + heads + "×" + headDim;
        }
    }

    /** latent [channels, frames, height, width] in patches of (pt, ph, pw). */
    public record PatchShape(int channels, int frames, int height, int width, int pt, int ph, int pw) {

        public int tokens() {
            return (frames / pt) * (height / ph) * (width / pw);
        }

        public int features() {
            return channels * pt * ph * pw;
        }

        public int elementCount() {
            return channels * frames * height * width;
        }

        @Override
        public String toString() {
            return "latent " + channels + "×" + frames + "×" + height + "×" + width + ", patch (" + pt + ", " + ph
                    + ", " + pw + ")";
        }
    }

    // ------------------------------------------------------------------ linear and bias

    /** y [rows, out] = x [rows, in] · weight^T + bias, weight [out, in], bias [out] or null. */
    public static double[] linear(double[] x, double[] weight, double[] bias, int rows, int in, int out) {
        double[] y = new double[rows * out];
        for (int r = 0; r < rows; r++) {
            for (int o = 0; o < out; o++) {
                double sum = 0;
                for (int i = 0; i < in; i++) {
                    sum += x[r * in + i] * weight[o * in + i];
                }
                y[r * out + o] = sum;
            }
        }
        return bias == null ? y : biasAdd(y, bias, rows, out);
    }

    /** dx = dy · weight, dweight = dy^T · x, dbias = Σ_r dy (when {@code hasBias}). */
    public static LinearGradients linearBackward(double[] x, double[] weight, boolean hasBias, double[] dy, int rows,
            int in, int out) {
        double[] dx = new double[rows * in];
        double[] dweight = new double[out * in];
        for (int r = 0; r < rows; r++) {
            for (int o = 0; o < out; o++) {
                double g = dy[r * out + o];
                for (int i = 0; i < in; i++) {
                    dx[r * in + i] += g * weight[o * in + i];
                    dweight[o * in + i] += g * x[r * in + i];
                }
            }
        }
        return new LinearGradients(dx, dweight, hasBias ? biasAddBackward(dy, rows, out) : null);
    }

    /** y[r, c] = x[r, c] + bias[c]. */
    public static double[] biasAdd(double[] x, double[] bias, int rows, int cols) {
        double[] y = new double[rows * cols];
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                y[r * cols + c] = x[r * cols + c] + bias[c];
            }
        }
        return y;
    }

    /** dbias[c] = Σ_r dy[r, c] (dx = dy). */
    public static double[] biasAddBackward(double[] dy, int rows, int cols) {
        return columnSums(dy, null, rows, cols);
    }

    // ------------------------------------------------------------------ normalisation

    /**
     * LayerNorm of each row: (x − mean) / sqrt(var + eps) with the biased variance, then
     * · gamma + beta when both are given.
     */
    public static double[] layerNorm(double[] x, double[] gamma, double[] beta, int rows, int cols, double eps) {
        double[] y = new double[rows * cols];
        for (int r = 0; r < rows; r++) {
            double mean = rowMean(x, r, cols);
            double rstd = 1 / Math.sqrt(rowVariance(x, r, cols, mean) + eps);
            for (int c = 0; c < cols; c++) {
                double normalised = (x[r * cols + c] - mean) * rstd;
                y[r * cols + c] = gamma == null ? normalised : normalised * gamma[c] + beta[c];
            }
        }
        return y;
    }

    /**
     * With x̂ = (x − mean)·rstd and g = dy·gamma: dx = rstd·(g − mean(g) − x̂·mean(g·x̂)),
     * dgamma = Σ_r dy·x̂, dbeta = Σ_r dy (both null without gamma).
     */
    public static NormGradients layerNormBackward(double[] x, double[] gamma, double[] dy, int rows, int cols,
            double eps) {
        double[] dx = new double[rows * cols];
        double[] dgamma = gamma == null ? null : new double[cols];
        double[] dbeta = gamma == null ? null : new double[cols];
        for (int r = 0; r < rows; r++) {
            double mean = rowMean(x, r, cols);
            double rstd = 1 / Math.sqrt(rowVariance(x, r, cols, mean) + eps);
            double[] normalised = new double[cols];
            double[] g = new double[cols];
            double meanG = 0;
            double meanGX = 0;
            for (int c = 0; c < cols; c++) {
                normalised[c] = (x[r * cols + c] - mean) * rstd;
                g[c] = dy[r * cols + c] * (gamma == null ? 1 : gamma[c]);
                meanG += g[c] / cols;
                meanGX += g[c] * normalised[c] / cols;
                if (gamma != null) {
                    dgamma[c] += dy[r * cols + c] * normalised[c];
                    dbeta[c] += dy[r * cols + c];
                }
            }
            for (int c = 0; c < cols; c++) {
                dx[r * cols + c] = rstd * (g[c] - meanG - normalised[c] * meanGX);
            }
        }
        return new NormGradients(dx, dgamma, dbeta);
    }

    /** RMSNorm of each row: x / sqrt(mean(x²) + eps) · weight (weight null: 1). */
    public static double[] rmsNorm(double[] x, double[] weight, int rows, int cols, double eps) {
        double[] y = new double[rows * cols];
        for (int r = 0; r < rows; r++) {
            double rstd = 1 / Math.sqrt(rowMeanSquare(x, r, cols) + eps);
            for (int c = 0; c < cols; c++) {
                y[r * cols + c] = x[r * cols + c] * rstd * (weight == null ? 1 : weight[c]);
            }
        }
        return y;
    }

    /**
     * With g = dy·weight: dx = rstd·g − rstd³·x·mean(g·x) (d rstd/dx_j = −rstd³·x_j/cols),
     * dweight = Σ_r dy·x·rstd (null without weight). dbeta is null.
     */
    public static NormGradients rmsNormBackward(double[] x, double[] weight, double[] dy, int rows, int cols,
            double eps) {
        double[] dx = new double[rows * cols];
        double[] dweight = weight == null ? null : new double[cols];
        for (int r = 0; r < rows; r++) {
            double rstd = 1 / Math.sqrt(rowMeanSquare(x, r, cols) + eps);
            double meanGX = 0;
            for (int c = 0; c < cols; c++) {
                double g = dy[r * cols + c] * (weight == null ? 1 : weight[c]);
                meanGX += g * x[r * cols + c] / cols;
                if (weight != null) {
                    dweight[c] += dy[r * cols + c] * x[r * cols + c] * rstd;
                }
            }
            for (int c = 0; c < cols; c++) {
                double g = dy[r * cols + c] * (weight == null ? 1 : weight[c]);
                dx[r * cols + c] = rstd * g - rstd * rstd * rstd * x[r * cols + c] * meanGX;
            }
        }
        return new NormGradients(dx, dweight, null);
    }

    private static double rowMean(double[] x, int r, int cols) {
        double sum = 0;
        for (int c = 0; c < cols; c++) {
            sum += x[r * cols + c];
        }
        return sum / cols;
    }

    private static double rowVariance(double[] x, int r, int cols, double mean) {
        double sum = 0;
        for (int c = 0; c < cols; c++) {
            double d = x[r * cols + c] - mean;
            sum += d * d;
        }
        return sum / cols;
    }

    private static double rowMeanSquare(double[] x, int r, int cols) {
        double sum = 0;
        for (int c = 0; c < cols; c++) {
            sum += x[r * cols + c] * x[r * cols + c];
        }
        return sum / cols;
    }

    // ------------------------------------------------------------------ modulation and residuals

    /** y[r, c] = x[r, c] · (1 + scale[c]) + shift[c]. */
    public static double[] modulate(double[] x, double[] shift, double[] scale, int rows, int cols) {
        double[] y = new double[rows * cols];
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                y[r * cols + c] = x[r * cols + c] * (1 + scale[c]) + shift[c];
            }
        }
        return y;
    }

    /** dx = dy·(1 + scale), dshift = Σ_r dy, dscale = Σ_r dy·x. */
    public static ModulateGradients modulateBackward(double[] x, double[] scale, double[] dy, int rows, int cols) {
        double[] dx = new double[rows * cols];
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                dx[r * cols + c] = dy[r * cols + c] * (1 + scale[c]);
            }
        }
        return new ModulateGradients(dx, columnSums(dy, null, rows, cols), columnSums(dy, x, rows, cols));
    }

    /** out[r, c] = x[r, c] + gate[c] · y[r, c]; a null gate is 1. */
    public static double[] gatedResidual(double[] x, double[] y, double[] gate, int rows, int cols) {
        double[] out = new double[rows * cols];
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                out[r * cols + c] = x[r * cols + c] + (gate == null ? 1 : gate[c]) * y[r * cols + c];
            }
        }
        return out;
    }

    /** dx = dout, dy = dout·gate, dgate = Σ_r dout·y (null without a gate). */
    public static ResidualGradients gatedResidualBackward(double[] y, double[] gate, double[] dout, int rows,
            int cols) {
        double[] dy = new double[rows * cols];
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                dy[r * cols + c] = dout[r * cols + c] * (gate == null ? 1 : gate[c]);
            }
        }
        return new ResidualGradients(dout.clone(), dy, gate == null ? null : columnSums(dout, y, rows, cols));
    }

    /** a + b element-wise (its backward sends dout to both). */
    public static double[] add(double[] a, double[] b) {
        double[] out = new double[a.length];
        for (int n = 0; n < a.length; n++) {
            out[n] = a[n] + b[n];
        }
        return out;
    }

    /** Σ_r dy[r, c] · (factor[r, c], or 1 when factor is null). */
    private static double[] columnSums(double[] dy, double[] factor, int rows, int cols) {
        double[] sums = new double[cols];
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                sums[c] += dy[r * cols + c] * (factor == null ? 1 : factor[r * cols + c]);
            }
        }
        return sums;
    }

    // ------------------------------------------------------------------ activations

    private static final double GELU_C = Math.sqrt(2 / Math.PI);
    private static final double GELU_CUBIC = 0.044715;

    /** 0.5·x·(1 + tanh(sqrt(2/π)·(x + 0.044715·x³))), PyTorch's approximate='tanh'. */
    public static double[] geluTanh(double[] x) {
        double[] y = new double[x.length];
        for (int n = 0; n < x.length; n++) {
            double v = x[n];
            y[n] = 0.5 * v * (1 + Math.tanh(GELU_C * (v + GELU_CUBIC * v * v * v)));
        }
        return y;
    }

    /** dx = dy · (0.5·(1 + tanh u) + 0.5·x·(1 − tanh² u)·sqrt(2/π)·(1 + 3·0.044715·x²)). */
    public static double[] geluTanhBackward(double[] x, double[] dy) {
        double[] dx = new double[x.length];
        for (int n = 0; n < x.length; n++) {
            double v = x[n];
            double t = Math.tanh(GELU_C * (v + GELU_CUBIC * v * v * v));
            double derivative = 0.5 * (1 + t) + 0.5 * v * (1 - t * t) * GELU_C * (1 + 3 * GELU_CUBIC * v * v);
            dx[n] = dy[n] * derivative;
        }
        return dx;
    }

    /** x · sigmoid(x). */
    public static double[] silu(double[] x) {
        double[] y = new double[x.length];
        for (int n = 0; n < x.length; n++) {
            y[n] = x[n] / (1 + Math.exp(-x[n]));
        }
        return y;
    }

    /** dx = dy · s·(1 + x·(1 − s)) with s = sigmoid(x). */
    public static double[] siluBackward(double[] x, double[] dy) {
        double[] dx = new double[x.length];
        for (int n = 0; n < x.length; n++) {
            double s = 1 / (1 + Math.exp(-x[n]));
            dx[n] = dy[n] * s * (1 + x[n] * (1 - s));
        }
        return dx;
    }

    // ------------------------------------------------------------------ 3D rotary embedding

    /**
     * The rotation angle of pair m of token (f, r, c): with n_r = n_c = (headDim/2)/3 and
     * n_f = headDim/2 − 2·n_r, pair m &lt; n_f turns by f·θ^(−2m/(2n_f)), the next n_r by
     * r·θ^(−2(m−n_f)/(2n_r)), the last n_c by c·θ^(−2(m−n_f−n_r)/(2n_c)).
     */
    public static double ropeAngle(int f, int r, int c, int m, int headDim, double theta) {
        int half = headDim / 2;
        int nR = half / 3;
        int nC = nR;
        int nF = half - 2 * nR;
        if (m < nF) {
            return f * Math.pow(theta, -2.0 * m / (2.0 * nF));
        }
        if (m < nF + nR) {
            return r * Math.pow(theta, -2.0 * (m - nF) / (2.0 * nR));
        }
        return c * Math.pow(theta, -2.0 * (m - nF - nR) / (2.0 * nC));
    }

    /** Rotates each pair (x[2m], x[2m+1]) of each head of each token by its angle. */
    public static double[] rope3d(double[] x, RopeShape s, double theta) {
        return rotate(x, s, theta, 1);
    }

    /** dx = the inverse rotation (by −angle) of dy. */
    public static double[] rope3dBackward(double[] dy, RopeShape s, double theta) {
        return rotate(dy, s, theta, -1);
    }

    private static double[] rotate(double[] x, RopeShape s, double theta, int sign) {
        double[] y = new double[x.length];
        int width = s.heads() * s.headDim();
        for (int f = 0; f < s.frames(); f++) {
            for (int r = 0; r < s.height(); r++) {
                for (int c = 0; c < s.width(); c++) {
                    int token = (f * s.height() + r) * s.width() + c;
                    for (int head = 0; head < s.heads(); head++) {
                        for (int m = 0; m < s.headDim() / 2; m++) {
                            double angle = sign * ropeAngle(f, r, c, m, s.headDim(), theta);
                            int at = token * width + head * s.headDim() + 2 * m;
                            double re = x[at];
                            double im = x[at + 1];
                            y[at] = re * Math.cos(angle) - im * Math.sin(angle);
                            y[at + 1] = re * Math.sin(angle) + im * Math.cos(angle);
                        }
                    }
                }
            }
        }
        return y;
    }

    // ------------------------------------------------------------------ attention

    /**
     * The probabilities softmax_j(scale · q_i · k_j) of head {@code head}: [qTokens, kvTokens].
     */
    private static double[] probabilities(double[] q, double[] k, AttentionShape s, int head) {
        int d = s.headDim();
        double[] p = new double[s.qTokens() * s.kvTokens()];
        for (int i = 0; i < s.qTokens(); i++) {
            double max = Double.NEGATIVE_INFINITY;
            for (int j = 0; j < s.kvTokens(); j++) {
                double dot = 0;
                for (int e = 0; e < d; e++) {
                    dot += q[i * s.width() + head * d + e] * k[j * s.width() + head * d + e];
                }
                p[i * s.kvTokens() + j] = s.scale() * dot;
                max = Math.max(max, p[i * s.kvTokens() + j]);
            }
            double sum = 0;
            for (int j = 0; j < s.kvTokens(); j++) {
                p[i * s.kvTokens() + j] = Math.exp(p[i * s.kvTokens() + j] - max);
                sum += p[i * s.kvTokens() + j];
            }
            for (int j = 0; j < s.kvTokens(); j++) {
                p[i * s.kvTokens() + j] /= sum;
            }
        }
        return p;
    }

    /** out_i = Σ_j softmax_j(q_i·k_j / sqrt(headDim)) v_j, per head; [qTokens, heads·headDim]. */
    public static double[] attention(double[] q, double[] k, double[] v, AttentionShape s) {
        int d = s.headDim();
        double[] out = new double[s.qTokens() * s.width()];
        for (int head = 0; head < s.heads(); head++) {
            double[] p = probabilities(q, k, s, head);
            for (int i = 0; i < s.qTokens(); i++) {
                for (int j = 0; j < s.kvTokens(); j++) {
                    for (int e = 0; e < d; e++) {
                        out[i * s.width() + head * d + e] += p[i * s.kvTokens() + j] * v[j * s.width() + head * d + e];
                    }
                }
            }
        }
        return out;
    }

    /**
     * dv_j = Σ_i P_ij·dout_i; dP_ij = dout_i·v_j; dS_ij = P_ij·(dP_ij − Σ_j' P_ij'·dP_ij');
     * dq_i = scale·Σ_j dS_ij·k_j; dk_j = scale·Σ_i dS_ij·q_i.
     */
    public static AttentionGradients attentionBackward(double[] q, double[] k, double[] v, double[] dout,
            AttentionShape s) {
        int d = s.headDim();
        int w = s.width();
        double[] dq = new double[q.length];
        double[] dk = new double[k.length];
        double[] dv = new double[v.length];
        for (int head = 0; head < s.heads(); head++) {
            double[] p = probabilities(q, k, s, head);
            for (int i = 0; i < s.qTokens(); i++) {
                double[] dp = new double[s.kvTokens()];
                double rowTerm = 0;
                for (int j = 0; j < s.kvTokens(); j++) {
                    for (int e = 0; e < d; e++) {
                        dp[j] += dout[i * w + head * d + e] * v[j * w + head * d + e];
                        dv[j * w + head * d + e] += p[i * s.kvTokens() + j] * dout[i * w + head * d + e];
                    }
                    rowTerm += p[i * s.kvTokens() + j] * dp[j];
                }
                for (int j = 0; j < s.kvTokens(); j++) {
                    double dScore = p[i * s.kvTokens() + j] * (dp[j] - rowTerm);
                    for (int e = 0; e < d; e++) {
                        dq[i * w + head * d + e] += s.scale() * dScore * k[j * w + head * d + e];
                        dk[j * w + head * d + e] += s.scale() * dScore * q[i * w + head * d + e];
                    }
                }
            }
        }
        return new AttentionGradients(dq, dk, dv);
    }

    // ------------------------------------------------------------------ timestep embedding

    /** out[i] = (cos(t_i·w_m) for m &lt; half, then sin(t_i·w_m)), w_m = 10000^(−m/half); [count, dim]. */
    public static double[] timestepEmbedding(double[] t, int dim) {
        int half = dim / 2;
        double[] out = new double[t.length * dim];
        for (int i = 0; i < t.length; i++) {
            for (int m = 0; m < half; m++) {
                double angle = t[i] * Math.pow(10000, -(double) m / half);
                out[i * dim + m] = Math.cos(angle);
                out[i * dim + half + m] = Math.sin(angle);
            }
        }
        return out;
    }

    /** dt_i = Σ_m w_m·(−dout[i, m]·sin(t_i·w_m) + dout[i, half + m]·cos(t_i·w_m)). */
    public static double[] timestepEmbeddingBackward(double[] t, int dim, double[] dout) {
        int half = dim / 2;
        double[] dt = new double[t.length];
        for (int i = 0; i < t.length; i++) {
            for (int m = 0; m < half; m++) {
                double w = Math.pow(10000, -(double) m / half);
                double angle = t[i] * w;
                dt[i] += w * (-dout[i * dim + m] * Math.sin(angle) + dout[i * dim + half + m] * Math.cos(angle));
            }
        }
        return dt;
    }

    // ------------------------------------------------------------------ patches

    /**
     * The feature index of latent offset (ch, a, b, e) within its patch, in {@code layout} order.
     */
    public static int patchFeature(PatchShape s, PatchLayout layout, int ch, int a, int b, int e) {
        return switch (layout) {
            case CHANNEL_FIRST -> ((ch * s.pt() + a) * s.ph() + b) * s.pw() + e;
            case CHANNEL_LAST -> ((a * s.ph() + b) * s.pw() + e) * s.channels() + ch;
        };
    }

    /**
     * latent [channels, frames, height, width] → tokens [tokens, features]: token
     * (f·(height/ph) + r)·(width/pw) + c holds latent[ch, f·pt + a, r·ph + b, c·pw + e] at
     * {@link #patchFeature}.
     */
    public static double[] patchify(double[] latent, PatchShape s, PatchLayout layout) {
        double[] tokens = new double[s.tokens() * s.features()];
        int[] map = patchMap(s, layout);
        for (int n = 0; n < map.length; n++) {
            tokens[map[n]] = latent[n];
        }
        return tokens;
    }

    /** The inverse of {@link #patchify}: tokens → latent. */
    public static double[] unpatchify(double[] tokens, PatchShape s, PatchLayout layout) {
        double[] latent = new double[s.elementCount()];
        int[] map = patchMap(s, layout);
        for (int n = 0; n < map.length; n++) {
            latent[n] = tokens[map[n]];
        }
        return latent;
    }

    /** A permutation's gradient is its inverse: dlatent = unpatchify(dtokens). */
    public static double[] patchifyBackward(double[] dtokens, PatchShape s, PatchLayout layout) {
        return unpatchify(dtokens, s, layout);
    }

    /** dtokens = patchify(dlatent). */
    public static double[] unpatchifyBackward(double[] dlatent, PatchShape s, PatchLayout layout) {
        return patchify(dlatent, s, layout);
    }

    /** For each latent element (ch, frame, row, col) in storage order, its index in the tokens. */
    private static int[] patchMap(PatchShape s, PatchLayout layout) {
        int[] map = new int[s.elementCount()];
        int tokenRows = s.height() / s.ph();
        int tokenCols = s.width() / s.pw();
        for (int ch = 0; ch < s.channels(); ch++) {
            for (int frame = 0; frame < s.frames(); frame++) {
                for (int row = 0; row < s.height(); row++) {
                    for (int col = 0; col < s.width(); col++) {
                        int token = ((frame / s.pt()) * tokenRows + row / s.ph()) * tokenCols + col / s.pw();
                        int feature = patchFeature(s, layout, ch, frame % s.pt(), row % s.ph(), col % s.pw());
                        map[((ch * s.frames() + frame) * s.height() + row) * s.width() + col] =
                                token * s.features() + feature;
                    }
                }
            }
        }
        return map;
    }
}
