package org.fastvmt.io;

/**
 * The size of the clips the Wan2.1 model reads and writes: {@code width} x {@code height}
 * pixels and {@code frames} frames.
 *
 * <p>Width and height are multiples of 16 because the Wan VAE downsamples space by 8 and the
 * DiT then groups latent pixels in 2 x 2 patches. The frame count is 4k + 1 because the VAE
 * encodes the first frame alone and every following group of 4 frames into one latent frame.
 *
 * @param width  pixels per row, a positive multiple of 16
 * @param height rows, a positive multiple of 16
 * @param frames 4k + 1 for some k >= 0
 */
public record ClipShape(int width, int height, int frames) {

    /** The size Wan2.1-T2V is run at: 832 x 480 pixels, 81 frames (5 s at 16 fps). */
    public static final ClipShape DEFAULT = new ClipShape(832, 480, 81);

    /** The spatial size must be a multiple of this: VAE stride 8 times DiT patch 2. */
    public static final int SPATIAL_MULTIPLE = 16;
    /** Frames after the first come in groups of this many: the VAE's temporal stride. */
    public static final int TEMPORAL_STRIDE = 4;

    public ClipShape {
        checkSpatial("width", width);
        checkSpatial("height", height);
        if (frames < 1 || (frames - 1) % TEMPORAL_STRIDE != 0) {
            throw new IllegalArgumentException("frames must be 4k+1 (1, 5, 9, ..., 77, 81, ...): the Wan VAE encodes the"
                    + " first frame alone and each following group of 4 into one latent frame; got " + frames
                    + (frames > 1 ? " (the nearest smaller valid count is " + largestValidFrames(frames) + ")" : ""));
        }
    }

    /** The default spatial size with another frame count (4k + 1). */
    public static ClipShape withFrames(int frames) {
        return new ClipShape(DEFAULT.width, DEFAULT.height, frames);
    }

    /** The largest 4k + 1 that is at most {@code available} (>= 1); 0 when none is. */
    public static int largestValidFrames(int available) {
        return available < 1 ? 0 : (available - 1) / TEMPORAL_STRIDE * TEMPORAL_STRIDE + 1;
    }

    /** Frames after encoding by the Wan VAE: 1 + (frames - 1) / 4. */
    public int latentFrames() {
        return 1 + (frames - 1) / TEMPORAL_STRIDE;
    }

    @Override
    public String toString() {
        return width + "x" + height + "x" + frames;
    }

    private static void checkSpatial(String name, int value) {
        if (value < SPATIAL_MULTIPLE || value % SPATIAL_MULTIPLE != 0) {
            int below = value / SPATIAL_MULTIPLE * SPATIAL_MULTIPLE;
            throw new IllegalArgumentException(name + " must be a positive multiple of 16 (the Wan VAE downsamples by 8"
                    + " and the DiT patches 2x2), got " + value
                    + (below >= SPATIAL_MULTIPLE ? "; " + below + " or " + (below + SPATIAL_MULTIPLE) + " would do" : ""));
        }
    }
}
