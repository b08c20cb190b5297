package org.fastvmt.model.vae;

import java.util.ArrayList;
import java.util.List;

import org.fastvmt.backend.Backend;
import org.fastvmt.io.VideoTensor;
import org.fastvmt.tensor.DType;
import org.fastvmt.tensor.Graph;
import org.fastvmt.tensor.Ops;
import org.fastvmt.tensor.Ops.ConvGeometry;
import org.fastvmt.tensor.PatchLayout;
import org.fastvmt.tensor.Tensor;

/**
 * The Wan2.1 video VAE ({@code WanVAE} / {@code WanVAE_} of Wan-Video/Wan2.1
 * wan/modules/vae.py), inference only, on the channel-last ops of {@link Ops}.
 *
 * <p>{@link #encode} follows the official causal chunking exactly: the first frame alone, then
 * chunks of 4 frames, every causal convolution keeping the last 2 frames of its input
 * (CACHE_T = 2) for the next chunk, the temporal downsamples keeping their last frame; it
 * returns the mean of the posterior (the first zDim channels of {@code conv1}), normalised per
 * channel as {@code (mu − mean) / std}. {@link #decode} undoes the normalisation, applies
 * {@code conv2} and runs the decoder one latent frame at a time with its own caches; the first
 * latent frame passes the temporal upsamples without doubling ('Rep' in vae.py), so F = 4k + 1
 * frames give k + 1 latent frames and back.
 *
 * <p>{@link #encodeTiled} and {@link #decodeTiled} bound memory by running spatial tiles that
 * overlap and blending them with linear ramps over the overlap.
 *
 * <p>Used from one thread at a time; holds no state between calls.
 */
public final class WanVae {

    /**
     * RMS_norm is F.normalize(x, dim=channels) · √C · gamma: x / max(‖x‖, 1e-12) · √C. As an RMS
     * norm x / sqrt(mean(x²) + eps) it is the same with eps = 1e-24 / C (they differ only for
     * ‖x‖ near 1e-12).
     */
    private static final double NORMALIZE_EPS_SQUARED = 1e-24;

    private final WanVaeWeights weights;
    private final WanVaeConfig config;
    private final Backend backend;

    public WanVae(WanVaeWeights weights) {
        this.weights = weights;
        this.config = weights.config();
        this.backend = weights.get("conv1.weight").backend();
    }

    public WanVaeConfig config() {
        return config;
    }

    public WanVaeWeights weights() {
        return weights;
    }

    public Backend backend() {
        return backend;
    }

    // ------------------------------------------------------------------ public API

    /**
     * video [3, F, H, W] in [−1, 1] (F = 4k + 1, H and W multiples of 8) → the normalised latent
     * [zDim, k + 1, H/8, W/8]; the caller closes it.
     */
    public Tensor encode(Tensor video) {
        int[] size = requireVideo(video);
        int frames = size[0], height = size[1], width = size[2];
        try (Graph graph = new Graph(backend, false); Run run = new Run(graph)) {
            Ops ops = run.ops;
            // [3, F, H, W] → [F·H·W, 3]: channel-last frames.
            Tensor x = ops.patchify(video, 1, 1, 1, PatchLayout.CHANNEL_LAST).view(frames, height, width, 3);
            Encoder encoder = new Encoder(run);
            int latentFrames = config.latentFrames(frames);
            int lh = height / config.spatialFactor(), lw = width / config.spatialFactor();
            int z2 = 2 * config.zDim();
            Tensor moments = run.newTensor(latentFrames, lh, lw, z2);
            long done = 0;
            int temporal = config.temporalFactor();
            for (int chunk = 0, first = 0; first < frames; chunk++) {
                int count = chunk == 0 ? 1 : temporal;
                Tensor part = x.slice((long) first * height * width * 3, count, height, width, 3);
                Tensor out = encoder.forward(part);
                moments.slice(done, out.shape()).copyFrom(out);
                done += out.elementCount();
                run.free(out);
                first += count;
            }
            if (done != moments.elementCount()) {
                throw new IllegalStateException("the encoder produced " + done / ((long) lh * lw * z2)
                        + " latent frames, expected " + latentFrames);
            }
            // conv1 is 1×1×1; only its first zDim outputs (mu) are needed.
            int z = config.zDim();
            Tensor conv1 = weights.get("conv1.weight");
            Tensor mu = ops.conv3d(moments, conv1.slice(0, z, z2), weights.get("conv1.bias").slice(0, z), POINT);
            long rows = (long) latentFrames * lh * lw;
            Tensor normalised = ops.modulate(mu.view(rows, z), run.constant(normaliseShift()),
                    run.constant(normaliseScale()));
            Tensor latent = ops.unpatchify(normalised, z, latentFrames, lh, lw, 1, 1, 1, PatchLayout.CHANNEL_LAST);
            return graph.disown(latent);
        }
    }

