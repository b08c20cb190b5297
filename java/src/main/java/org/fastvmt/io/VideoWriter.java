package org.fastvmt.io;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Path;

import org.bytedeco.ffmpeg.global.avcodec;
import org.bytedeco.ffmpeg.global.avutil;
import org.bytedeco.javacv.FFmpegFrameRecorder;
import org.bytedeco.javacv.FrameRecorder;
import org.bytedeco.javacv.Java2DFrameConverter;

/**
 * Encodes pictures as an H.264 video (yuv420p, the pixel format every player accepts) in an MP4
 * container, through JavaCV's FFmpeg. The container is MP4 whatever the file is called, so a
 * caller may write to a temporary name and move it into place ({@link AtomicFiles}).
 */
public final class VideoWriter implements AutoCloseable {

    /**
     * Bits per pixel and frame: about 0.3 keeps H.264 close to transparent on flow pictures
     * (flat colours, thin lines) with the openh264 encoder, which has no constant-quality mode;
     * on natural video (../shared/data/source.mp4 at 832x480) it costs 2.3 levels of 255 on average.
     */
    private static final double BITS_PER_PIXEL = 0.3;
    private static final int MIN_BITRATE = 200_000;

    private final Path file;
    private final int width;
    private final int height;
    private final FFmpegFrameRecorder recorder;
    private final Java2DFrameConverter converter = new Java2DFrameConverter();
    private int framesWritten;

    private VideoWriter(Path file, int width, int height, FFmpegFrameRecorder recorder) {
        this.file = file;
        this.width = width;
        this.height = height;
        this.recorder = recorder;
    }

    /**
     * Starts a video of {@code width} x {@code height} pixels at {@code fps} frames per second.
     * yuv420p halves the chroma resolution, so both sizes must be even.
     */
    public static VideoWriter open(Path file, int width, int height, double fps) throws IOException {
        if (width < 2 || height < 2 || width % 2 != 0 || height % 2 != 0) {
            throw new IllegalArgumentException("H.264 yuv420p needs an even width and height of at least 2, got "
                    + width + "x" + height);
        }
        if (!(Double.isFinite(fps) && fps > 0)) {
            throw new IllegalArgumentException("fps must be finite and > 0, got " + fps);
        }
        FfmpegLogging.fatalOnly();
        FFmpegFrameRecorder recorder = new FFmpegFrameRecorder(file.toFile(), width, height, 0);
        recorder.setFormat("mp4");
        recorder.setVideoCodec(avcodec.AV_CODEC_ID_H264);
        recorder.setPixelFormat(avutil.AV_PIX_FMT_YUV420P);
        recorder.setFrameRate(fps);
        recorder.setVideoBitrate((int) Math.max(MIN_BITRATE, Math.min(Integer.MAX_VALUE,
                BITS_PER_PIXEL * width * height * fps)));
        try {
            recorder.start();
        } catch (FrameRecorder.Exception e) {
            recorder.release();
            throw new IOException(file + ": cannot start an H.264 video (" + e.getMessage() + ")", e);
        }
        return new VideoWriter(file, width, height, recorder);
    }

    /** Appends one picture, which must have the video's size. */
    public void write(BufferedImage picture) throws IOException {
        if (picture.getWidth() != width || picture.getHeight() != height) {
            throw new IllegalArgumentException("the video is " + width + "x" + height + " but the picture is "
                    + picture.getWidth() + "x" + picture.getHeight());
        }
        try {
            recorder.record(converter.convert(picture));
        } catch (FrameRecorder.Exception e) {
            throw new IOException(file + ": encoding frame " + framesWritten + " failed (" + e.getMessage() + ")", e);
        }
        framesWritten++;
    }

    /** Appends one frame (values clamped to [0, 1] and rounded to 8 bits), which must have the video's size. */
    public void write(RgbFrame frame) throws IOException {
        write(frame.toImage());
    }

    /** The pictures written so far. */
    public int framesWritten() {
        return framesWritten;
    }

    /** Flushes the encoder and finishes the container; the file is complete only after this. */
    @Override
    public void close() throws IOException {
        try {
            recorder.stop();
        } catch (FrameRecorder.Exception e) {
            throw new IOException(file + ": finishing the video failed (" + e.getMessage() + ")", e);
        } finally {
            recorder.release();
        }
    }
}
