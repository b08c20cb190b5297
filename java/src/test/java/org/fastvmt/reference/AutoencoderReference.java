package org.fastvmt.reference;

import java.util.Map;

import org.fastvmt.model.vae.WanVaeConfig;

/**
 * A plain double-precision Wan2.1 VAE (Wan-Video/Wan2.1 wan/modules/vae.py) written for
 * clarity, never for speed: channel-first volumes [C, T, H, W], PyTorch weight layouts as
 * stored in Wan2.1_VAE.pth, and every causal convolution over the WHOLE sequence at once
 * (zero padding of 2 frames in front) instead of the official chunks with feature caches. The
 * temporal resamples in whole-sequence form, as the caches of vae.py make them:
 * <ul>
 * <li>downsample3d: frame 0 passes; frame k ≥ 1 is the (3, 1, 1) conv, stride 2, over frames
 * 2k − 2, 2k − 1, 2k;
 * <li>upsample3d: frame 0 passes; frames 1.. go through a causal (3, 1, 1) conv to 2C channels,
 * each output frame t becoming frames 1 + 2t (channels [0, C)) and 2 + 2t (channels [C, 2C)).
 * </ul>
 * Also the single ops of "Video autoencoder ops" in fastvmt.h, for the op tests.
 */
public final class AutoencoderReference {

    private AutoencoderReference() {
    }

    /** A channel-first volume [c, t, h, w]. */
    public record Vol(int c, int t, int h, int w, double[] data) {
        public Vol(int c, int t, int h, int w) {
            this(c, t, h, w, new double[c * t * h * w]);
        }

        int at(int ch, int f, int y, int x) {
            return ((ch * t + f) * h + y) * w + x;
        }

        double get(int ch, int f, int y, int x) {
            return data[at(ch, f, y, x)];
        }

        Vol frames(int from, int count) {
            Vol out = new Vol(c, count, h, w);
            for (int ch = 0; ch < c; ch++) {
                System.arraycopy(data, at(ch, from, 0, 0), out.data, out.at(ch, 0, 0, 0), count * h * w);
            }
            return out;
        }

        static Vol concatFrames(Vol a, Vol b) {
            Vol out = new Vol(a.c, a.t + b.t, a.h, a.w);
            for (int ch = 0; ch < a.c; ch++) {
                System.arraycopy(a.data, a.at(ch, 0, 0, 0), out.data, out.at(ch, 0, 0, 0), a.t * a.h * a.w);
                System.arraycopy(b.data, b.at(ch, 0, 0, 0), out.data, out.at(ch, a.t, 0, 0), b.t * b.h * b.w);
            }
            return out;
        }
    }

    // ------------------------------------------------------------------ model

    /** The normalised latent [z, 1 + (F − 1)/4, H/8, W/8] of a video [3, F, H, W]. */
    public static Vol encode(WanVaeConfig config, Map<String, float[]> p, Vol video) {
        Vol x = causalConv(video, p, "encoder.conv1", 3, 3);
        int index = 0;
        int in = config.dim();
        for (int i = 0; i < config.levels(); i++) {
            for (int j = 0; j < config.numResBlocks(); j++, index++) {
                x = residual(x, p, "encoder.downsamples." + index, config.levelChannels(i));
                in = config.levelChannels(i);
            }
            if (i != config.levels() - 1) {
                x = downsample(x, p, "encoder.downsamples." + index, config.temporalDownsample()[i]);
                index++;
            }
        }
        x = middle(x, p, "encoder.middle");
        x = causalConv(silu(rmsNorm(x, p.get("encoder.head.0.gamma"))), p, "encoder.head.2", 3, 3);
        Vol moments = causalConv(x, p, "conv1", 1, 1);
        int z = config.zDim();
        Vol mu = new Vol(z, moments.t, moments.h, moments.w);
        System.arraycopy(moments.data, 0, mu.data, 0, mu.data.length);
        float[] mean = config.latentMean(), std = config.latentStd();
        int plane = mu.t * mu.h * mu.w;
        for (int n = 0; n < mu.data.length; n++) {
            int ch = n / plane;
            mu.data[n] = (mu.data[n] - mean[ch]) / std[ch];
        }
        return mu;
    }