    /**
     * The normalised latent [zDim, T, h, w] → video [3, 1 + 4(T − 1), 8h, 8w], not clamped (as
     * {@code WanVAE_.decode}); the caller closes it.
     */
    public Tensor decode(Tensor latent) {
        int[] size = requireLatent(latent);
        int latentFrames = size[0], lh = size[1], lw = size[2];
        int z = config.zDim();
        try (Graph graph = new Graph(backend, false); Run run = new Run(graph)) {
            Ops ops = run.ops;
            long rows = (long) latentFrames * lh * lw;
            Tensor tokens = ops.patchify(latent, 1, 1, 1, PatchLayout.CHANNEL_LAST);
            Tensor raw = ops.modulate(tokens, run.constant(config.latentMean()), run.constant(denormaliseScale()));
            run.free(tokens);
            Tensor x = ops.conv3d(raw.view(latentFrames, lh, lw, z), weights.get("conv2.weight"),
                    weights.get("conv2.bias"), POINT);
            run.free(raw);
            int frames = config.videoFrames(latentFrames);
            int height = lh * config.spatialFactor(), width = lw * config.spatialFactor();
            Tensor video = run.newTensor(frames, height, width, 3);
            Decoder decoder = new Decoder(run);
            long done = 0;
            for (int t = 0; t < latentFrames; t++) {
                Tensor out = decoder.forward(x.slice((long) t * lh * lw * z, 1, lh, lw, z));
                video.slice(done, out.shape()).copyFrom(out);
                done += out.elementCount();
                run.free(out);
            }
            Tensor result = ops.unpatchify(video.view((long) frames * height * width, 3), 3, frames, height, width,
                    1, 1, 1, PatchLayout.CHANNEL_LAST);
            return graph.disown(result);
        }
    }

    /** {@link #encode} of a host video. */
    public Tensor encode(VideoTensor video) {
        try (Tensor t = video.toTensor(backend)) {
            return encode(t);
        }
    }

    /** {@link #decode}, clamped to [−1, 1] and brought to the host (as {@code WanVAE.decode}). */
    public VideoTensor decodeVideo(Tensor latent, double fps) {
        try (Tensor video = decode(latent)) {
            float[] data = video.toFloatArray();
            for (int n = 0; n < data.length; n++) {
                data[n] = Math.max(-1f, Math.min(1f, data[n]));
            }
            return new VideoTensor((int) video.dim(1), (int) video.dim(2), (int) video.dim(3), fps, data);
        }
    }

    /**
     * Spatial tiles, in latent pixels: tiles of {@code height × width} latent pixels whose
     * neighbours overlap by {@code overlap} (8× that in video pixels). The last tile of a row or
     * column is moved back to end at the border, so it may overlap more.
     */
    public record Tiling(int height, int width, int overlap) {

