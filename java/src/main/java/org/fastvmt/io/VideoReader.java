package org.fastvmt.io;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;

import org.bytedeco.ffmpeg.global.avutil;
import org.bytedeco.javacv.FFmpegFrameGrabber;
import org.bytedeco.javacv.Frame;
import org.bytedeco.javacv.FrameGrabber;

/**
 * Decodes the video stream of any file FFmpeg reads (through JavaCV), one frame at a time, so
 * a caller keeps only the frames it needs. Frames come out as {@link RgbFrame}s; {@link #skip}
 * decodes a frame without converting it, for callers that sample every n-th frame.
 */
public final class VideoReader implements AutoCloseable {

    /** FFmpeg's demuxer for text files (ANSI art), which it also picks for plain .txt files. */
    private static final String TEXT_FORMAT = "tty";

    private final Path file;
    private final FFmpegFrameGrabber grabber;
    private int framesRead;

    private VideoReader(Path file, FFmpegFrameGrabber grabber) {
        this.file = file;
        this.grabber = grabber;
    }

    /**
     * Opens {@code file} and its video stream.
     *
     * @throws NoSuchFileException   if there is no such file
     * @throws AccessDeniedException if it cannot be read
     * @throws InvalidVideoException if FFmpeg cannot read it or it has no video stream
     */
    public static VideoReader open(Path file) throws IOException {
        if (!Files.exists(file)) {
            throw new NoSuchFileException(file.toString(), null, "no such file");
        }
        if (Files.isDirectory(file) || !Files.isReadable(file)) {
            throw new AccessDeniedException(file.toString(), null, "not a readable file");
        }
        FfmpegLogging.fatalOnly();
        FFmpegFrameGrabber grabber = new FFmpegFrameGrabber(file.toFile());
        grabber.setPixelFormat(avutil.AV_PIX_FMT_RGB24);
        try {
            grabber.start();
        } catch (FrameGrabber.Exception e) {
            release(grabber);
            throw new InvalidVideoException(file, "FFmpeg cannot read it as a video (" + e.getMessage() + ")");
        }
        if (!grabber.hasVideo()) {
            release(grabber);
            throw new InvalidVideoException(file, "it has no video stream");
        }
        if (grabber.getImageWidth() < 1 || grabber.getImageHeight() < 1) {
            int width = grabber.getImageWidth();
            int height = grabber.getImageHeight();
            release(grabber);
            throw new InvalidVideoException(file, "its video stream has frames of zero size (" + width + "x" + height
                    + ")");
        }
        if (TEXT_FORMAT.equals(grabber.getFormat())) {
            // FFmpeg renders any text file as a "video" of ANSI art; nobody means that.
            release(grabber);
            throw new InvalidVideoException(file, "it is text, not a video");
        }
        return new VideoReader(file, grabber);
    }

    public int width() {
        return grabber.getImageWidth();
    }

    public int height() {
        return grabber.getImageHeight();
    }

    /** Frames per second of the video stream as the container states it. */
    public double fps() {
        return grabber.getVideoFrameRate();
    }

    /** The container's frame count: an estimate (0 when unknown); {@link #framesRead} at the end is exact. */
    public int estimatedFrameCount() {
        return Math.max(0, grabber.getLengthInVideoFrames());
    }

    /** The frames decoded so far (by {@link #read} or {@link #skip}). */
    public int framesRead() {
        return framesRead;
    }

    /** The next frame, or null at the end of the stream. */
    public RgbFrame read() throws IOException {
        Frame frame = grab();
        return frame == null ? null : toRgb(frame);
    }

    /** Decodes the next frame without converting it; false at the end of the stream. */
    public boolean skip() throws IOException {
        return grab() != null;
    }

    private Frame grab() throws IOException {
        Frame frame;
        try {
            frame = grabber.grabImage();
        } catch (FrameGrabber.Exception e) {
            throw new InvalidVideoException(file, "decoding failed after " + framesRead + " frame(s) ("
                    + e.getMessage() + ")");
        }
        if (frame != null) {
            framesRead++;
        }
        return frame;
    }

    private static RgbFrame toRgb(Frame frame) {
        int width = frame.imageWidth;
        int height = frame.imageHeight;
        ByteBuffer bytes = (ByteBuffer) frame.image[0];
        // imageStride counts buffer elements (bytes here) per row, padding included.
        int stride = frame.imageStride;
        float[] rgb = new float[3 * width * height];
        byte[] row = new byte[3 * width];
        for (int y = 0; y < height; y++) {
            bytes.get(y * stride, row);
            int out = 3 * y * width;
            for (int i = 0; i < row.length; i++) {
                rgb[out + i] = (row[i] & 0xff) / 255f;
            }
        }
        return new RgbFrame(width, height, rgb);
    }

    @Override
    public void close() throws IOException {
        try {
            grabber.stop();
        } finally {
            grabber.release();
        }
    }

    private static void release(FFmpegFrameGrabber grabber) {
        try {
            grabber.release();
        } catch (FrameGrabber.Exception e) {
            // Opening already failed; that failure is the one to report.
        }
    }
}
