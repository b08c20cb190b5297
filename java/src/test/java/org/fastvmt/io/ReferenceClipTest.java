package org.fastvmt.io;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import org.bytedeco.ffmpeg.global.avcodec;
import org.bytedeco.ffmpeg.global.avutil;
import org.bytedeco.javacv.FFmpegFrameRecorder;
import org.bytedeco.javacv.Java2DFrameConverter;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Reading a reference clip for the model: formats, the cover-then-centre-crop geometry, refusals. */
class ReferenceClipTest {

    @TempDir
    Path dir;

    /**
     * ../shared/data/source.mp4 (81 frames of 640x368 at 15 fps) when the build names the shared
     * folder and it is there, else a generated clip of that size: the same geometry either way.
     */
    private Path wideSource(int framesIfGenerated) throws IOException {
        String shared = System.getProperty("fastvmt.shared.dir");
        if (shared != null) {
            Path video = Path.of(shared, "data", "source.mp4");
            if (Files.isRegularFile(video)) {
                return video;
            }
        }
        Path file = dir.resolve("wide.mp4");
        VideoOutput.write(file, clip(SyntheticClip.moving(640, 368, framesIfGenerated, 11), 15));
        return file;
    }

    /**
     * 640x368 to 832x480: the frame is scaled by max(832 / 640, 480 / 368) = 480 / 368 = 1.304 to
     * 834.8 x 480, and 1.39 scaled pixels are cut from the left and the right. In source pixels
     * the kept rectangle is columns [1.067, 638.933) and every row: each output pixel is the
     * bilinear sample at its centre mapped into that rectangle, which this test recomputes
     * independently from the decoded source frames.
     */
    @Test
    void aWiderFrameIsScaledToCoverAndCutAtTheSides() throws IOException {
        Path source = wideSource(5);
        ClipShape shape = new ClipShape(832, 480, 5);
        ReferenceClip clip = ReferenceClip.load(source, shape);
        assertEquals(640, clip.sourceWidth());
        assertEquals(368, clip.sourceHeight());
        assertEquals(15, clip.sourceFps(), 1e-9);
        assertEquals(1.0667, clip.crop().x(), 1e-4);
        assertEquals(637.8667, clip.crop().width(), 1e-4);
        assertEquals(0, clip.crop().y());
        assertEquals(368, clip.crop().height());

        VideoTensor video = clip.video();
        assertEquals(5, video.frames());
        assertEquals(480, video.height());
        assertEquals(832, video.width());
        double scale = clip.crop().width() / 832;
        assertEquals(368.0 / 480, scale, 1e-12);
        double worst = 0;
        try (VideoReader reader = VideoReader.open(source)) {
            for (int t = 0; t < 5; t++) {
                RgbFrame raw = reader.read();
                for (int y = 0; y < 480; y++) {
                    double sy = (y + 0.5) * scale - 0.5;
                    for (int x = 0; x < 832; x++) {
                        double sx = clip.crop().x() + (x + 0.5) * scale - 0.5;
                        for (int c = 0; c < 3; c++) {
                            double expected = 2 * bilinear(raw, sx, sy, c) - 1;
                            worst = Math.max(worst, Math.abs(expected - video.get(c, t, y, x)));
                        }
                    }
                }
            }
        }
        assertTrue(worst < 1e-5, "largest difference from bilinear sampling of the kept rectangle: " + worst);
        // Output column 0 samples source x = 0.95 (mostly column 1), the last one x = 638.05:
        // columns 0 and 639 contribute only 5% to the border columns.
        assertEquals(0.95, clip.crop().x() + 0.5 * scale - 0.5, 1e-3);
        assertEquals(638.05, clip.crop().x() + 831.5 * scale - 0.5, 1e-3);
    }

    @Test
    void theSampleVideoHasExactly81Frames() throws IOException {
        String shared = System.getProperty("fastvmt.shared.dir");
        assumeTrue(shared != null, "fastvmt.shared.dir is not set");
        Path video = Path.of(shared, "data", "source.mp4");
        assumeTrue(Files.isRegularFile(video), video + " is absent");
        // A small model size keeps this fast; the frame count is what is checked.
        ReferenceClip clip = ReferenceClip.load(video, new ClipShape(64, 48, 81));
        assertEquals(81, clip.video().frames());
        assertEquals(15, clip.sourceFps(), 1e-9);
        InvalidVideoException e = assertThrows(InvalidVideoException.class,
                () -> ReferenceClip.load(video, new ClipShape(64, 48, 85)));
        assertTrue(e.getMessage().contains("it has 81 frame(s) but 85 are needed"), e.getMessage());
        assertTrue(e.getMessage().contains("--frames 81 would use all of them"), e.getMessage());
    }