        /**
         * 34×34 latent pixels (272×272 video pixels) overlapping by 16, the tile and stride of
         * DiffSynth-Studio's tiled Wan VAE: the decoder reaches 8–16 latent pixels into a tile
         * from its edge (measured on random weights), so an overlap of 16 keeps the blended band
         * out of the damaged border.
         */
        public static final Tiling DEFAULT = new Tiling(34, 34, 16);

        public Tiling {
            if (height < 1 || width < 1 || overlap < 0 || overlap >= height || overlap >= width) {
                throw new IllegalArgumentException("tiling: height and width must be >= 1 and overlap in [0, min("
                        + height + ", " + width + ")), got " + height + "×" + width + " overlap " + overlap);
            }
        }
    }

    /** {@link #encode} by overlapping spatial tiles (each encoded on its own), blended in latent space. */
    public Tensor encodeTiled(Tensor video, Tiling tiling) {
        int[] size = requireVideo(video);
        int frames = size[0], height = size[1], width = size[2];
        int s = config.spatialFactor();
        int lh = height / s, lw = width / s, z = config.zDim();
        int latentFrames = config.latentFrames(frames);
        float[] host = video.toFloatArray();
        TileBlend blend = new TileBlend(z, latentFrames, lh, lw);
        for (int[] tile : tiles(lh, lw, tiling)) {
            int th = tile[2], tw = tile[3];
            float[] part = crop(host, 3, frames, height, width, tile[0] * s, tile[1] * s, th * s, tw * s);
            try (Tensor in = Tensor.of(backend, part, 3, frames, (long) th * s, (long) tw * s);
                    Tensor out = encode(in)) {
                blend.add(out.toFloatArray(), tile[0], tile[1], th, tw, tiling.overlap());
            }
        }
        return Tensor.of(backend, blend.result(), z, latentFrames, lh, lw);
    }

    /** {@link #decode} by overlapping latent tiles (each decoded on its own), blended in video space. */
    public Tensor decodeTiled(Tensor latent, Tiling tiling) {
        int[] size = requireLatent(latent);
        int latentFrames = size[0], lh = size[1], lw = size[2];
        int s = config.spatialFactor(), z = config.zDim();
        int frames = config.videoFrames(latentFrames);
        float[] host = latent.toFloatArray();
        TileBlend blend = new TileBlend(3, frames, lh * s, lw * s);
        for (int[] tile : tiles(lh, lw, tiling)) {
            int th = tile[2], tw = tile[3];
            float[] part = crop(host, z, latentFrames, lh, lw, tile[0], tile[1], th, tw);
            try (Tensor in = Tensor.of(backend, part, z, latentFrames, th, tw); Tensor out = decode(in)) {
                blend.add(out.toFloatArray(), tile[0] * s, tile[1] * s, th * s, tw * s, tiling.overlap() * s);
            }
        }
        return Tensor.of(backend, blend.result(), 3, frames, (long) lh * s, (long) lw * s);
    }

    // ------------------------------------------------------------------ tiling

    /** Tiles {row0, col0, rows, cols} covering [h, w]: starts every (tile − overlap), the last one flush with the end. */
    static List<int[]> tiles(int h, int w, Tiling tiling) {
        List<int[]> out = new ArrayList<>();
        for (int r : starts(h, tiling.height(), tiling.overlap())) {
            for (int c : starts(w, tiling.width(), tiling.overlap())) {
                out.add(new int[] {r, c, Math.min(tiling.height(), h), Math.min(tiling.width(), w)});
            }
        }
        return out;
    }

    private static List<Integer> starts(int extent, int tile, int overlap) {
        List<Integer> out = new ArrayList<>();
        if (tile >= extent) {
            out.add(0);
            return out;
        }
        for (int s = 0;; s += tile - overlap) {
            if (s + tile >= extent) {
                out.add(extent - tile);
                return out;
            }
            out.add(s);
        }
    }

