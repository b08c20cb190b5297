package org.fastvmt.io;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class ClipShapeTest {

    @Test
    void theDefaultIsWan21sSize() {
        assertEquals(new ClipShape(832, 480, 81), ClipShape.DEFAULT);
        assertEquals(21, ClipShape.DEFAULT.latentFrames());
        assertEquals(new ClipShape(832, 480, 17), ClipShape.withFrames(17));
    }

    @Test
    void sizesMustBeMultiplesOf16() {
        IllegalArgumentException width = assertThrows(IllegalArgumentException.class, () -> new ClipShape(830, 480, 81));
        assertTrue(width.getMessage().startsWith("width must be a positive multiple of 16"), width.getMessage());
        assertTrue(width.getMessage().contains("got 830; 816 or 832 would do"), width.getMessage());
        IllegalArgumentException height = assertThrows(IllegalArgumentException.class, () -> new ClipShape(832, 0, 81));
        assertTrue(height.getMessage().startsWith("height must be a positive multiple of 16"), height.getMessage());
        assertThrows(IllegalArgumentException.class, () -> new ClipShape(8, 480, 81));
    }

    @Test
    void framesMustBe4kPlus1() {
        for (int frames : new int[] {1, 5, 9, 81, 121}) {
            assertEquals(frames, new ClipShape(16, 16, frames).frames());
        }
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new ClipShape(832, 480, 80));
        assertTrue(e.getMessage().startsWith("frames must be 4k+1"), e.getMessage());
        assertTrue(e.getMessage().contains("got 80 (the nearest smaller valid count is 77)"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> new ClipShape(832, 480, 0));
        assertThrows(IllegalArgumentException.class, () -> new ClipShape(832, 480, -3));
    }

    @Test
    void theLargestValidFrameCountFitsWhatIsThere() {
        assertEquals(0, ClipShape.largestValidFrames(0));
        assertEquals(1, ClipShape.largestValidFrames(1));
        assertEquals(1, ClipShape.largestValidFrames(4));
        assertEquals(5, ClipShape.largestValidFrames(5));
        assertEquals(77, ClipShape.largestValidFrames(80));
        assertEquals(81, ClipShape.largestValidFrames(81));
    }
}