    /** A taller frame keeps its full width and loses rows at the top and bottom. */
    @Test
    void aTallerFrameIsCutAtTopAndBottom() throws IOException {
        // GIF: three colours are stored exactly, so nothing but the crop changes a pixel.
        Path file = dir.resolve("tall.gif");
        // Top 16 rows red, bottom 16 rows blue, a grey middle: 48x96 to 48x48 keeps rows [24, 72).
        float[] rgb = new float[3 * 48 * 96];
        for (int y = 0; y < 96; y++) {
            for (int x = 0; x < 48; x++) {
                int i = 3 * (y * 48 + x);
                float[] colour = y < 16 ? new float[] {1, 0, 0} : y >= 80 ? new float[] {0, 0, 1}
                        : new float[] {0.5f, 0.5f, 0.5f};
                System.arraycopy(colour, 0, rgb, i, 3);
            }
        }
        RgbFrame frame = new RgbFrame(48, 96, rgb);
        VideoOutput.write(file, VideoTensor.of(List.of(frame, frame, frame, frame, frame), 10));
        ReferenceClip clip = ReferenceClip.load(file, new ClipShape(48, 48, 5));
        assertEquals(24, clip.crop().y(), 1e-9);
        assertEquals(48, clip.crop().height(), 1e-9);
        RgbFrame got = clip.video().frame(4);
        for (int y = 0; y < 48; y++) {
            for (int x = 0; x < 48; x++) {
                for (int c = 0; c < 3; c++) {
                    assertEquals(0.5, got.get(x, y, c), 1 / 255.0, "pixel " + x + "," + y + " channel " + c);
                }
            }
        }
    }

