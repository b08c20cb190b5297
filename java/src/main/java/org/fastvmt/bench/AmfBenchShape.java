package org.fastvmt.bench;

import java.util.Locale;

import org.fastvmt.motion.AmfParams;
import org.fastvmt.motion.FramePairs;

/**
 * What an AMF benchmark measures: Q and K of [frames, height, width, channels], the full AMF
 * over all frames² pairs (DiTFlow) against the windowed AMF over FastVMT's pairs j in [i, i + sf).
 *
 * @param sf      FastVMT's frame span: frame i is compared with frames i .. i + sf - 1
 * @param params  heads, temperature, tile and window of the AMF
 */
public record AmfBenchShape(int frames, int height, int width, int channels, int sf, AmfParams params) {

    /** Wan2.1-T2V-1.3B at 480×832, 81 frames (DESIGN.md): 21 latent frames of 30×52 tokens, dim 1536. */
    public static final int WAN_FRAMES = 21;
    public static final int WAN_HEIGHT = 30;
    public static final int WAN_WIDTH = 52;
    public static final int WAN_CHANNELS = 1536;
    /** 12 heads × 128 in Wan2.1-1.3B's self-attention. */
    public static final int WAN_HEADS = 12;
    /** sf = 4: the official pipeline's frame span. */
    public static final int DEFAULT_SF = 4;

    public AmfBenchShape {
        requirePositive(frames, "frames");
        requirePositive(height, "height");
        requirePositive(width, "width");
        requirePositive(channels, "channels");
        requirePositive(sf, "sf");
        if (channels % params.heads() != 0) {
            throw new IllegalArgumentException("channels (" + channels + ") must be divisible by heads ("
                    + params.heads() + ")");
        }
        if (params.tileHeight() > height || params.tileWidth() > width) {
            throw new IllegalArgumentException("the " + params.tileHeight() + "x" + params.tileWidth()
                    + " tile does not fit a " + height + "x" + width + " frame");
        }
    }

    /** The Wan2.1-1.3B defaults: 21×30×52×1536, 12 heads, sf 4, l 21, tile 3×4, τ 1. */
    public static AmfBenchShape wan() {
        return of(WAN_FRAMES, WAN_HEIGHT, WAN_WIDTH, WAN_CHANNELS);
    }

    /** A shape with {@link #defaultHeads}, sf 4 and the official AMF parameters. */
    public static AmfBenchShape of(int frames, int height, int width, int channels) {
        return new AmfBenchShape(frames, height, width, channels, DEFAULT_SF, AmfParams.defaults(defaultHeads(channels)));
    }

    /**
     * Wan's 12 heads when they divide {@code channels}, else the largest divisor below 12 (for
     * small test shapes; heads only scale the scores, they do not change the cost).
     */
    public static int defaultHeads(int channels) {
        for (int heads = WAN_HEADS; heads > 1; heads--) {
            if (channels > 0 && channels % heads == 0) {
                return heads;
            }
        }
        return 1;
    }

    /** Parses "FxHxWxC" (e.g. "21x30x52x1536") into a shape with the defaults of {@link #of}. */
    public static AmfBenchShape parse(String text) {
        String[] parts = text.strip().toLowerCase(Locale.ROOT).split("x");
        if (parts.length != 4) {
            throw new IllegalArgumentException("a shape is FxHxWxC, e.g. 21x30x52x1536; got '" + text + "'");
        }
        int[] dims = new int[4];
        for (int i = 0; i < 4; i++) {
            try {
                dims[i] = Integer.parseInt(parts[i]);
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("a shape is FxHxWxC, e.g. 21x30x52x1536; got '" + text + "'", e);
            }
        }
        return of(dims[0], dims[1], dims[2], dims[3]);
    }

    public AmfBenchShape withSf(int newSf) {
        return new AmfBenchShape(frames, height, width, channels, newSf, params);
    }

    public AmfBenchShape withWindow(int newWindow) {
        return new AmfBenchShape(frames, height, width, channels, sf, params.withWindow(newWindow));
    }

    /** DiTFlow's pairs: every (i, j). */
    public FramePairs fullPairs() {
        return FramePairs.all(frames);
    }

    /** FastVMT's pairs: j in [i, min(F, i + sf)). */
    public FramePairs windowPairs() {
        return FramePairs.forward(frames, sf);
    }

    private static void requirePositive(int value, String name) {
        if (value < 1) {
            throw new IllegalArgumentException(name + " must be >= 1, got " + value);
        }
    }
}