    private static float[] crop(float[] data, int channels, int frames, int height, int width, int r0, int c0, int h,
            int w) {
        float[] out = new float[channels * frames * h * w];
        int n = 0;
        for (int c = 0; c < channels; c++) {
            for (int f = 0; f < frames; f++) {
                for (int r = 0; r < h; r++) {
                    System.arraycopy(data, ((c * frames + f) * height + r0 + r) * width + c0, out, n, w);
                    n += w;
                }
            }
        }
        return out;
    }

    /**
     * A weighted average of overlapping tiles of a [channels, frames, height, width] array: a tile
     * weighs 1 inside and ramps linearly to (0.5 / overlap) towards each side it shares with a
     * neighbour (not at the border), so the seams blend and every pixel has a positive weight.
     */
    private static final class TileBlend {
        private final int channels, frames, height, width;
        private final double[] sum, weight;

        TileBlend(int channels, int frames, int height, int width) {
            this.channels = channels;
            this.frames = frames;
            this.height = height;
            this.width = width;
            this.sum = new double[channels * frames * height * width];
            this.weight = new double[height * width];
        }

        void add(float[] tile, int r0, int c0, int h, int w, int overlap) {
            double[] wr = ramp(r0, h, height, overlap);
            double[] wc = ramp(c0, w, width, overlap);
            for (int r = 0; r < h; r++) {
                for (int c = 0; c < w; c++) {
                    weight[(r0 + r) * width + c0 + c] += wr[r] * wc[c];
                }
            }
            int n = 0;
            for (int ch = 0; ch < channels; ch++) {
                for (int f = 0; f < frames; f++) {
                    for (int r = 0; r < h; r++) {
                        int at = ((ch * frames + f) * height + r0 + r) * width + c0;
                        for (int c = 0; c < w; c++) {
                            sum[at + c] += wr[r] * wc[c] * tile[n++];
                        }
                    }
                }
            }
        }

        private static double[] ramp(int start, int length, int extent, int overlap) {
            double[] out = new double[length];
            for (int i = 0; i < length; i++) {
                double v = 1;
                if (overlap > 0 && start > 0) {
                    v = Math.min(v, (i + 0.5) / overlap);
                }
                if (overlap > 0 && start + length < extent) {
                    v = Math.min(v, (length - i - 0.5) / overlap);
                }
                out[i] = v;
            }
            return out;
        }

        float[] result() {
            float[] out = new float[sum.length];
            int plane = height * width;
            for (int n = 0; n < out.length; n++) {
                out[n] = (float) (sum[n] / weight[n % plane]);
            }
            return out;
        }
    }

    // ------------------------------------------------------------------ checks

    /** [frames, height, width] of a video tensor [3, F, H, W]. */
    private int[] requireVideo(Tensor video) {
        if (video == null) {
            throw new IllegalArgumentException("video must not be null");
        }
        if (video.dtype() != DType.F32 || video.rank() != 4 || video.dim(0) != 3) {
            throw new IllegalArgumentException("video must be an F32 tensor [3, frames, height, width] (RGB in "
                    + "[-1, 1]), got " + video);
        }
        if (video.backend() != backend) {
            throw new IllegalArgumentException("video lives on " + video.backend().name() + ", the VAE on "
                    + backend.name());
        }
        int frames = (int) video.dim(1), height = (int) video.dim(2), width = (int) video.dim(3);
        config.requireVideoFrames(frames);
        int s = config.spatialFactor();
        if (height < s || width < s || height % s != 0 || width % s != 0) {
            throw new IllegalArgumentException("video height and width must be positive multiples of " + s
                    + ", got " + height + "×" + width);
        }
        return new int[] {frames, height, width};
    }

