package org.fastvmt.tensor;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;

import org.junit.jupiter.api.Test;

/**
 * BFloat16 against an independent round-to-nearest-even: the two bf16 neighbours of x are
 * compared by distance in double, and a tie goes to the even mantissa.
 */
class BFloat16Test {

    /** The bf16 nearest to a finite x, ties to even, by comparing distances to both neighbours. */
    private static int nearestBf16Bits(float x) {
        int bits = Float.floatToRawIntBits(x);
        int below = bits >>> 16; // truncation: the neighbour of smaller magnitude
        int above = below + 1; // the neighbour of larger magnitude (may be ±infinity)
        double distanceBelow = Math.abs((double) x - Float.intBitsToFloat(below << 16));
        double distanceAbove = Math.abs((double) Float.intBitsToFloat(above << 16) - x);
        if (distanceBelow != distanceAbove) {
            return distanceBelow < distanceAbove ? below : above;
        }
        return (below & 1) == 0 ? below : above;
    }

    private static void assertRounds(float x, float expected) {
        assertEquals(Float.floatToRawIntBits(expected), Float.floatToRawIntBits(BFloat16.round(x)),
                x + " should round to " + expected + ", got " + BFloat16.round(x));
    }

    @Test
    void randomFloatsRoundToTheNearestBf16() {
        SplittableRandom random = new SplittableRandom(1);
        for (int n = 0; n < 200_000; n++) {
            float x = Float.intBitsToFloat(random.nextInt());
            if (!Float.isFinite(x) || Math.abs(x) >= Float.intBitsToFloat(0x7F7F8000)) {
                continue; // rounding up from the top binade overflows; checked below
            }
            assertEquals(nearestBf16Bits(x), BFloat16.fromFloat(x) & 0xFFFF, "bf16 of " + x);
        }
    }

    @Test
    void tiesGoToTheEvenMantissa() {
        float ulp = 0x1p-7f; // bf16 keeps 7 mantissa bits: its ulp at 1 is 2^-7
        assertRounds(1f + ulp / 2, 1f); // between 1 (even) and 1 + ulp (odd)
        assertRounds(1f + 3 * ulp / 2, 1f + 2 * ulp); // between 1 + ulp (odd) and 1 + 2ulp (even)
        assertRounds(-(1f + ulp / 2), -1f);
        assertRounds(1f + ulp / 2 + 0x1p-23f, 1f + ulp); // just above the tie
        assertRounds(1f + ulp / 2 - 0x1p-23f, 1f); // just below
    }

    @Test
    void specialValuesSurvive() {
        assertTrue(Float.isNaN(BFloat16.round(Float.NaN)));
        // A NaN whose payload sits only in the low 16 bits must not truncate to infinity.
        assertTrue(Float.isNaN(BFloat16.round(Float.intBitsToFloat(0x7F800001))));
        assertTrue(Float.isNaN(BFloat16.round(Float.intBitsToFloat(0xFF800001))));
        assertRounds(Float.POSITIVE_INFINITY, Float.POSITIVE_INFINITY);
        assertRounds(Float.NEGATIVE_INFINITY, Float.NEGATIVE_INFINITY);
        assertRounds(-0f, -0f);
        assertRounds(0f, 0f);
        assertRounds(Float.MIN_VALUE, 0f); // the smallest subnormal is far below half a bf16 ulp
        assertRounds(Float.intBitsToFloat(0x00018000), Float.intBitsToFloat(0x00020000)); // subnormal tie to even
        assertRounds(Float.MAX_VALUE, Float.POSITIVE_INFINITY); // rounds past the largest bf16
        assertRounds(-Float.MAX_VALUE, Float.NEGATIVE_INFINITY);
        assertRounds(Float.intBitsToFloat(0x7F7F7FFF), Float.intBitsToFloat(0x7F7F0000)); // stays the largest bf16
    }

    @Test
    void toFloatWidensExactly() {
        for (int bits = 0; bits < 0x10000; bits++) {
            float widened = BFloat16.toFloat((short) bits);
            assertEquals(bits << 16, Float.floatToRawIntBits(widened));
            if (Float.isFinite(widened)) {
                assertEquals(bits, BFloat16.fromFloat(widened) & 0xFFFF, "a bf16 value rounds to itself");
            }
        }
    }
}