    /** A Y4M file (raw YUV, so lossless apart from the colour conversion) is read like any other video. */
    @Test
    void aY4mFileIsRead() throws IOException {
        int width = 32;
        int height = 16;
        int frames = 6;
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        bytes.writeBytes(("YUV4MPEG2 W" + width + " H" + height + " F25:1 Ip A1:1 C444\n")
                .getBytes(StandardCharsets.US_ASCII));
        List<float[]> expected = new ArrayList<>();
        for (int t = 0; t < frames; t++) {
            bytes.writeBytes("FRAME\n".getBytes(StandardCharsets.US_ASCII));
            // Frame t: a flat colour (BT.601, limited range) that changes with t.
            float[] rgb = {0.2f + 0.1f * t, 0.6f, 0.8f - 0.1f * t};
            expected.add(rgb);
            double luma = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2];
            int y = (int) Math.round(16 + 219 * luma);
            int cb = (int) Math.round(128 + 224 * (rgb[2] - luma) / 1.772);
            int cr = (int) Math.round(128 + 224 * (rgb[0] - luma) / 1.402);
            for (int plane : new int[] {y, cb, cr}) {
                for (int i = 0; i < width * height; i++) {
                    bytes.write(plane);
                }
            }
        }
        Path file = Files.write(dir.resolve("clip.y4m"), bytes.toByteArray());
        ReferenceClip clip = ReferenceClip.load(file, new ClipShape(width, height, 5));
        assertEquals(25, clip.sourceFps(), 1e-9);
        assertEquals(5, clip.video().frames());
        for (int t = 0; t < 5; t++) {
            RgbFrame got = clip.video().frame(t);
            for (int c = 0; c < 3; c++) {
                // Rounding to 8-bit YUV and back costs at most about 2 levels.
                assertEquals(expected.get(t)[c], got.get(width / 2, height / 2, c), 3 / 255.0, "frame " + t);
            }
        }
    }

    /** WebM (VP9), written here by FFmpeg itself, is read like MP4. */
    @Test
    void aWebmFileIsRead() throws IOException {
        Path file = dir.resolve("clip.webm");
        VideoTensor written = clip(SyntheticClip.moving(64, 48, 5, 1), 12);
        FfmpegLogging.fatalOnly();
        FFmpegFrameRecorder recorder = new FFmpegFrameRecorder(file.toFile(), 64, 48, 0);
        recorder.setFormat("webm");
        recorder.setVideoCodec(avcodec.AV_CODEC_ID_VP9);
        recorder.setPixelFormat(avutil.AV_PIX_FMT_YUV420P);
        recorder.setFrameRate(12);
        try (Java2DFrameConverter converter = new Java2DFrameConverter()) {
            recorder.start();
            for (int t = 0; t < 5; t++) {
                recorder.record(converter.convert(written.frame(t).toImage()));
            }
            recorder.stop();
        } finally {
            recorder.release();
        }
        ReferenceClip clip = ReferenceClip.load(file, new ClipShape(64, 48, 5));
        assertEquals(12, clip.sourceFps(), 1e-9);
        assertEquals(5, clip.video().frames());
        double error = 0;
        for (int i = 0; i < written.data().length; i++) {
            error += Math.abs(written.data()[i] - clip.video().data()[i]) * 127.5;
        }
        error /= written.data().length;
        // Measured 4.9 levels on average (VP9 at FFmpeg's default 400 kb/s; yuv420p chroma at the
        // shapes' hard edges costs most of it).
        assertTrue(error < 10, "mean error (levels) " + error);
    }

    @Test
    void aClipWithTooFewFramesIsRefusedSayingHowManyItHasAndNeeds() throws IOException {
        Path file = dir.resolve("short.mp4");
        VideoOutput.write(file, clip(SyntheticClip.moving(64, 48, 7, 2), 16));
        InvalidVideoException e = assertThrows(InvalidVideoException.class,
                () -> ReferenceClip.load(file, new ClipShape(64, 48, 9)));
        assertTrue(e.getMessage().startsWith(file.toString()), e.getMessage());
        assertTrue(e.getMessage().contains("it has 7 frame(s) but 9 are needed"), e.getMessage());
        assertTrue(e.getMessage().contains("--frames 5 would use the first 5"), e.getMessage());
        // The default needs 81.
        InvalidVideoException byDefault = assertThrows(InvalidVideoException.class, () -> ReferenceClip.load(file));
        assertTrue(byDefault.getMessage().contains("it has 7 frame(s) but 81 are needed"), byDefault.getMessage());
        // Asking for fewer frames takes the first ones.
        assertEquals(5, ReferenceClip.load(file, new ClipShape(64, 48, 5)).video().frames());
    }

    @Test
    void aFileThatIsNotAVideoIsRefused() throws IOException {
        Path text = Files.writeString(dir.resolve("notes.mp4"), "not a video\n".repeat(50));
        InvalidVideoException e = assertThrows(InvalidVideoException.class, () -> ReferenceClip.load(text));
        assertTrue(e.getMessage().startsWith(text.toString()), e.getMessage());
        Path noise = Files.write(dir.resolve("noise.webm"), new byte[] {0x1a, 0x45, (byte) 0xdf, (byte) 0xa3, 1, 2, 3});
        InvalidVideoException broken = assertThrows(InvalidVideoException.class, () -> ReferenceClip.load(noise));
        assertTrue(broken.getMessage().startsWith(noise.toString()), broken.getMessage());
    }

    /** A stream that declares frames of 0x0 pixels (constructible as Y4M): refused, naming the file. */
    @Test
    void zeroSizeFramesAreRefused() throws IOException {
        Path file = Files.writeString(dir.resolve("empty.y4m"), "YUV4MPEG2 W0 H0 F15:1 Ip A1:1 C444\nFRAME\n");
        InvalidVideoException e = assertThrows(InvalidVideoException.class, () -> ReferenceClip.load(file));
        assertTrue(e.getMessage().startsWith(file.toString()), e.getMessage());
    }

    static VideoTensor clip(SyntheticClip clip, double fps) {
        List<RgbFrame> frames = new ArrayList<>();
        for (int t = 0; t < clip.frames(); t++) {
            frames.add(clip.frame(t));
        }
        return VideoTensor.of(frames, fps);
    }

    /** Channel c of {@code frame} at (sx, sy), pixel centres at integers, edges repeated. */
    private static double bilinear(RgbFrame frame, double sx, double sy, int c) {
        int x0 = (int) Math.floor(sx);
        int y0 = (int) Math.floor(sy);
        double fx = sx - x0;
        double fy = sy - y0;
        double top = (1 - fx) * at(frame, x0, y0, c) + fx * at(frame, x0 + 1, y0, c);
        double bottom = (1 - fx) * at(frame, x0, y0 + 1, c) + fx * at(frame, x0 + 1, y0 + 1, c);
        return (1 - fy) * top + fy * bottom;
    }

    private static double at(RgbFrame frame, int x, int y, int c) {
        return frame.get(Math.clamp(x, 0, frame.width() - 1), Math.clamp(y, 0, frame.height() - 1), c);
    }
}