    /** [frames, height, width] of a latent [zDim, T, h, w]. */
    private int[] requireLatent(Tensor latent) {
        if (latent == null) {
            throw new IllegalArgumentException("latent must not be null");
        }
        if (latent.dtype() != DType.F32 || latent.rank() != 4 || latent.dim(0) != config.zDim()
                || latent.elementCount() == 0) {
            throw new IllegalArgumentException("latent must be a non-empty F32 tensor [" + config.zDim()
                    + ", frames, height, width], got " + latent);
        }
        if (latent.backend() != backend) {
            throw new IllegalArgumentException("latent lives on " + latent.backend().name() + ", the VAE on "
                    + backend.name());
        }
        return new int[] {(int) latent.dim(1), (int) latent.dim(2), (int) latent.dim(3)};
    }

    // ------------------------------------------------------------------ normalisation

    /** (mu − mean) / std = mu · (1 + (1/std − 1)) + (−mean/std), as fvmt_modulate's scale and shift. */
    private float[] normaliseScale() {
        float[] std = config.latentStd();
        float[] out = new float[std.length];
        for (int c = 0; c < out.length; c++) {
            out[c] = (float) (1.0 / std[c] - 1.0);
        }
        return out;
    }

    private float[] normaliseShift() {
        float[] mean = config.latentMean(), std = config.latentStd();
        float[] out = new float[mean.length];
        for (int c = 0; c < out.length; c++) {
            out[c] = (float) (-(double) mean[c] / std[c]);
        }
        return out;
    }

    /** z · std + mean = z · (1 + (std − 1)) + mean. */
    private float[] denormaliseScale() {
        float[] std = config.latentStd();
        float[] out = new float[std.length];
        for (int c = 0; c < out.length; c++) {
            out[c] = std[c] - 1f;
        }
        return out;
    }

    // ------------------------------------------------------------------ layers

    private static final ConvGeometry POINT = new ConvGeometry(1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0);

    /** One encode or decode call: its graph, and the cache tensors it must close. */
    private final class Run implements AutoCloseable {
        final Graph graph;
        final Ops ops;
        private final List<Tensor> held = new ArrayList<>();

        Run(Graph graph) {
            this.graph = graph;
            this.ops = new Ops(graph);
        }

        /** A tensor the run owns until it closes. */
        Tensor hold(Tensor tensor) {
            held.add(tensor);
            return tensor;
        }

        /** A zero-filled graph-owned F32 tensor (freed by {@link #free} or when the graph closes). */
        Tensor newTensor(long... shape) {
            return graph.own(Tensor.zeros(backend, DType.F32, shape));
        }

        Tensor constant(float[] values) {
            return hold(Tensor.of(backend, values, values.length));
        }

        /** Frees a graph-owned op output (or a view of one) now. */
        void free(Tensor tensor) {
            graph.free(tensor.base());
        }

        /** Releases a held tensor early. */
        void release(Tensor tensor) {
            if (tensor != null && held.remove(tensor)) {
                tensor.close();
            }
        }

        /** A new held tensor holding frames [from, from + count) of x [T, H, W, C]. */
        Tensor copyFrames(Tensor x, long from, long count) {
            long frame = x.elementCount() / x.dim(0);
            Tensor out = hold(Tensor.zeros(backend, DType.F32, count, x.dim(1), x.dim(2), x.dim(3)));
            out.copyFrom(x.slice(from * frame, out.shape()));
            return out;
        }

        @Override
        public void close() {
            held.forEach(Tensor::close);
            held.clear();
        }
    }

    /** x [T, H, W, C] with `cache` (frames before it, or null) in front: a new graph tensor. */
    private static Tensor concatFrames(Run run, Tensor cache, Tensor x) {
        if (cache == null) {
            return x;
        }
        Tensor out = run.newTensor(cache.dim(0) + x.dim(0), x.dim(1), x.dim(2), x.dim(3));
        out.slice(0, cache.shape()).copyFrom(cache);
        out.slice(cache.elementCount(), x.shape()).copyFrom(x);
        return out;
    }

