package org.fastvmt.io;

import java.util.Arrays;
import java.util.List;

import org.fastvmt.backend.Backend;
import org.fastvmt.tensor.DType;
import org.fastvmt.tensor.Tensor;

/**
 * A clip in the layout the Wan VAE reads and writes: RGB, channel first, {@code data[((c * frames
 * + t) * height + y) * width + x]} ([3, F, H, W], row-major), values in [-1, 1] (an 8-bit value v
 * is 2 v / 255 - 1, as in the official pipeline's {@code (x / 255 - 0.5) / 0.5}).
 *
 * <p>A decoder may return values outside [-1, 1]; they are kept here and clamped only when the
 * clip becomes pictures ({@link #frame}).
 *
 * @param fps frames per second, or 0 when unknown
 */
public record VideoTensor(int frames, int height, int width, double fps, float[] data) {

    public static final int CHANNELS = 3;

    public VideoTensor {
        if (frames < 1 || height < 1 || width < 1) {
            throw new IllegalArgumentException("a clip needs at least one frame of at least 1x1 pixels, got " + frames
                    + " frame(s) of " + width + "x" + height);
        }
        if (!(Double.isFinite(fps) && fps >= 0)) {
            throw new IllegalArgumentException("fps must be finite and >= 0 (0: unknown), got " + fps);
        }
        long expected = (long) CHANNELS * frames * height * width;
        if (data.length != expected) {
            throw new IllegalArgumentException("data must hold 3 * " + frames + " * " + height + " * " + width + " = "
                    + expected + " values ([3, F, H, W]), got " + data.length);
        }
    }

    /** An all-zero (mid-grey) clip; fails with a clear message when it cannot fit in one Java array. */
    public static VideoTensor zeros(int frames, int height, int width, double fps) {
        return new VideoTensor(frames, height, width, fps, new float[arrayLength(frames, height, width)]);
    }

    /** The frames (all of one size, values in [0, 1]) in this layout. */
    public static VideoTensor of(List<RgbFrame> frames, double fps) {
        if (frames.isEmpty()) {
            throw new IllegalArgumentException("a clip needs at least one frame, got none");
        }
        RgbFrame first = frames.get(0);
        VideoTensor clip = zeros(frames.size(), first.height(), first.width(), fps);
        for (int t = 0; t < frames.size(); t++) {
            clip.setFrame(t, frames.get(t));
        }
        return clip;
    }

    /**
     * The clip held by {@code tensor}: [3, F, H, W] or [1, 3, F, H, W] (a batch of one), F32 or
     * BF16, copied to the host.
     */
    public static VideoTensor fromTensor(Tensor tensor, double fps) {
        long[] shape = tensor.shape();
        long[] clip = shape.length == 5 && shape[0] == 1 ? Arrays.copyOfRange(shape, 1, 5) : shape;
        if (clip.length != 4 || clip[0] != CHANNELS) {
            throw new IllegalArgumentException("a video tensor must be [3, F, H, W] or [1, 3, F, H, W], got "
                    + Arrays.toString(shape));
        }
        if (tensor.dtype() == DType.I32) {
            throw new IllegalArgumentException("a video tensor must be F32 or BF16, got " + tensor.dtype());
        }
        arrayLength(clip[1], clip[2], clip[3]);
        return new VideoTensor((int) clip[1], (int) clip[2], (int) clip[3], fps, tensor.toFloatArray());
    }

    /** An F32 tensor [3, F, H, W] on {@code backend} holding this clip; the caller closes it. */
    public Tensor toTensor(Backend backend) {
        return Tensor.of(backend, data, CHANNELS, frames, height, width);
    }

    /** The shape of {@link #toTensor}: {3, F, H, W}. */
    public long[] shape() {
        return new long[] {CHANNELS, frames, height, width};
    }

    /** The value of channel {@code c} (0 red, 1 green, 2 blue) at pixel (x, y) of frame t. */
    public float get(int c, int t, int y, int x) {
        return data[index(c, t, y, x)];
    }

    /** Frame {@code t} as a picture: values mapped from [-1, 1] to [0, 1] and clamped there. */
    public RgbFrame frame(int t) {
        checkFrame(t);
        int plane = height * width;
        float[] rgb = new float[CHANNELS * plane];
        for (int c = 0; c < CHANNELS; c++) {
            int from = index(c, t, 0, 0);
            for (int p = 0; p < plane; p++) {
                rgb[CHANNELS * p + c] = Math.clamp((data[from + p] + 1f) * 0.5f, 0f, 1f);
            }
        }
        return new RgbFrame(width, height, rgb);
    }

    /** Stores {@code frame} (this clip's size, values in [0, 1]) as frame {@code t}. */
    public void setFrame(int t, RgbFrame frame) {
        checkFrame(t);
        if (frame.width() != width || frame.height() != height) {
            throw new IllegalArgumentException("the clip is " + width + "x" + height + " but frame " + t + " is "
                    + frame.width() + "x" + frame.height());
        }
        int plane = height * width;
        float[] rgb = frame.rgb();
        for (int c = 0; c < CHANNELS; c++) {
            int to = index(c, t, 0, 0);
            for (int p = 0; p < plane; p++) {
                data[to + p] = 2f * rgb[CHANNELS * p + c] - 1f;
            }
        }
    }

    /** The same clip with another frame rate (shares the data). */
    public VideoTensor withFps(double newFps) {
        return new VideoTensor(frames, height, width, newFps, data);
    }

    private int index(int c, int t, int y, int x) {
        return ((c * frames + t) * height + y) * width + x;
    }

    private void checkFrame(int t) {
        if (t < 0 || t >= frames) {
            throw new IllegalArgumentException("frame " + t + " is outside [0, " + frames + ")");
        }
    }

    /** 3 F H W, which must fit in one Java array. */
    private static int arrayLength(long frames, long height, long width) {
        long length = CHANNELS * frames * height * width;
        if (frames < 1 || height < 1 || width < 1 || length > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException(frames + " frame(s) of " + width + "x" + height
                    + " do not fit in one float array ([3, F, H, W] must hold at most 2^31 - 9 values)");
        }
        return (int) length;
    }
}
