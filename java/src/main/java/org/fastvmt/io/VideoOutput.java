package org.fastvmt.io;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Locale;
import java.util.function.IntFunction;

/**
 * Writes a {@link VideoTensor} (a generated clip, or a reference) as a video file: MP4 (H.264,
 * yuv420p, through FFmpeg) or an animated GIF, chosen by the file's extension; and the
 * side-by-side comparison, reference | result.
 *
 * <p>Every write first proves that the output can be written ({@link #checkWritable}), so a bad
 * path fails before any encoding, and then encodes into a temporary file beside it that is
 * renamed into place at the end ({@link AtomicFiles}): a failure leaves no partial file, and a
 * previous file of that name stays as it was.
 */
public final class VideoOutput {

    /** Frames per second when the clip states none: Wan2.1's output rate (16 fps). */
    public static final double FALLBACK_FPS = 16;

    /** The file formats written. */
    public enum Format {
        MP4, GIF;

        /** The format named by the file's extension: .mp4 or .m4v (MP4), .gif (GIF). */
        public static Format of(Path file) {
            Path name = file.getFileName();
            String lower = name == null ? "" : name.toString().toLowerCase(Locale.ROOT);
            if (lower.endsWith(".mp4") || lower.endsWith(".m4v")) {
                return MP4;
            }
            if (lower.endsWith(".gif")) {
                return GIF;
            }
            throw new IllegalArgumentException("the output " + file + " must end in .mp4 (H.264 video) or .gif");
        }
    }

    private VideoOutput() {
    }

    /**
     * Fails, naming {@code file}, unless a video can be written there: the extension names a
     * format, the path is not a folder and its folder accepts new files (missing folders are
     * created). A command calls this before its long work.
     */
    public static Format checkWritable(Path file) throws IOException {
        Format format = Format.of(file);
        AtomicFiles.requireWritableFile(file);
        return format;
    }

    /** Writes {@code video} to {@code file} at its own rate ({@link #FALLBACK_FPS} when it states none). */
    public static void write(Path file, VideoTensor video) throws IOException {
        write(file, video, video.fps());
    }

    /** Writes {@code video} to {@code file} at {@code fps} frames per second (0: {@link #FALLBACK_FPS}). */
    public static void write(Path file, VideoTensor video, double fps) throws IOException {
        encode(file, video.width(), video.height(), video.frames(), fps, video::frame);
    }

    /**
     * Writes reference | result: each frame of {@code result} with the matching frame of
     * {@code reference} on its left, scaled and centre-cropped to the result's size, so the
     * picture is twice the result's width. Both must have the same number of frames; the rate
     * is the result's ({@link #FALLBACK_FPS} when it states none).
     */
    public static void writeSideBySide(Path file, VideoTensor reference, VideoTensor result) throws IOException {
        writeSideBySide(file, reference, result, result.fps());
    }

    /** {@link #writeSideBySide(Path, VideoTensor, VideoTensor)} at {@code fps} (0: {@link #FALLBACK_FPS}). */
    public static void writeSideBySide(Path file, VideoTensor reference, VideoTensor result, double fps)
            throws IOException {
        if (reference.frames() != result.frames()) {
            throw new IllegalArgumentException("side by side needs as many reference frames as result frames, got "
                    + reference.frames() + " and " + result.frames());
        }
        int width = result.width();
        int height = result.height();
        boolean sameSize = reference.width() == width && reference.height() == height;
        encode(file, Math.multiplyExact(2, width), height, result.frames(), fps, t -> {
            RgbFrame left = reference.frame(t);
            if (!sameSize) {
                left = left.resizeCentreCrop(width, height);
            }
            return besideEachOther(left, result.frame(t));
        });
    }

    /** The two frames (same height) next to each other, {@code left} first. */
    static RgbFrame besideEachOther(RgbFrame left, RgbFrame right) {
        if (left.height() != right.height()) {
            throw new IllegalArgumentException("frames side by side need one height, got " + left.height() + " and "
                    + right.height());
        }
        int width = left.width() + right.width();
        int height = left.height();
        float[] rgb = new float[3 * width * height];
        for (int y = 0; y < height; y++) {
            System.arraycopy(left.rgb(), 3 * y * left.width(), rgb, 3 * y * width, 3 * left.width());
            System.arraycopy(right.rgb(), 3 * y * right.width(), rgb, 3 * (y * width + left.width()),
                    3 * right.width());
        }
        return new RgbFrame(width, height, rgb);
    }

    private static void encode(Path file, int width, int height, int frames, double fps, IntFunction<RgbFrame> frame)
            throws IOException {
        if (!(Double.isFinite(fps) && fps >= 0)) {
            throw new IllegalArgumentException("fps must be finite and >= 0 (0: " + FALLBACK_FPS + "), got " + fps);
        }
        double rate = fps > 0 ? fps : FALLBACK_FPS;
        Format format = Format.of(file);
        if (format == Format.MP4 && (width % 2 != 0 || height % 2 != 0)) {
            throw new IllegalArgumentException("H.264 yuv420p needs an even width and height, got " + width + "x"
                    + height + " for " + file);
        }
        AtomicFiles.requireWritableFile(file);
        AtomicFiles.write(file, temporary -> {
            switch (format) {
                case MP4 -> {
                    try (VideoWriter writer = VideoWriter.open(temporary, width, height, rate)) {
                        for (int t = 0; t < frames; t++) {
                            writer.write(frame.apply(t));
                        }
                    }
                }
                case GIF -> {
                    try (GifWriter writer = GifWriter.open(temporary, width, height, rate)) {
                        for (int t = 0; t < frames; t++) {
                            writer.write(frame.apply(t));
                        }
                    }
                }
            }
        });
    }
}