    /**
     * A CausalConv3d with a time kernel of 3 (2 frames of zero padding in front) or 1, and its
     * feature cache: the last CACHE_T = 2 frames of its input, which stand in for the padding of
     * the next chunk.
     */
    private final class CausalConv {
        private final Run run;
        private final Tensor weight, bias;
        private final int kt, kh, kw;
        private Tensor cache;

        CausalConv(Run run, String key, int kt, int kh, int kw) {
            this.run = run;
            this.weight = weights.get(key + ".weight");
            this.bias = weights.get(key + ".bias");
            this.kt = kt;
            this.kh = kh;
            this.kw = kw;
        }

        Tensor forward(Tensor x) {
            if (kt == 1) {
                return run.ops.conv3d(x, weight, bias, new ConvGeometry(1, kh, kw, 1, 1, 1, 0, 0, kh / 2, kh / 2,
                        kw / 2, kw / 2));
            }
            Tensor input = concatFrames(run, cache, x);
            int cached = cache == null ? 0 : (int) cache.dim(0);
            Tensor y = run.ops.conv3d(input, weight, bias, new ConvGeometry(kt, kh, kw, 1, 1, 1, kt - 1 - cached, 0,
                    kh / 2, kh / 2, kw / 2, kw / 2));
            long keep = Math.min(kt - 1, input.dim(0));
            Tensor next = run.copyFrames(input, input.dim(0) - keep, keep);
            run.release(cache);
            cache = next;
            if (input != x) {
                run.free(input);
            }
            return y;
        }
    }

    /** RMS_norm over channels (x [T, H, W, C]) then SiLU; a new graph tensor. */
    private Tensor normSilu(Run run, Tensor x, String gammaKey) {
        Tensor n = rmsNorm(run, x, gammaKey);
        Tensor y = run.ops.silu(n);
        run.free(n);
        return y;
    }

    private Tensor rmsNorm(Run run, Tensor x, String gammaKey) {
        int c = (int) x.dim(3);
        Tensor n = run.ops.rmsNorm(x.view(x.elementCount() / c, c), weights.get(gammaKey),
                (float) (NORMALIZE_EPS_SQUARED / c));
        return n.view(x.shape());
    }

    /** ResidualBlock: shortcut(x) + conv(silu(norm(conv(silu(norm(x)))))). */
    private final class Residual {
        private final Run run;
        private final String key;
        private final CausalConv conv1, conv2, shortcut;

        Residual(Run run, String key, boolean hasShortcut) {
            this.run = run;
            this.key = key;
            this.conv1 = new CausalConv(run, key + ".residual.2", 3, 3, 3);
            this.conv2 = new CausalConv(run, key + ".residual.6", 3, 3, 3);
            this.shortcut = hasShortcut ? new CausalConv(run, key + ".shortcut", 1, 1, 1) : null;
        }

        Tensor forward(Tensor x) {
            Tensor a = normSilu(run, x, key + ".residual.0.gamma");
            Tensor b = conv1.forward(a);
            run.free(a);
            Tensor c = normSilu(run, b, key + ".residual.3.gamma");
            run.free(b);
            Tensor d = conv2.forward(c);
            run.free(c);
            Tensor h = shortcut == null ? x : shortcut.forward(x);
            Tensor out = run.ops.add(d, h);
            run.free(d);
            if (h != x) {
                run.free(h);
            }
            return out;
        }
    }