    /** The video [3, 1 + 4(T − 1), 8h, 8w] (not clamped) of a normalised latent [z, T, h, w]. */
    public static Vol decode(WanVaeConfig config, Map<String, float[]> p, Vol latent) {
        float[] mean = config.latentMean(), std = config.latentStd();
        Vol z = new Vol(latent.c, latent.t, latent.h, latent.w);
        int plane = z.t * z.h * z.w;
        for (int n = 0; n < z.data.length; n++) {
            int ch = n / plane;
            z.data[n] = latent.data[n] * std[ch] + mean[ch];
        }
        Vol x = causalConv(z, p, "conv2", 1, 1);
        x = causalConv(x, p, "decoder.conv1", 3, 3);
        x = middle(x, p, "decoder.middle");
        int index = 0;
        for (int i = 0; i < config.levels(); i++) {
            for (int j = 0; j <= config.numResBlocks(); j++, index++) {
                x = residual(x, p, "decoder.upsamples." + index, config.decoderLevelChannels(i));
            }
            if (i != config.levels() - 1) {
                x = upsample(x, p, "decoder.upsamples." + index, config.temporalUpsample(i));
                index++;
            }
        }
        return causalConv(silu(rmsNorm(x, p.get("decoder.head.0.gamma"))), p, "decoder.head.2", 3, 3);
    }

    static Vol residual(Vol x, Map<String, float[]> p, String key, int out) {
        Vol h = x.c != out ? causalConv(x, p, key + ".shortcut", 1, 1) : x;
        Vol a = causalConv(silu(rmsNorm(x, p.get(key + ".residual.0.gamma"))), p, key + ".residual.2", 3, 3);
        Vol b = causalConv(silu(rmsNorm(a, p.get(key + ".residual.3.gamma"))), p, key + ".residual.6", 3, 3);
        return add(b, h);
    }

    static Vol middle(Vol x, Map<String, float[]> p, String key) {
        Vol a = residual(x, p, key + ".0", x.c);
        Vol b = attention(a, p, key + ".1");
        return residual(b, p, key + ".2", x.c);
    }

    /** AttentionBlock: per frame, one head over all pixels, 1×1 convs for qkv and proj. */
    static Vol attention(Vol x, Map<String, float[]> p, String key) {
        int c = x.c, n = x.h * x.w;
        Vol normed = rmsNorm(x, p.get(key + ".norm.gamma"));
        float[] wQkv = p.get(key + ".to_qkv.weight"), bQkv = p.get(key + ".to_qkv.bias");
        float[] wProj = p.get(key + ".proj.weight"), bProj = p.get(key + ".proj.bias");
        Vol out = new Vol(c, x.t, x.h, x.w);
        for (int f = 0; f < x.t; f++) {
            double[][] qkv = new double[3 * c][n];
            for (int o = 0; o < 3 * c; o++) {
                for (int i = 0; i < n; i++) {
                    double s = bQkv[o];
                    for (int ch = 0; ch < c; ch++) {
                        s += wQkv[o * c + ch] * normed.get(ch, f, i / x.w, i % x.w);
                    }
                    qkv[o][i] = s;
                }
            }
            double[][] attended = new double[c][n];
            double scale = 1 / Math.sqrt(c);
            for (int i = 0; i < n; i++) {
                double[] scores = new double[n];
                for (int j = 0; j < n; j++) {
                    double s = 0;
                    for (int ch = 0; ch < c; ch++) {
                        s += qkv[ch][i] * qkv[c + ch][j];
                    }
                    scores[j] = s * scale;
                }
                double[] prob = softmax(scores);
                for (int ch = 0; ch < c; ch++) {
                    double s = 0;
                    for (int j = 0; j < n; j++) {
                        s += prob[j] * qkv[2 * c + ch][j];
                    }
                    attended[ch][i] = s;
                }
            }
            for (int o = 0; o < c; o++) {
                for (int i = 0; i < n; i++) {
                    double s = bProj[o];
                    for (int ch = 0; ch < c; ch++) {
                        s += wProj[o * c + ch] * attended[ch][i];
                    }
                    int at = out.at(o, f, i / x.w, i % x.w);
                    out.data[at] = s + x.data[at];
                }
            }
        }
        return out;
    }

    static Vol downsample(Vol x, Map<String, float[]> p, String key, boolean temporal) {
        float[] w = p.get(key + ".resample.1.weight");
        Vol y = conv3d(x, w, p.get(key + ".resample.1.bias"), w.length / (x.c * 9), 1, 3, 3, 1, 2, 2,
                new int[] {0, 0, 0, 1, 0, 1});
        if (!temporal) {
            return y;
        }
        Vol rest = y.t >= 3 ? conv3d(y, p.get(key + ".time_conv.weight"), p.get(key + ".time_conv.bias"), y.c, 3, 1, 1,
                2, 1, 1, new int[6]) : null;
        return rest == null ? y.frames(0, 1) : Vol.concatFrames(y.frames(0, 1), rest);
    }

