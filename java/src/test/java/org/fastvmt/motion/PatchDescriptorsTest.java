package org.fastvmt.motion;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.SplittableRandom;

import org.junit.jupiter.api.Test;

class PatchDescriptorsTest {

    private static final int WIDTH = 256;
    private static final int HEIGHT = 192;
    private static final int C = PatchDescriptors.CHANNELS;
    private static final int GROUP = PatchDescriptors.GRID * PatchDescriptors.GRID;

    @Test
    void everyDescriptorIsZeroMeanPerColourAndUnitLength() {
        PatchDescriptors.Patches p = PatchDescriptors.of(noise(WIDTH, HEIGHT, 1), WIDTH, HEIGHT);
        assertEquals(HEIGHT / 16, p.rows());
        assertEquals(WIDTH / 16, p.cols());
        assertEquals(p.rows() * p.cols() * C, p.values().length);
        for (int cell = 0; cell < p.rows() * p.cols(); cell++) {
            double norm = 0;
            for (int group = 0; group < 3; group++) {
                double sum = 0;
                for (int n = 0; n < GROUP; n++) {
                    float v = p.values()[cell * C + group * GROUP + n];
                    sum += v;
                    norm += v * v;
                }
                assertEquals(0, sum, 1e-5, "cell " + cell + " colour " + group);
            }
            assertEquals(1, Math.sqrt(norm), 1e-5, "cell " + cell);
            assertTrue(p.contrast()[cell] > 0.01, "noise is textured");
        }
    }

    @Test
    void aFlatFrameHasZeroDescriptorsAndNoContrast() {
        float[] grey = new float[3 * WIDTH * HEIGHT];
        Arrays.fill(grey, 0.4f);
        PatchDescriptors.Patches p = PatchDescriptors.of(grey, WIDTH, HEIGHT);
        for (float v : p.values()) {
            assertEquals(0f, v);
        }
        for (float c : p.contrast()) {
            assertEquals(0f, c);
        }
    }

    /** Brightness and contrast changes (a gain and an offset on all channels) leave descriptors as they are. */
    @Test
    void descriptorsIgnoreBrightnessAndContrast() {
        float[] rgb = noise(WIDTH, HEIGHT, 2);
        float[] changed = new float[rgb.length];
        for (int i = 0; i < rgb.length; i++) {
            changed[i] = 0.5f * rgb[i] + 0.3f;
        }
        PatchDescriptors.Patches a = PatchDescriptors.of(rgb, WIDTH, HEIGHT);
        PatchDescriptors.Patches b = PatchDescriptors.of(changed, WIDTH, HEIGHT);
        for (int i = 0; i < a.values().length; i++) {
            assertEquals(a.values()[i], b.values()[i], 1e-4, "channel " + i);
        }
        assertEquals(0.5 * a.contrast()[40], b.contrast()[40], 1e-5);
    }

    /**
     * Moving the picture by one cell moves the descriptors by one cell, exactly, wherever every
     * box stays inside the frame: what the AMF relies on to follow motion.
     */
    @Test
    void aShiftByOneCellShiftsTheDescriptors() {
        float[] rgb = noise(WIDTH + 16, HEIGHT, 3);
        float[] left = crop(rgb, WIDTH + 16, HEIGHT, 0);
        float[] right = crop(rgb, WIDTH + 16, HEIGHT, 16);
        PatchDescriptors.Patches a = PatchDescriptors.of(left, WIDTH, HEIGHT);
        PatchDescriptors.Patches b = PatchDescriptors.of(right, WIDTH, HEIGHT);
        int cols = WIDTH / 16;
        // Boxes reach 72 px (4.5 cells) from a cell's centre; these cells keep them all inside.
        for (int r = 5; r < HEIGHT / 16 - 5; r++) {
            for (int c = 6; c < cols - 5; c++) {
                for (int n = 0; n < C; n++) {
                    assertEquals(a.values()[(r * cols + c) * C + n], b.values()[(r * cols + c - 1) * C + n], 1e-5,
                            "cell " + r + "," + c + " channel " + n);
                }
            }
        }
    }

    @Test
    void distinctPlacesHaveDistinctDescriptors() {
        PatchDescriptors.Patches p = PatchDescriptors.of(noise(WIDTH, HEIGHT, 4), WIDTH, HEIGHT);
        int cols = p.cols();
        int centre = (6 * cols + 8) * C;
        double self = 0;
        double far = 0;
        for (int n = 0; n < C; n++) {
            self += p.values()[centre + n] * p.values()[centre + n];
            far += p.values()[centre + n] * p.values()[(6 * cols + 14) * C + n];
        }
        assertEquals(1, self, 1e-5);
        assertTrue(far < 0.5, "similarity to a cell 6 tokens away: " + far);
    }

    @Test
    void rejectsSizesThatAreNotWholeCells() {
        assertThrows(IllegalArgumentException.class, () -> PatchDescriptors.of(new float[3 * 40 * 32], 40, 32));
        assertThrows(IllegalArgumentException.class, () -> PatchDescriptors.of(new float[10], 32, 32));
    }

    /** Random colours on a lattice of 16 px, bilinearly interpolated: smooth blobs at the scale of a token. */
    private static float[] noise(int width, int height, long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        int spacing = 16;
        int latticeW = width / spacing + 2;
        int latticeH = height / spacing + 2;
        float[] lattice = new float[3 * latticeW * latticeH];
        for (int i = 0; i < lattice.length; i++) {
            lattice[i] = random.nextFloat();
        }
        float[] rgb = new float[3 * width * height];
        for (int y = 0; y < height; y++) {
            int ly = y / spacing;
            float fy = (y % spacing) / (float) spacing;
            for (int x = 0; x < width; x++) {
                int lx = x / spacing;
                float fx = (x % spacing) / (float) spacing;
                for (int ch = 0; ch < 3; ch++) {
                    float top = (1 - fx) * lattice[3 * (ly * latticeW + lx) + ch]
                            + fx * lattice[3 * (ly * latticeW + lx + 1) + ch];
                    float bottom = (1 - fx) * lattice[3 * ((ly + 1) * latticeW + lx) + ch]
                            + fx * lattice[3 * ((ly + 1) * latticeW + lx + 1) + ch];
                    rgb[3 * (y * width + x) + ch] = (1 - fy) * top + fy * bottom;
                }
            }
        }
        return rgb;
    }

    private static float[] crop(float[] rgb, int width, int height, int x0) {
        int cropWidth = width - 16;
        float[] out = new float[3 * cropWidth * height];
        for (int y = 0; y < height; y++) {
            System.arraycopy(rgb, 3 * (y * width + x0), out, 3 * y * cropWidth, 3 * cropWidth);
        }
        return out;
    }
}