    /** AttentionBlock: x + proj(attention(q, k, v of to_qkv(norm(x)))) per frame, one head of C channels. */
    private Tensor attention(Run run, Tensor x, String key) {
        int frames = (int) x.dim(0), c = (int) x.dim(3);
        long pixels = x.dim(1) * x.dim(2);
        Tensor n = rmsNorm(run, x, key + ".norm.gamma");
        Tensor rows = n.view(frames * pixels, c);
        Tensor qkv = weights.get(key + ".to_qkv.weight");
        Tensor qkvBias = weights.get(key + ".to_qkv.bias");
        Tensor q = run.ops.linear(rows, qkv.slice(0, c, c), qkvBias.slice(0, c));
        Tensor k = run.ops.linear(rows, qkv.slice((long) c * c, c, c), qkvBias.slice(c, c));
        Tensor v = run.ops.linear(rows, qkv.slice(2L * c * c, c, c), qkvBias.slice(2L * c, c));
        run.free(n);
        Tensor attended = run.newTensor(frames * pixels, c);
        for (int f = 0; f < frames; f++) {
            long at = f * pixels * c;
            Tensor o = run.ops.singleHeadAttention(q.slice(at, pixels, c), k.slice(at, pixels, c),
                    v.slice(at, pixels, c));
            attended.slice(at, pixels, c).copyFrom(o);
            run.free(o);
        }
        run.free(q);
        run.free(k);
        run.free(v);
        Tensor projected = run.ops.linear(attended, weights.get(key + ".proj.weight"), weights.get(key + ".proj.bias"));
        run.free(attended);
        Tensor out = run.ops.add(projected.view(x.shape()), x);
        run.free(projected);
        return out;
    }

    /** The middle: residual, attention, residual. */
    private final class Middle {
        private final Run run;
        private final String key;
        private final Residual first, second;

        Middle(Run run, String key) {
            this.run = run;
            this.key = key;
            this.first = new Residual(run, key + ".0", false);
            this.second = new Residual(run, key + ".2", false);
        }

        Tensor forward(Tensor x) {
            Tensor a = first.forward(x);
            Tensor b = attention(run, a, key + ".1");
            run.free(a);
            Tensor c = second.forward(b);
            run.free(b);
            return c;
        }
    }

    /** Resample downsample2d/3d: ZeroPad2d (0, 1, 0, 1) + stride-2 3×3 Conv2d per frame, then (3d) the time conv. */
    private final class Downsample {
        private final Run run;
        private final String key;
        private final boolean temporal;
        private Tensor last;
        private boolean seen;

        Downsample(Run run, String key, boolean temporal) {
            this.run = run;
            this.key = key;
            this.temporal = temporal;
        }

        Tensor forward(Tensor x) {
            Tensor y = run.ops.conv3d(x, weights.get(key + ".resample.1.weight"), weights.get(key + ".resample.1.bias"),
                    new ConvGeometry(1, 3, 3, 1, 2, 2, 0, 0, 0, 1, 0, 1));
            if (!temporal) {
                return y;
            }
            // The first chunk passes unchanged and is remembered; later ones are convolved
            // (kernel 3, stride 2, no padding) together with the last frame before them.
            Tensor keep = run.copyFrames(y, y.dim(0) - 1, 1);
            Tensor out = y;
            if (seen) {
                Tensor input = concatFrames(run, last, y);
                out = run.ops.conv3d(input, weights.get(key + ".time_conv.weight"),
                        weights.get(key + ".time_conv.bias"), new ConvGeometry(3, 1, 1, 2, 1, 1, 0, 0, 0, 0, 0, 0));
                run.free(input);
                run.free(y);
            }
            seen = true;
            run.release(last);
            last = keep;
            return out;
        }
    }

    /** Resample upsample2d/3d: (3d) the time conv that doubles frames, then nearest 2× + 3×3 Conv2d to C/2. */
    private final class Upsample {
        private final Run run;
        private final String key;
        private final CausalConv timeConv;
        private boolean seen;

        Upsample(Run run, String key, boolean temporal) {
            this.run = run;
            this.key = key;
            this.timeConv = temporal ? new CausalConv(run, key + ".time_conv", 3, 1, 1) : null;
        }

