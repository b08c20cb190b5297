package org.fastvmt.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Writing clips: MP4 and GIF round trips with measured error bounds, side by side, refusals. */
class VideoOutputTest {

    private static final int WIDTH = 128;
    private static final int HEIGHT = 96;
    private static final int FRAMES = 9;
    private static final double FPS = 15;

    @TempDir
    Path dir;

    private static VideoTensor generated() {
        return ReferenceClipTest.clip(SyntheticClip.moving(WIDTH, HEIGHT, FRAMES, 4), FPS);
    }

    /**
     * Write then read at the same size. Measured on this clip (textured shapes with hard edges,
     * seeds 1 to 6): mean absolute error per frame 3.8 to 4.5 levels of 255, 99th percentile of
     * all values 18 to 28 levels. The largest single error is not bounded usefully: yuv420p
     * stores colour at half resolution, so at a hard edge between two hues one channel can be
     * off by over 150 levels. Bounds: per-frame mean 6 levels, 99th percentile 40.
     */
    @Test
    void anMp4ComesBackWithItsSizeFrameCountRateAndContent() throws IOException {
        VideoTensor written = generated();
        Path file = dir.resolve("clip.mp4");
        VideoOutput.write(file, written);
        try (VideoReader reader = VideoReader.open(file)) {
            assertEquals(WIDTH, reader.width());
            assertEquals(HEIGHT, reader.height());
            assertEquals(FPS, reader.fps(), 1e-9);
            int frames = 0;
            while (reader.skip()) {
                frames++;
            }
            assertEquals(FRAMES, frames);
        }
        ReferenceClip read = ReferenceClip.load(file, new ClipShape(WIDTH, HEIGHT, FRAMES));
        assertEquals(FPS, read.sourceFps(), 1e-9);
        Errors errors = errors(written, read.video());
        assertTrue(errors.worstFrameMean() < 6, "worst per-frame mean error (levels) " + errors.worstFrameMean());
        assertTrue(errors.p99() < 40, "99th percentile error (levels) " + errors.p99());
        assertEquals(List.of(file), list(dir), "no temporary file is left");
    }

    /**
     * A GIF decodes (with FFmpeg) to the same size and frame count at 100 / round(100 / 15) =
     * 14.29 fps. Measured: one 256-colour palette per frame, no dithering, gives a mean error of
     * 6.5 to 7 levels and at most 30 levels (seeds 1 to 6). Bounds: mean 10, maximum 48.
     */
    @Test
    void aGifDecodes() throws IOException {
        VideoTensor written = generated();
        Path file = dir.resolve("clip.gif");
        VideoOutput.write(file, written);
        ReferenceClip read = ReferenceClip.load(file, new ClipShape(WIDTH, HEIGHT, FRAMES));
        assertEquals(100.0 / 7, read.sourceFps(), 1e-6);
        try (VideoReader reader = VideoReader.open(file)) {
            int frames = 0;
            while (reader.skip()) {
                frames++;
            }
            assertEquals(FRAMES, frames);
        }
        Errors errors = errors(written, read.video());
        assertTrue(errors.worstFrameMean() < 10, "worst per-frame mean error (levels) " + errors.worstFrameMean());
        assertTrue(errors.max() < 48, "largest error (levels) " + errors.max());
    }

    /** reference | result: twice the width; the reference (another size) is scaled to the result's. */
    @Test
    void sideBySideIsTwiceAsWide() throws IOException {
        VideoTensor result = generated();
        // The reference is 256 x 192 of a flat colour, so its half must be that colour.
        VideoTensor reference = VideoTensor.zeros(FRAMES, 2 * HEIGHT, 2 * WIDTH, 24);
        Arrays.fill(reference.data(), 0, reference.data().length / 3, 0.6f);
        Path file = dir.resolve("both.gif");
        VideoOutput.writeSideBySide(file, reference, result);
        try (VideoReader reader = VideoReader.open(file)) {
            assertEquals(2 * WIDTH, reader.width());
            assertEquals(HEIGHT, reader.height());
            RgbFrame first = reader.read();
            assertEquals(0.8, first.get(WIDTH / 2, HEIGHT / 2, 0), 2 / 255.0);
            assertEquals(0.5, first.get(WIDTH / 2, HEIGHT / 2, 1), 2 / 255.0);
            RgbFrame expectedRight = result.frame(0);
            double error = 0;
            for (int y = 0; y < HEIGHT; y++) {
                for (int x = 0; x < WIDTH; x++) {
                    for (int c = 0; c < 3; c++) {
                        error += Math.abs(first.get(WIDTH + x, y, c) - expectedRight.get(x, y, c));
                    }
                }
            }
            assertTrue(error / (3 * WIDTH * HEIGHT) < 10 / 255.0, "the right half is the result");
            int frames = 1;
            while (reader.skip()) {
                frames++;
            }
            assertEquals(FRAMES, frames);
        }
        Path mp4 = dir.resolve("both.mp4");
        VideoOutput.writeSideBySide(mp4, reference, result);
        try (VideoReader reader = VideoReader.open(mp4)) {
            assertEquals(2 * WIDTH, reader.width());
            assertEquals(HEIGHT, reader.height());
            assertEquals(FPS, reader.fps(), 1e-9);
        }
        IllegalArgumentException counts = assertThrows(IllegalArgumentException.class,
                () -> VideoOutput.writeSideBySide(dir.resolve("x.mp4"), VideoTensor.zeros(5, HEIGHT, WIDTH, 15),
                        result));
        assertTrue(counts.getMessage().contains("got 5 and 9"), counts.getMessage());
    }

