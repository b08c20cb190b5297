package org.fastvmt.reference;

import java.util.SplittableRandom;

import org.fastvmt.tensor.BFloat16;

/** Seeded test inputs and conversions between the float arrays of tensors and the reference's doubles. */
public final class TestData {

    private TestData() {
    }

    /** {@code n} normal samples of standard deviation {@code scale}, as floats. */
    public static float[] normal(SplittableRandom random, int n, double scale) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) (scale * random.nextGaussian());
        }
        return x;
    }

    /**
     * Q and K [F, H, W, C] with planted motion: frame f is a fixed random field moved by
     * f·(shiftRow, shiftCol) (wrapping around), plus independent noise of {@code noise}. Query token
     * p of frame i then matches key p + (j − i)·shift of frame j, clearly when the noise is small.
     * Returns {q, k}.
     */
    public static float[][] plantedMotion(SplittableRandom random, MotionReference.Shape s, int shiftRow,
            int shiftCol, double noise) {
        int h = s.height();
        int w = s.width();
        int c = s.channels();
        float[] field = normal(random, h * w * c, 1.0);
        float[][] qk = new float[2][s.elementCount()];
        for (float[] tensor : qk) {
            for (int f = 0; f < s.frames(); f++) {
                for (int r = 0; r < h; r++) {
                    for (int col = 0; col < w; col++) {
                        int sourceRow = Math.floorMod(r - f * shiftRow, h);
                        int sourceCol = Math.floorMod(col - f * shiftCol, w);
                        for (int ch = 0; ch < c; ch++) {
                            tensor[s.token(f, r, col) + ch] = (float) (field[(sourceRow * w + sourceCol) * c + ch]
                                    + noise * random.nextGaussian());
                        }
                    }
                }
            }
        }
        return qk;
    }

    public static double[] toDouble(float[] x) {
        double[] out = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            out[i] = x[i];
        }
        return out;
    }

    /** The nearest bf16 value of each element (what a BF16 tensor of {@code x} holds). */
    public static float[] roundToBf16(float[] x) {
        float[] out = new float[x.length];
        for (int i = 0; i < x.length; i++) {
            out[i] = BFloat16.round(x[i]);
        }
        return out;
    }
}