        Tensor forward(Tensor x) {
            Tensor frames = x;
            if (timeConv != null) {
                // The first chunk is not doubled ('Rep'); from the second on, a causal time conv
                // over the frames after the first yields 2C channels: two frames each.
                if (seen) {
                    Tensor doubled = timeConv.forward(x);
                    frames = run.ops.frameInterleave(doubled);
                    run.free(doubled);
                }
                seen = true;
            }
            Tensor up = run.ops.upsampleNearest2x(frames);
            if (frames != x) {
                run.free(frames);
            }
            Tensor y = run.ops.conv3d(up, weights.get(key + ".resample.1.weight"),
                    weights.get(key + ".resample.1.bias"), new ConvGeometry(1, 3, 3, 1, 1, 1, 0, 0, 1, 1, 1, 1));
            run.free(up);
            return y;
        }
    }

    /** The encoder with its caches, fed one chunk at a time. */
    private final class Encoder {
        private final Run run;
        private final CausalConv conv1, head;
        private final List<Object> downsamples = new ArrayList<>();
        private final Middle middle;

        Encoder(Run run) {
            this.run = run;
            this.conv1 = new CausalConv(run, "encoder.conv1", 3, 3, 3);
            int index = 0;
            int in = config.dim();
            for (int i = 0; i < config.levels(); i++) {
                for (int j = 0; j < config.numResBlocks(); j++, index++) {
                    downsamples.add(new Residual(run, "encoder.downsamples." + index, in != config.levelChannels(i)));
                    in = config.levelChannels(i);
                }
                if (i != config.levels() - 1) {
                    downsamples.add(new Downsample(run, "encoder.downsamples." + index, config.temporalDownsample()[i]));
                    index++;
                }
            }
            this.middle = new Middle(run, "encoder.middle");
            this.head = new CausalConv(run, "encoder.head.2", 3, 3, 3);
        }

        Tensor forward(Tensor chunk) {
            Tensor x = conv1.forward(chunk);
            for (Object layer : downsamples) {
                Tensor y = layer instanceof Residual r ? r.forward(x) : ((Downsample) layer).forward(x);
                if (y != x) {
                    run.free(x);
                }
                x = y;
            }
            Tensor m = middle.forward(x);
            run.free(x);
            Tensor a = normSilu(run, m, "encoder.head.0.gamma");
            run.free(m);
            Tensor out = head.forward(a);
            run.free(a);
            return out;
        }
    }

    /** The decoder with its caches, fed one latent frame at a time. */
    private final class Decoder {
        private final Run run;
        private final CausalConv conv1, head;
        private final Middle middle;
        private final List<Object> upsamples = new ArrayList<>();

        Decoder(Run run) {
            this.run = run;
            this.conv1 = new CausalConv(run, "decoder.conv1", 3, 3, 3);
            this.middle = new Middle(run, "decoder.middle");
            int index = 0;
            for (int i = 0; i < config.levels(); i++) {
                int in = config.decoderLevelInput(i);
                int channels = config.decoderLevelChannels(i);
                for (int j = 0; j <= config.numResBlocks(); j++, index++) {
                    upsamples.add(new Residual(run, "decoder.upsamples." + index, in != channels));
                    in = channels;
                }
                if (i != config.levels() - 1) {
                    upsamples.add(new Upsample(run, "decoder.upsamples." + index, config.temporalUpsample(i)));
                    index++;
                }
            }
            this.head = new CausalConv(run, "decoder.head.2", 3, 3, 3);
        }

        Tensor forward(Tensor latentFrame) {
            Tensor x = conv1.forward(latentFrame);
            Tensor m = middle.forward(x);
            run.free(x);
            x = m;
            for (Object layer : upsamples) {
                Tensor y = layer instanceof Residual r ? r.forward(x) : ((Upsample) layer).forward(x);
                run.free(x);
                x = y;
            }
            Tensor a = normSilu(run, x, "decoder.head.0.gamma");
            run.free(x);
            Tensor out = head.forward(a);
            run.free(a);
            return out;
        }
    }
}
