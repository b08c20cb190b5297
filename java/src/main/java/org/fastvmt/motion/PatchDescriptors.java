package org.fastvmt.motion;

/**
 * Stand-in Q and K for reading motion out of a video without a model: one descriptor per DiT
 * token (a cell of {@value #CELL} x {@value #CELL} pixels of the model-sized frame), so that the
 * attention motion flow of Q = K = descriptors follows what moves.
 *
 * <p>A cell's descriptor samples the frame around it: a {@value #GRID} x {@value #GRID} grid of
 * points {@value #SPACING} pixels apart centred on the cell's centre, each the mean over a
 * {@value #BOX} x {@value #BOX} box (boxes overlap by half), in three opponent colour channels:
 * luma Y = 0.299 R + 0.587 G + 0.114 B, R - G and B - (R + G) / 2. Boxes that reach past the
 * frame are cut at its edge (keeping at least its last pixel row or column). Each channel's
 * {@value #GRID}² samples are made zero-mean, which removes the cell's overall brightness and
 * tint, so the whole vector is zero-mean; then it is scaled to unit L2 norm.
 *
 * <p>Why this shape (measured on {@code SyntheticClip}, see {@link #TEMPERATURE}): the AMF's
 * displacement is a softmax-weighted mean of whole-token positions, so motion finer than a
 * token is only seen when the similarity of two descriptors falls off smoothly with their
 * offset. Wide overlapping boxes make it smooth; the wide support (about 10 tokens) and colour
 * keep a cell distinguishable from the other 440 tokens of its search window. Small, sharp
 * descriptors matched sub-token shifts worse than predicting no motion at all.
 *
 * <p>Layout: {@code values} is [rows, cols, CHANNELS] with channels ordered
 * (colour channel, grid row, grid column); {@code contrast} is [rows, cols]: the root mean
 * square of the zero-mean samples before normalisation, 0 for a flat patch (whose descriptor
 * is all zeros: it matches everything equally and carries no motion information).
 */
public final class PatchDescriptors {

    /** Pixels per token side: the VAE's 8x downsampling times the DiT's 2x2 patches. */
    public static final int CELL = 16;
    /** Samples per side of the grid. */
    public static final int GRID = 8;
    /** Pixels between neighbouring samples. */
    public static final int SPACING = 16;
    /** Side of the box each sample averages, in pixels. */
    public static final int BOX = 32;
    /** Channels per descriptor: 3 opponent colours x GRID². */
    public static final int CHANNELS = 3 * GRID * GRID;
    /**
     * The AMF temperature for these descriptors over sqrt(CHANNELS): scores are
     * temperature · q·k / sqrt(CHANNELS) with q·k in [-1, 1], so this is the score of a perfect
     * match. 16 was best on the synthetic clip among 10, 13, 16 and 20: softer lets the
     * window's other tokens pull the expected position (and fewer readings survive a
     * forward-backward check), sharper rounds sub-token motion to whole tokens.
     */
    public static final int TEMPERATURE_PER_ROOT_CHANNEL = 16;
    /** The AMF temperature for these descriptors: 16 · sqrt(192) ≈ 221.7. */
    public static final float TEMPERATURE = (float) (TEMPERATURE_PER_ROOT_CHANNEL * Math.sqrt(CHANNELS));

    /** A patch whose samples vary less than this (RMS, on the [0, 1] scale) counts as flat. */
    private static final double FLAT = 1e-6;

    /** The descriptors of one frame; see the class comment for the layout. */
    public record Patches(int rows, int cols, float[] values, float[] contrast) {
    }

    private PatchDescriptors() {
    }

