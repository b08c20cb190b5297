package org.fastvmt.tensor;

/** bfloat16 ↔ float: the upper 16 bits of an IEEE float, rounded to nearest even. */
public final class BFloat16 {

    private BFloat16() {
    }

    /** Rounds to the nearest bf16 (ties to even); NaN stays a quiet NaN. */
    public static short fromFloat(float value) {
        int bits = Float.floatToRawIntBits(value);
        if (Float.isNaN(value)) {
            return (short) ((bits >>> 16) | 0x40);
        }
        int roundingBias = 0x7FFF + ((bits >>> 16) & 1);
        return (short) ((bits + roundingBias) >>> 16);
    }

    public static float toFloat(short value) {
        return Float.intBitsToFloat((value & 0xFFFF) << 16);
    }

    /** The float nearest to {@code value} that bf16 can hold. */
    public static float round(float value) {
        return toFloat(fromFloat(value));
    }
}
