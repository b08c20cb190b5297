package org.fastvmt.io;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@link VideoWriter} then {@link VideoReader}: what H.264 gives back is what was written, within its loss. */
class VideoRoundTripTest {

    private static final int WIDTH = 96;
    private static final int HEIGHT = 64;
    private static final int FRAMES = 12;
    private static final double FPS = 7.5;
    /** This frame is skipped instead of read, which must keep the frames after it in step. */
    private static final int SKIPPED = 5;
    /**
     * Mean absolute error per channel on the [0, 1] scale: H.264 at this bitrate on smooth
     * content loses about one grey level on average; 0.02 is five.
     */
    private static final double MEAN_ERROR = 0.02;

    @TempDir
    Path dir;

    @Test
    void framesComeBackWithTheirCountSizeRateAndContent() throws IOException {
        Path file = dir.resolve("clip.mp4");
        try (VideoWriter writer = VideoWriter.open(file, WIDTH, HEIGHT, FPS)) {
            for (int t = 0; t < FRAMES; t++) {
                writer.write(frame(t).toImage());
            }
            assertEquals(FRAMES, writer.framesWritten());
        }
        try (VideoReader reader = VideoReader.open(file)) {
            assertEquals(WIDTH, reader.width());
            assertEquals(HEIGHT, reader.height());
            assertEquals(FPS, reader.fps(), 1e-6);
            for (int t = 0; t < FRAMES; t++) {
                if (t == SKIPPED) {
                    assertTrue(reader.skip(), "frame " + t + " is decoded without conversion");
                    continue;
                }
                RgbFrame got = reader.read();
                assertNotNull(got, "frame " + t);
                assertEquals(WIDTH, got.width());
                assertEquals(HEIGHT, got.height());
                RgbFrame expected = frame(t);
                double error = 0;
                for (int i = 0; i < expected.rgb().length; i++) {
                    error += Math.abs(expected.rgb()[i] - got.rgb()[i]);
                }
                error /= expected.rgb().length;
                assertTrue(error < MEAN_ERROR, "frame " + t + ": mean error " + error);
            }
            assertNull(reader.read());
            assertEquals(FRAMES, reader.framesRead());
        }
    }

    @Test
    void aMissingFileIsReportedAsSuch() {
        Path missing = dir.resolve("nothing.mp4");
        NoSuchFileException e = assertThrows(NoSuchFileException.class, () -> VideoReader.open(missing));
        assertTrue(e.getMessage().contains(missing.toString()), e.getMessage());
    }

    @Test
    void aFileThatIsNotAVideoIsRefused() throws IOException {
        Path text = Files.writeString(dir.resolve("notes.mp4"), "these are not video frames\n".repeat(20));
        InvalidVideoException e = assertThrows(InvalidVideoException.class, () -> VideoReader.open(text));
        assertTrue(e.getMessage().contains(text.toString()), e.getMessage());
    }

    @Test
    void theWriterNeedsEvenSizesAndPicturesOfItsSize() throws IOException {
        assertThrows(IllegalArgumentException.class, () -> VideoWriter.open(dir.resolve("a.mp4"), 95, 64, FPS));
        assertThrows(IllegalArgumentException.class, () -> VideoWriter.open(dir.resolve("a.mp4"), 96, 64, 0));
        try (VideoWriter writer = VideoWriter.open(dir.resolve("b.mp4"), WIDTH, HEIGHT, FPS)) {
            assertThrows(IllegalArgumentException.class, () -> writer.write(frame(0).resizeCentreCrop(48, 32).toImage()));
            writer.write(frame(0).toImage());
        }
    }

    /** A smooth colour gradient with a bright square moving 3 pixels per frame. */
    private static RgbFrame frame(int t) {
        float[] rgb = new float[3 * WIDTH * HEIGHT];
        for (int y = 0; y < HEIGHT; y++) {
            for (int x = 0; x < WIDTH; x++) {
                int i = 3 * (y * WIDTH + x);
                boolean square = x >= 10 + 3 * t && x < 26 + 3 * t && y >= 20 && y < 36;
                rgb[i] = square ? 0.9f : 0.2f + 0.6f * x / WIDTH;
                rgb[i + 1] = square ? 0.9f : 0.3f + 0.4f * y / HEIGHT;
                rgb[i + 2] = square ? 0.8f : 0.5f;
            }
        }
        return new RgbFrame(WIDTH, HEIGHT, rgb);
    }
}
