package org.fastvmt.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import org.junit.jupiter.api.Test;

class SyntheticClipTest {

    private static final int WIDTH = 256;
    private static final int HEIGHT = 160;
    private static final int CELL = 16;

    @Test
    void theSeedDecidesEverything() {
        SyntheticClip a = SyntheticClip.moving(WIDTH, HEIGHT, 9, 7);
        SyntheticClip b = SyntheticClip.moving(WIDTH, HEIGHT, 9, 7);
        SyntheticClip other = SyntheticClip.moving(WIDTH, HEIGHT, 9, 8);
        assertArrayEquals(a.frame(4).rgb(), b.frame(4).rgb());
        assertArrayEquals(a.cellVelocities(4, 10, 16), b.cellVelocities(4, 10, 16));
        assertFalse(Arrays.equals(a.frame(4).rgb(), other.frame(4).rgb()));
    }

    /**
     * The ground truth is what the pixels do: at most cells the pixel under the cell's centre
     * reappears one frame later displaced by exactly the cell's velocity. (Cells on an edge of
     * a shape may be covered or uncovered in between, and some content leaves the frame.)
     */
    @Test
    void contentMovesByTheTrueVelocity() {
        SyntheticClip clip = SyntheticClip.moving(WIDTH, HEIGHT, SyntheticClip.DEFAULT_FRAMES, 0);
        int rows = HEIGHT / CELL;
        int cols = WIDTH / CELL;
        int checked = 0;
        int matching = 0;
        for (int t = 0; t + 1 < clip.frames(); t += 5) {
            RgbFrame now = clip.frame(t);
            RgbFrame next = clip.frame(t + 1);
            float[] velocity = clip.cellVelocities(t, rows, cols);
            for (int r = 0; r < rows; r++) {
                for (int c = 0; c < cols; c++) {
                    int x = c * CELL + CELL / 2;
                    int y = r * CELL + CELL / 2;
                    int nx = x + (int) velocity[2 * (r * cols + c)];
                    int ny = y + (int) velocity[2 * (r * cols + c) + 1];
                    if (nx < 0 || ny < 0 || nx >= WIDTH || ny >= HEIGHT) {
                        continue;
                    }
                    checked++;
                    if (samePixel(now, x, y, next, nx, ny)) {
                        matching++;
                    }
                }
            }
        }
        assertTrue(matching >= 0.9 * checked, matching + " of " + checked + " cells move as stated");
    }

    @Test
    void theBackgroundPansAndTheShapesMoveEachTheirOwnWay() {
        SyntheticClip clip = SyntheticClip.moving(WIDTH, HEIGHT, SyntheticClip.DEFAULT_FRAMES, 0);
        Set<List<Integer>> velocities = new HashSet<>();
        boolean leftward = false;
        boolean upward = false;
        for (int t = 0; t < clip.frames(); t++) {
            float[] v = clip.cellVelocities(t, HEIGHT / 4, WIDTH / 4);
            for (int n = 0; n < v.length; n += 2) {
                velocities.add(List.of((int) v[n], (int) v[n + 1]));
                leftward |= v[n] < 0;
                upward |= v[n + 1] < 0;
                assertTrue(Math.abs(v[n]) <= SyntheticClip.MAX_SHAPE_SPEED
                        && Math.abs(v[n + 1]) <= SyntheticClip.MAX_SHAPE_SPEED);
            }
        }
        // The pan and four shapes, all distinct; the pan is slow but not zero.
        assertEquals(5, velocities.size(), velocities.toString());
        assertFalse(velocities.contains(List.of(0, 0)));
        assertTrue(leftward && upward, "negative velocities occur along both axes");
    }

    @Test
    void aPanMovesEverythingAlike() {
        SyntheticClip pan = SyntheticClip.pan(WIDTH, HEIGHT, 5, 3, 2, -1);
        float[] v = pan.cellVelocities(2, 10, 16);
        for (int n = 0; n < v.length; n += 2) {
            assertEquals(2f, v[n]);
            assertEquals(-1f, v[n + 1]);
        }
        RgbFrame first = pan.frame(0);
        RgbFrame later = pan.frame(4);
        for (int y = 0; y < HEIGHT - 4; y++) {
            for (int x = 0; x < WIDTH - 8; x++) {
                assertTrue(samePixel(first, x, y + 4, later, x + 8, y), x + "," + y);
            }
        }
        SyntheticClip still = SyntheticClip.pan(WIDTH, HEIGHT, 3, 3, 0, 0);
        assertArrayEquals(still.frame(0).rgb(), still.frame(2).rgb());
    }

    @Test
    void rejectsBadArguments() {
        assertThrows(IllegalArgumentException.class, () -> SyntheticClip.moving(8, 160, 10, 0));
        assertThrows(IllegalArgumentException.class, () -> SyntheticClip.moving(WIDTH, HEIGHT, 0, 0));
        SyntheticClip clip = SyntheticClip.pan(WIDTH, HEIGHT, 3, 0, 1, 0);
        assertThrows(IllegalArgumentException.class, () -> clip.frame(3));
        assertThrows(IllegalArgumentException.class, () -> clip.cellVelocities(0, 0, 4));
    }

    private static boolean samePixel(RgbFrame a, int ax, int ay, RgbFrame b, int bx, int by) {
        for (int ch = 0; ch < 3; ch++) {
            if (a.get(ax, ay, ch) != b.get(bx, by, ch)) {
                return false;
            }
        }
        return true;
    }
}