    static Vol upsample(Vol x, Map<String, float[]> p, String key, boolean temporal) {
        if (temporal && x.t > 1) {
            Vol later = x.frames(1, x.t - 1);
            Vol doubled = conv3d(later, p.get(key + ".time_conv.weight"), p.get(key + ".time_conv.bias"), 2 * x.c, 3, 1,
                    1, 1, 1, 1, new int[] {2, 0, 0, 0, 0, 0});
            Vol interleaved = new Vol(x.c, 2 * later.t, x.h, x.w);
            for (int ch = 0; ch < x.c; ch++) {
                for (int f = 0; f < later.t; f++) {
                    for (int s = 0; s < 2; s++) {
                        for (int y = 0; y < x.h; y++) {
                            for (int xx = 0; xx < x.w; xx++) {
                                interleaved.data[interleaved.at(ch, 2 * f + s, y, xx)] =
                                        doubled.get(s * x.c + ch, f, y, xx);
                            }
                        }
                    }
                }
            }
            x = Vol.concatFrames(x.frames(0, 1), interleaved);
        }
        Vol up = upsampleNearestExact2x(x);
        float[] w = p.get(key + ".resample.1.weight");
        return conv3d(up, w, p.get(key + ".resample.1.bias"), w.length / (x.c * 9), 1, 3, 3, 1, 1, 1,
                new int[] {0, 0, 1, 1, 1, 1});
    }

    /** CausalConv3d with a cubic kernel k (1 or 3): zero padding 2·(k/2) frames in front, k/2 around in space. */
    static Vol causalConv(Vol x, Map<String, float[]> p, String key, int kt, int k) {
        float[] w = p.get(key + ".weight");
        int out = w.length / (x.c * kt * k * k);
        return conv3d(x, w, p.get(key + ".bias"), out, kt, k, k, 1, 1, 1,
                new int[] {2 * (kt / 2), 0, k / 2, k / 2, k / 2, k / 2});
    }

    /**
     * PyTorch Conv3d (Conv2d when kt = 1, weights [out, in, kt, kh, kw]) with zero padding
     * {front, back, top, bottom, left, right}.
     */
    public static Vol conv3d(Vol x, float[] w, float[] b, int out, int kt, int kh, int kw, int st, int sh, int sw,
            int[] pad) {
        int ot = (x.t + pad[0] + pad[1] - kt) / st + 1;
        int oh = (x.h + pad[2] + pad[3] - kh) / sh + 1;
        int ow = (x.w + pad[4] + pad[5] - kw) / sw + 1;
        Vol y = new Vol(out, ot, oh, ow);
        for (int o = 0; o < out; o++) {
            for (int f = 0; f < ot; f++) {
                for (int r = 0; r < oh; r++) {
                    for (int c = 0; c < ow; c++) {
                        double s = b[o];
                        for (int i = 0; i < x.c; i++) {
                            for (int a = 0; a < kt; a++) {
                                int fi = f * st + a - pad[0];
                                if (fi < 0 || fi >= x.t) {
                                    continue;
                                }
                                for (int bb = 0; bb < kh; bb++) {
                                    int ri = r * sh + bb - pad[2];
                                    if (ri < 0 || ri >= x.h) {
                                        continue;
                                    }
                                    for (int e = 0; e < kw; e++) {
                                        int ci = c * sw + e - pad[4];
                                        if (ci < 0 || ci >= x.w) {
                                            continue;
                                        }
                                        s += w[(((o * x.c + i) * kt + a) * kh + bb) * kw + e] * x.get(i, fi, ri, ci);
                                    }
                                }
                            }
                        }
                        y.data[y.at(o, f, r, c)] = s;
                    }
                }
            }
        }
        return y;
    }

    /** RMS_norm: F.normalize over channels (x / max(‖x‖, 1e-12)) · √C · gamma. */
    static Vol rmsNorm(Vol x, float[] gamma) {
        Vol y = new Vol(x.c, x.t, x.h, x.w);
        int plane = x.t * x.h * x.w;
        for (int q = 0; q < plane; q++) {
            double norm = 0;
            for (int ch = 0; ch < x.c; ch++) {
                norm += x.data[ch * plane + q] * x.data[ch * plane + q];
            }
            double d = Math.max(Math.sqrt(norm), 1e-12);
            for (int ch = 0; ch < x.c; ch++) {
                y.data[ch * plane + q] = x.data[ch * plane + q] / d * Math.sqrt(x.c) * gamma[ch];
            }
        }
        return y;
    }

    static Vol silu(Vol x) {
        Vol y = new Vol(x.c, x.t, x.h, x.w);
        for (int n = 0; n < y.data.length; n++) {
            y.data[n] = x.data[n] / (1 + Math.exp(-x.data[n]));
        }
        return y;
    }

    static Vol add(Vol a, Vol b) {
        Vol y = new Vol(a.c, a.t, a.h, a.w);
        for (int n = 0; n < y.data.length; n++) {
            y.data[n] = a.data[n] + b.data[n];
        }
        return y;
    }

