package org.fastvmt.io;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.Color;
import java.awt.image.BufferedImage;

import org.junit.jupiter.api.Test;

class FlowPictureTest {

    @Test
    void zeroMotionIsWhite() {
        assertEquals(0xffffff, FlowPicture.wheelColour(0, 0, 5));
    }

    @Test
    void hueFollowsTheDirection() {
        assertEquals(0xff0000, FlowPicture.wheelColour(10, 0, 5), "right is red");
        assertEquals(0, hue(FlowPicture.wheelColour(10, 0, 5)), 1e-3);
        assertEquals(0.25, hue(FlowPicture.wheelColour(0, 10, 5)), 2e-3, "down (y grows) is a quarter turn");
        assertEquals(0.5, hue(FlowPicture.wheelColour(-10, 0, 5)), 2e-3, "left is the opposite hue");
        assertEquals(0.75, hue(FlowPicture.wheelColour(0, -10, 5)), 2e-3, "up");
        assertEquals(0x00ffff, FlowPicture.wheelColour(-10, 0, 5), "left is cyan");
    }

    @Test
    void saturationGrowsWithSpeedUpToTheScale() {
        float[] hsb = new float[3];
        int half = FlowPicture.wheelColour(0, 2.5, 5);
        Color.RGBtoHSB(half >> 16 & 0xff, half >> 8 & 0xff, half & 0xff, hsb);
        assertEquals(0.5, hsb[1], 0.01);
        assertEquals(1.0, hsb[2], 0.01);
        assertEquals(FlowPicture.wheelColour(0, 5, 5), FlowPicture.wheelColour(0, 50, 5), "capped at full colour");
        assertThrows(IllegalArgumentException.class, () -> FlowPicture.wheelColour(1, 1, 0));
    }

    @Test
    void robustScaleIsAQuantileOfTheReadLengthsWithAFloor() {
        float[] lengths1to100 = new float[200];
        for (int v = 0; v < 100; v++) {
            lengths1to100[2 * v] = 0.6f * (v + 1);
            lengths1to100[2 * v + 1] = 0.8f * (v + 1);
        }
        float[] unread = {Float.NaN, Float.NaN, 1000f, 0f};
        assertEquals(95.0, FlowPicture.robustScale(new float[][] {lengths1to100}, 0.95, 1), 0.01);
        // The NaN cell is no reading; the 1000 is one more length among 101.
        assertEquals(96.0, FlowPicture.robustScale(new float[][] {lengths1to100, unread}, 0.95, 1), 0.01);
        assertEquals(1.0, FlowPicture.robustScale(new float[][] {{0.1f, 0f}}, 0.95, 1.0), "floor");
        assertEquals(2.0, FlowPicture.robustScale(new float[][] {{Float.NaN, Float.NaN}}, 0.5, 2.0), "nothing read");
    }

    /** 2 x 3 cells of 16 px over a black frame: colours per cell, grey for no reading, black arrows. */
    @Test
    void picturesColourEachCellAndDrawArrows() {
        BufferedImage black = new BufferedImage(48, 32, BufferedImage.TYPE_3BYTE_BGR);
        float[] flow = {
            0, 0, 8, 0, Float.NaN, Float.NaN,
            0, 0, 0, 0, 0, 0,
        };
        BufferedImage picture = FlowPicture.render(black, 2, 3, flow, 8);
        assertEquals(48, picture.getWidth());
        assertEquals(32, picture.getHeight());
        // Cell (0, 0) is still: white blended over black, 55% of 255 = 140.
        assertEquals(0x8c8c8c, picture.getRGB(2, 2) & 0xffffff);
        // Cell (0, 1) moves right at full scale: red.
        assertEquals(0x8c0000, picture.getRGB(18, 2) & 0xffffff);
        // Cell (0, 2) has no reading: mid grey, 55% of 128 = 70.
        assertEquals(0x464646, picture.getRGB(34, 2) & 0xffffff);
        // The arrow of cell (1, 1) would start at (24, 24), but it has no motion: no arrow.
        assertEquals(0x8c8c8c, picture.getRGB(25, 24) & 0xffffff);
    }

    @Test
    void anArrowShowsTheDisplacementAtTrueLength() {
        BufferedImage black = new BufferedImage(64, 64, BufferedImage.TYPE_3BYTE_BGR);
        float[] flow = new float[2 * 16];
        // The arrows sit on cells (1, 1), (1, 3), (3, 1), (3, 3); cell (1, 1) moves 12 px right.
        flow[2 * (4 + 1)] = 12;
        // A huge scale keeps every cell nearly white, so only the arrow is dark.
        BufferedImage picture = FlowPicture.render(black, 4, 4, flow, 1000);
        // Cell (1, 1)'s centre is (24, 24); the shaft runs to (36, 24), into cell (1, 2).
        assertTrue(darkness(picture, 30, 24) > 0.4, "shaft");
        assertTrue(darkness(picture, 35, 24) > 0.4, "head");
        assertTrue(darkness(picture, 41, 24) < 0.1, "nothing beyond the tip");
        assertTrue(darkness(picture, 24, 30) < 0.1, "nothing beside the shaft");
        assertTrue(darkness(picture, 56, 24) < 0.1, "no arrow on a still cell");
    }

    @Test
    void rejectsAGridThatDoesNotFitTheFrame() {
        BufferedImage frame = new BufferedImage(50, 32, BufferedImage.TYPE_3BYTE_BGR);
        assertThrows(IllegalArgumentException.class, () -> FlowPicture.render(frame, 2, 3, new float[12], 1));
        BufferedImage fits = new BufferedImage(48, 32, BufferedImage.TYPE_3BYTE_BGR);
        assertThrows(IllegalArgumentException.class, () -> FlowPicture.render(fits, 2, 3, new float[10], 1));
    }

    private static double hue(int rgb) {
        return Color.RGBtoHSB(rgb >> 16 & 0xff, rgb >> 8 & 0xff, rgb & 0xff, null)[0];
    }

    /**
     * How much darker than a near-white cell over black (brightness 140) the darkest pixel of
     * the 3 x 3 around (x, y) is: 0 untouched, 1 black. (Antialiased lines spread over rows.)
     */
    private static double darkness(BufferedImage picture, int x, int y) {
        double darkest = 0;
        for (int dy = -1; dy <= 1; dy++) {
            for (int dx = -1; dx <= 1; dx++) {
                int rgb = picture.getRGB(x + dx, y + dy);
                double value = ((rgb >> 16 & 0xff) + (rgb >> 8 & 0xff) + (rgb & 0xff)) / 3.0;
                darkest = Math.max(darkest, 1 - value / 140.0);
            }
        }
        return darkest;
    }
}