    @Test
    void aFolderAsOutputIsRefusedBeforeEncoding() throws IOException {
        Path folder = Files.createDirectory(dir.resolve("out.mp4"));
        FileSystemException e = assertThrows(FileSystemException.class, () -> VideoOutput.write(folder, generated()));
        assertTrue(e.getMessage().startsWith(folder.toString()) && e.getMessage().contains("is a folder"),
                e.getMessage());
        assertEquals(List.of(), list(folder));
        assertEquals(List.of(folder), list(dir));
    }

    @Test
    void anOutputThatCannotBeWrittenIsRefusedNamingIt() throws IOException {
        // A file where a folder should be: fails for every user, root included.
        Path file = Files.writeString(dir.resolve("notes.txt"), "x");
        Path inside = file.resolve("clip.mp4");
        FileSystemException underFile = assertThrows(FileSystemException.class,
                () -> VideoOutput.write(inside, generated()));
        assertTrue(underFile.getMessage().startsWith(inside.toString()), underFile.getMessage());
        assertTrue(underFile.getMessage().contains(file + " is a file, not a folder"), underFile.getMessage());
        Path deeper = file.resolve("a/b/clip.gif");
        assertThrows(FileSystemException.class, () -> VideoOutput.checkWritable(deeper));
        // /proc accepts no new files, even from root.
        Path proc = Path.of("/proc/fastvmt-test-clip.mp4");
        if (Files.isDirectory(proc.getParent())) {
            FileSystemException e = assertThrows(FileSystemException.class, () -> VideoOutput.write(proc, generated()));
            assertTrue(e.getMessage().startsWith(proc.toString()) && e.getMessage().contains("cannot be written"),
                    e.getMessage());
        }
        assertEquals("x", Files.readString(file));
        assertEquals(List.of(file), list(dir));
    }

    @Test
    void aMissingFolderIsCreatedAndAnOldFileReplacedWhole() throws IOException {
        Path file = dir.resolve("new/sub/clip.mp4");
        assertEquals(VideoOutput.Format.MP4, VideoOutput.checkWritable(file));
        Files.writeString(file, "an older file");
        VideoOutput.write(file, generated());
        try (VideoReader reader = VideoReader.open(file)) {
            assertEquals(WIDTH, reader.width());
        }
        assertEquals(List.of(file), list(file.getParent()));
    }

    @Test
    void theExtensionChoosesTheFormat() throws IOException {
        assertEquals(VideoOutput.Format.GIF, VideoOutput.Format.of(Path.of("a/b.GIF")));
        assertEquals(VideoOutput.Format.MP4, VideoOutput.Format.of(Path.of("b.mp4")));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> VideoOutput.write(dir.resolve("clip.avi"), generated()));
        assertTrue(e.getMessage().contains("clip.avi") && e.getMessage().contains(".mp4"), e.getMessage());
        assertThrows(IllegalArgumentException.class,
                () -> VideoOutput.write(dir.resolve("odd.mp4"), VideoTensor.zeros(1, 16, 15, 15)));
        assertThrows(IllegalArgumentException.class, () -> VideoOutput.write(dir.resolve("a.mp4"), generated(), -1));
        assertArrayEquals(new Path[0], list(dir).toArray(new Path[0]));
    }

    /** A clip without a rate is written at Wan2.1's 16 fps. */
    @Test
    void aClipWithoutARateIsWrittenAt16Fps() throws IOException {
        Path file = dir.resolve("norate.mp4");
        VideoOutput.write(file, generated().withFps(0));
        try (VideoReader reader = VideoReader.open(file)) {
            assertEquals(16, reader.fps(), 1e-9);
            for (int t = 0; t < FRAMES; t++) {
                assertTrue(reader.skip());
            }
            assertNull(reader.read());
        }
    }

    private record Errors(double worstFrameMean, double p99, double max) {
    }

    /** Absolute errors in 8-bit levels between two clips of one shape. */
    private static Errors errors(VideoTensor expected, VideoTensor got) {
        assertArrayEquals(expected.shape(), got.shape());
        int plane = expected.height() * expected.width();
        double[] all = new double[expected.data().length];
        double worstFrameMean = 0;
        for (int t = 0; t < expected.frames(); t++) {
            double sum = 0;
            for (int c = 0; c < 3; c++) {
                for (int p = 0; p < plane; p++) {
                    int i = (c * expected.frames() + t) * plane + p;
                    // [-1, 1] spans 255 levels over 2 units.
                    double error = Math.abs(expected.data()[i] - got.data()[i]) * 127.5;
                    all[i] = error;
                    sum += error;
                }
            }
            worstFrameMean = Math.max(worstFrameMean, sum / (3 * plane));
        }
        Arrays.sort(all);
        return new Errors(worstFrameMean, all[(int) (all.length * 0.99)], all[all.length - 1]);
    }

    private static List<Path> list(Path folder) throws IOException {
        try (Stream<Path> files = Files.list(folder)) {
            return files.sorted().toList();
        }
    }
}