    /** PyTorch 'nearest-exact' at scale 2: source index floor((dst + 0.5) / 2). */
    static Vol upsampleNearestExact2x(Vol x) {
        Vol y = new Vol(x.c, x.t, 2 * x.h, 2 * x.w);
        for (int ch = 0; ch < x.c; ch++) {
            for (int f = 0; f < x.t; f++) {
                for (int r = 0; r < y.h; r++) {
                    for (int c = 0; c < y.w; c++) {
                        int sr = Math.min((int) Math.floor((r + 0.5) / 2), x.h - 1);
                        int sc = Math.min((int) Math.floor((c + 0.5) / 2), x.w - 1);
                        y.data[y.at(ch, f, r, c)] = x.get(ch, f, sr, sc);
                    }
                }
            }
        }
        return y;
    }

    static double[] softmax(double[] v) {
        double max = Double.NEGATIVE_INFINITY;
        for (double d : v) {
            max = Math.max(max, d);
        }
        double sum = 0;
        double[] out = new double[v.length];
        for (int i = 0; i < v.length; i++) {
            out[i] = Math.exp(v[i] - max);
            sum += out[i];
        }
        for (int i = 0; i < v.length; i++) {
            out[i] /= sum;
        }
        return out;
    }

    // ------------------------------------------------------------------ single ops (channel-last)

    /** fvmt_im2col3d on x [frames, height, width, channels], for the positions [rowBegin, rowBegin + rowCount). */
    public static double[] im2col3d(double[] x, int frames, int height, int width, int channels, int[] kernel,
            int[] stride, int[] pad, long rowBegin, int rowCount) {
        int ot = (frames + pad[0] + pad[1] - kernel[0]) / stride[0] + 1;
        int oh = (height + pad[2] + pad[3] - kernel[1]) / stride[1] + 1;
        int ow = (width + pad[4] + pad[5] - kernel[2]) / stride[2] + 1;
        int features = kernel[0] * kernel[1] * kernel[2] * channels;
        double[] out = new double[rowCount * features];
        for (int i = 0; i < rowCount; i++) {
            long pos = rowBegin + i;
            int c = (int) (pos % ow), r = (int) (pos / ow % oh), f = (int) (pos / ((long) ow * oh));
            if (f >= ot) {
                throw new IllegalArgumentException("position out of range");
            }
            for (int a = 0; a < kernel[0]; a++) {
                for (int b = 0; b < kernel[1]; b++) {
                    for (int e = 0; e < kernel[2]; e++) {
                        int fi = f * stride[0] + a - pad[0], ri = r * stride[1] + b - pad[2],
                                ci = c * stride[2] + e - pad[4];
                        boolean inside = fi >= 0 && fi < frames && ri >= 0 && ri < height && ci >= 0 && ci < width;
                        for (int ch = 0; ch < channels; ch++) {
                            out[i * features + ((a * kernel[1] + b) * kernel[2] + e) * channels + ch] = inside
                                    ? x[((fi * height + ri) * width + ci) * channels + ch] : 0;
                        }
                    }
                }
            }
        }
        return out;
    }

    /** Nearest 2× upsampling of x [images, height, width, channels]. */
    public static double[] upsampleNearest2x(double[] x, int images, int height, int width, int channels) {
        double[] y = new double[x.length * 4];
        for (int n = 0; n < images; n++) {
            for (int r = 0; r < 2 * height; r++) {
                for (int c = 0; c < 2 * width; c++) {
                    for (int ch = 0; ch < channels; ch++) {
                        y[((n * 2 * height + r) * 2 * width + c) * channels + ch] =
                                x[((n * height + r / 2) * width + c / 2) * channels + ch];
                    }
                }
            }
        }
        return y;
    }

    /** x [frames, pixels, 2·channels] → [2·frames, pixels, channels]. */
    public static double[] frameInterleave(double[] x, int frames, int pixels, int channels) {
        double[] y = new double[x.length];
        for (int f = 0; f < frames; f++) {
            for (int s = 0; s < 2; s++) {
                for (int q = 0; q < pixels; q++) {
                    for (int ch = 0; ch < channels; ch++) {
                        y[((2 * f + s) * pixels + q) * channels + ch] = x[(f * pixels + q) * 2 * channels
                                + s * channels + ch];
                    }
                }
            }
        }
        return y;
    }

    /** softmax(scale · x) per row. */
    public static double[] softmaxRows(double[] x, int rows, int cols, double scale) {
        double[] y = new double[x.length];
        for (int r = 0; r < rows; r++) {
            double[] row = new double[cols];
            for (int c = 0; c < cols; c++) {
                row[c] = scale * x[r * cols + c];
            }
            System.arraycopy(softmax(row), 0, y, r * cols, cols);
        }
        return y;
    }
}
