package org.fastvmt.io;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.awt.image.BufferedImage;

import org.junit.jupiter.api.Test;

class RgbFrameTest {

    @Test
    void imagesRoundTripExactly() {
        BufferedImage image = new BufferedImage(5, 3, BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < 3; y++) {
            for (int x = 0; x < 5; x++) {
                image.setRGB(x, y, (x * 50) << 16 | (y * 100) << 8 | (x + y) * 30);
            }
        }
        RgbFrame frame = RgbFrame.of(image);
        assertEquals(100 / 255f, frame.get(2, 1, 0));
        assertEquals(100 / 255f, frame.get(2, 1, 1));
        assertEquals(90 / 255f, frame.get(2, 1, 2));
        BufferedImage back = frame.toImage();
        RgbFrame again = RgbFrame.of(back);
        for (int y = 0; y < 3; y++) {
            for (int x = 0; x < 5; x++) {
                assertEquals(image.getRGB(x, y), back.getRGB(x, y), "pixel " + x + "," + y);
                assertEquals(frame.get(x, y, 1), again.get(x, y, 1));
            }
        }
    }

    @Test
    void cropKeepsTheTargetAspectAroundTheCentre() {
        RgbFrame.Crop wide = RgbFrame.cropFor(640, 368, 832, 480);
        assertEquals(368, wide.height());
        assertEquals(368 * 832 / 480.0, wide.width(), 1e-9);
        assertEquals((640 - wide.width()) / 2, wide.x(), 1e-9);
        RgbFrame.Crop tall = RgbFrame.cropFor(100, 100, 50, 25);
        assertEquals(new RgbFrame.Crop(0, 25, 100, 50), tall);
    }

    @Test
    void aConstantFrameStaysConstantAtAnySize() {
        float[] rgb = new float[3 * 37 * 23];
        for (int i = 0; i < rgb.length; i += 3) {
            rgb[i] = 0.2f;
            rgb[i + 1] = 0.5f;
            rgb[i + 2] = 0.9f;
        }
        RgbFrame frame = new RgbFrame(37, 23, rgb);
        for (int[] size : new int[][] {{16, 16}, {80, 48}, {7, 3}}) {
            RgbFrame resized = frame.resizeCentreCrop(size[0], size[1]);
            for (int y = 0; y < size[1]; y++) {
                for (int x = 0; x < size[0]; x++) {
                    assertEquals(0.2f, resized.get(x, y, 0), 1e-6);
                    assertEquals(0.5f, resized.get(x, y, 1), 1e-6);
                    assertEquals(0.9f, resized.get(x, y, 2), 1e-6);
                }
            }
        }
    }

    /** Halving averages each output pixel's footprint with a tent: a 1-px checkerboard turns grey. */
    @Test
    void shrinkingAveragesAwayFineDetail() {
        RgbFrame checker = pattern(32, 16, (x, y) -> (x + y) % 2);
        RgbFrame half = checker.resizeCentreCrop(16, 8);
        for (int y = 1; y < 7; y++) {
            for (int x = 1; x < 15; x++) {
                assertEquals(0.5f, half.get(x, y, 0), 1e-6, "pixel " + x + "," + y);
            }
        }
    }

    /** Enlarging 2x is bilinear: between two pixel centres the value is their interpolation. */
    @Test
    void enlargingInterpolatesLinearly() {
        RgbFrame ramp = pattern(8, 4, (x, y) -> x / 7f);
        RgbFrame twice = ramp.resizeCentreCrop(16, 8);
        // Output pixel 5 has its centre at input x = (5 + 0.5) / 2 - 0.5 = 2.25.
        assertEquals(2.25f / 7f, twice.get(5, 3, 0), 1e-6);
        // Beyond the last centre the edge repeats.
        assertEquals(1f, twice.get(15, 0, 0), 1e-6);
    }

    /** The centre crop drops the sides of a wider frame: a frame whose sides are white, centre black. */
    @Test
    void resizingCropsTheSidesOfAWiderFrame() {
        RgbFrame bands = pattern(40, 10, (x, y) -> x < 10 || x >= 30 ? 1f : 0f);
        RgbFrame square = bands.resizeCentreCrop(10, 10);
        for (int x = 0; x < 10; x++) {
            assertEquals(0f, square.get(x, 5, 0), 1e-6, "column " + x);
        }
    }

    @Test
    void rejectsDataOfTheWrongLength() {
        assertThrows(IllegalArgumentException.class, () -> new RgbFrame(2, 2, new float[11]));
        assertThrows(IllegalArgumentException.class, () -> new RgbFrame(0, 2, new float[0]));
    }

    private interface Pattern {
        float at(int x, int y);
    }

    private static RgbFrame pattern(int width, int height, Pattern pattern) {
        float[] rgb = new float[3 * width * height];
        for (int y = 0; y < height; y++) {
            for (int x = 0; x < width; x++) {
                float v = pattern.at(x, y);
                rgb[3 * (y * width + x)] = v;
                rgb[3 * (y * width + x) + 1] = v;
                rgb[3 * (y * width + x) + 2] = v;
            }
        }
        return new RgbFrame(width, height, rgb);
    }
}