    /**
     * The descriptors of a frame given as {@code rgb[(y * width + x) * 3 + channel]}, values
     * in [0, 1]; width and height must be positive multiples of {@value #CELL}.
     */
    public static Patches of(float[] rgb, int width, int height) {
        if (width < CELL || height < CELL || width % CELL != 0 || height % CELL != 0) {
            throw new IllegalArgumentException("the frame must be a positive multiple of " + CELL + " pixels along "
                    + "both axes, got " + width + "x" + height);
        }
        if (rgb.length != 3L * width * height) {
            throw new IllegalArgumentException("rgb must hold 3 * " + width + " * " + height + " values, got "
                    + rgb.length);
        }
        double[][] sums = opponentIntegrals(rgb, width, height);
        int rows = height / CELL;
        int cols = width / CELL;
        float[] values = new float[rows * cols * CHANNELS];
        float[] contrast = new float[rows * cols];
        double[] v = new double[CHANNELS];
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                int centreX = c * CELL + CELL / 2;
                int centreY = r * CELL + CELL / 2;
                double squares = 0;
                for (int colour = 0; colour < 3; colour++) {
                    int group = colour * GRID * GRID;
                    double mean = 0;
                    for (int gy = 0; gy < GRID; gy++) {
                        for (int gx = 0; gx < GRID; gx++) {
                            double sample = boxMean(sums[colour], width, height,
                                    centreX + sampleOffset(gx), centreY + sampleOffset(gy));
                            v[group + gy * GRID + gx] = sample;
                            mean += sample;
                        }
                    }
                    mean /= GRID * GRID;
                    for (int n = group; n < group + GRID * GRID; n++) {
                        v[n] -= mean;
                        squares += v[n] * v[n];
                    }
                }
                int cell = r * cols + c;
                double rms = Math.sqrt(squares / CHANNELS);
                if (rms < FLAT) {
                    continue;
                }
                contrast[cell] = (float) rms;
                double inverseNorm = 1 / Math.sqrt(squares);
                for (int n = 0; n < CHANNELS; n++) {
                    values[cell * CHANNELS + n] = (float) (v[n] * inverseNorm);
                }
            }
        }
        return new Patches(rows, cols, values, contrast);
    }

    /** Sample k of a grid row sits this many pixels from the cell centre: -56, -40, ..., 56. */
    private static int sampleOffset(int k) {
        return (2 * k - (GRID - 1)) * SPACING / 2;
    }

    /**
     * Summed-area tables of Y, R - G and B - (R + G) / 2: {@code sums[ch][(y) * (width + 1) + x]}
     * is the sum over rows [0, y) and columns [0, x). Doubles, so differences of large sums
     * stay exact to far below a grey level.
     */
    private static double[][] opponentIntegrals(float[] rgb, int width, int height) {
        int stride = width + 1;
        double[][] sums = new double[3][stride * (height + 1)];
        for (int y = 0; y < height; y++) {
            double[] rowSum = new double[3];
            for (int x = 0; x < width; x++) {
                int i = 3 * (y * width + x);
                double red = rgb[i];
                double green = rgb[i + 1];
                double blue = rgb[i + 2];
                rowSum[0] += 0.299 * red + 0.587 * green + 0.114 * blue;
                rowSum[1] += red - green;
                rowSum[2] += blue - 0.5 * (red + green);
                for (int ch = 0; ch < 3; ch++) {
                    sums[ch][(y + 1) * stride + x + 1] = sums[ch][y * stride + x + 1] + rowSum[ch];
                }
            }
        }
        return sums;
    }

    /** The mean of a BOX x BOX box centred on (x, y), cut at the frame's edges. */
    private static double boxMean(double[] sums, int width, int height, int x, int y) {
        int x0 = Math.clamp(x - BOX / 2, 0, width - 1);
        int x1 = Math.clamp(x + BOX / 2, x0 + 1, width);
        int y0 = Math.clamp(y - BOX / 2, 0, height - 1);
        int y1 = Math.clamp(y + BOX / 2, y0 + 1, height);
        int stride = width + 1;
        double sum = sums[y1 * stride + x1] - sums[y0 * stride + x1] - sums[y1 * stride + x0] + sums[y0 * stride + x0];
        return sum / ((double) (x1 - x0) * (y1 - y0));
    }
}
