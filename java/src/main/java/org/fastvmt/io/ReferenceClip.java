package org.fastvmt.io;

import java.io.IOException;
import java.nio.file.Path;

/**
 * A reference video prepared for the model: its first {@link ClipShape#frames()} frames, each
 * scaled (aspect ratio kept) until it covers the model size and cut to it around the centre, in
 * the VAE's layout ({@link VideoTensor}: [3, F, H, W] in [-1, 1]). Frames are decoded, resized
 * and stored one at a time, so memory holds the model-size clip and a single source frame, and
 * nothing passes through disk.
 *
 * @param video        the prepared clip; its fps is the source's (0 when the container states none)
 * @param sourceWidth  the source's frame width in pixels
 * @param sourceHeight the source's frame height in pixels
 * @param crop         the part of each source frame that the clip shows, in source pixels
 */
public record ReferenceClip(VideoTensor video, int sourceWidth, int sourceHeight, RgbFrame.Crop crop) {

    /** The source's frames per second (0 when unknown). */
    public double sourceFps() {
        return video.fps();
    }

    /** The first 81 frames of {@code file} at 832 x 480: {@link #load(Path, ClipShape)} with {@link ClipShape#DEFAULT}. */
    public static ReferenceClip load(Path file) throws IOException {
        return load(file, ClipShape.DEFAULT);
    }

    /**
     * Reads the first {@code shape.frames()} frames of any file FFmpeg decodes (mp4, webm, mkv,
     * gif, y4m, ...) at {@code shape}'s size.
     *
     * <p>Each frame is scaled by max(W / w, H / h), so it covers W x H, and the centre W x H of
     * the result is kept (exactly: the crop is fractional, so the aspect ratio is W / H). The
     * filter is {@link RgbFrame#resizeCentreCrop}'s tent: bilinear when enlarging, an area
     * average when shrinking.
     *
     * @throws InvalidVideoException if the file is not a video FFmpeg can decode, or has fewer
     *                               frames than needed (the message says how many it has and
     *                               how many are needed)
     */
    public static ReferenceClip load(Path file, ClipShape shape) throws IOException {
        try (VideoReader reader = VideoReader.open(file)) {
            int width = reader.width();
            int height = reader.height();
            RgbFrame.Crop crop = RgbFrame.cropFor(width, height, shape.width(), shape.height());
            VideoTensor clip = VideoTensor.zeros(shape.frames(), shape.height(), shape.width(), reader.fps());
            for (int t = 0; t < shape.frames(); t++) {
                RgbFrame frame = reader.read();
                if (frame == null) {
                    throw tooShort(file, reader.framesRead(), shape);
                }
                boolean sameSize = frame.width() == shape.width() && frame.height() == shape.height();
                clip.setFrame(t, sameSize ? frame : frame.resizeCentreCrop(shape.width(), shape.height()));
            }
            return new ReferenceClip(clip, width, height, crop);
        }
    }

    private static InvalidVideoException tooShort(Path file, int has, ClipShape shape) {
        int fits = ClipShape.largestValidFrames(has);
        return new InvalidVideoException(file, "it has " + has + " frame(s) but " + shape.frames()
                + " are needed (the model takes the first 4k+1 frames"
                + (fits >= 1 ? "; --frames " + fits + " would use " + (fits == has ? "all of them" : "the first " + fits)
                        : "") + ")");
    }
}
