package org.fastvmt.reference;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.function.ToDoubleFunction;

import org.fastvmt.motion.AmfParams;
import org.fastvmt.motion.FramePairs;
import org.fastvmt.reference.MotionReference.Gradients;
import org.fastvmt.reference.MotionReference.Shape;
import org.fastvmt.reference.MotionReference.WindowedResult;
import org.junit.jupiter.api.Test;

/**
 * The reference against the math itself: every backward against central finite differences of
 * its forward (double, every coordinate of small random shapes), and forwards against cases
 * whose answer is known by hand.
 */
class MotionReferenceTest {

    /** Central differences with h = 1e-5 in double are exact to about 1e-9 on these O(1) inputs. */
    private static final double FD_STEP = 1e-5;
    private static final Tolerance FD = new Tolerance(1e-7, 1e-6);
    /** Hand-computed values are exact up to double rounding (and e^-100 for planted matches). */
    private static final Tolerance EXACT = new Tolerance(1e-9, 1e-12);

    // ------------------------------------------------------------ gradients by finite differences

    @Test
    void fullBackwardMatchesFiniteDifferences() {
        SplittableRandom random = new SplittableRandom(11);
        Shape s = new Shape(3, 3, 4, 6);
        AmfParams params = new AmfParams(2, 1.3f, 1, 1, 1);
        int[] pairs = {2, 0, 0, 0, 1, 2, 0, 1, 2, 2};
        double[] q = TestData.toDouble(TestData.normal(random, s.elementCount(), 1));
        double[] k = TestData.toDouble(TestData.normal(random, s.elementCount(), 1));
        double[] dDelta = TestData.toDouble(TestData.normal(random, pairs.length * s.tokensPerFrame(), 1));

        Gradients grads = MotionReference.fullBackward(q, k, s, params, pairs, dDelta);

        assertGradient("dq", grads.dq(), q,
                x -> FiniteDifferences.weightedSum(dDelta, MotionReference.fullForward(x, k, s, params, pairs)));
        assertGradient("dk", grads.dk(), k,
                x -> FiniteDifferences.weightedSum(dDelta, MotionReference.fullForward(q, x, s, params, pairs)));
    }

    @Test
    void windowedBackwardMatchesFiniteDifferencesInFixedWindows() {
        SplittableRandom random = new SplittableRandom(12);
        Shape s = new Shape(3, 5, 6, 4);
        AmfParams params = new AmfParams(2, 0.8f, 2, 4, 3);
        int[] pairs = {0, 1, 1, 1, 2, 0, 0, 2, 1, 2};
        double[] q = TestData.toDouble(TestData.normal(random, s.elementCount(), 1));
        double[] k = TestData.toDouble(TestData.normal(random, s.elementCount(), 1));
        double[] dDelta = TestData.toDouble(TestData.normal(random, pairs.length * s.tokensPerFrame(), 1));
        int[] origins = MotionReference.windowedForward(q, k, s, params, pairs).origins();

        Gradients grads = MotionReference.windowedBackward(q, k, s, params, pairs, origins, dDelta);

        assertGradient("dq", grads.dq(), q, x -> FiniteDifferences.weightedSum(dDelta,
                MotionReference.windowedForward(x, k, s, params, pairs, origins)));
        assertGradient("dk", grads.dk(), k, x -> FiniteDifferences.weightedSum(dDelta,
                MotionReference.windowedForward(q, x, s, params, pairs, origins)));
    }

    @Test
    void windowLossGradientMatchesFiniteDifferences() {
        SplittableRandom random = new SplittableRandom(13);
        int tokens = 7;
        double[] weights = {1.0, 0.9, 0.8};
        double[] ref = TestData.toDouble(TestData.normal(random, 3 * tokens * 2, 2));
        double[] gen = TestData.toDouble(TestData.normal(random, 3 * tokens * 2, 2));
        double lossGrad = 1.7;

        double[] grad = MotionReference.windowLossGradient(ref, gen, weights, tokens, lossGrad);

        assertGradient("dDeltaGen", grad, gen, x -> lossGrad * MotionReference.windowLoss(ref, x, weights, tokens));
    }

    @Test
    void trackingLossGradientMatchesFiniteDifferences() {
        SplittableRandom random = new SplittableRandom(14);
        Shape s = new Shape(4, 5, 6, 3);
        AmfParams params = new AmfParams(1, 1f, 2, 3, 3);
        int[] pairs = FramePairs.forward(4, 3).flat();
        double[] q = TestData.toDouble(TestData.normal(random, s.elementCount(), 1));
        double[] k = TestData.toDouble(TestData.normal(random, s.elementCount(), 1));
        int[] origins = MotionReference.windowedForward(q, k, s, params, pairs).origins();
        double lossGrad = 0.6;

        double[] dk = MotionReference.trackingLossGradient(k, s, params, pairs, origins, lossGrad);

        assertGradient("dk", dk, k, x -> lossGrad * MotionReference.trackingLoss(x, s, params, pairs, origins));
    }

    private static void assertGradient(String what, double[] analytic, double[] at, ToDoubleFunction<double[]> f) {
        double[] numeric = new double[at.length];
        for (int n = 0; n < at.length; n++) {
            numeric[n] = FiniteDifferences.derivative(f, at, n, FD_STEP);
        }
        assertTrue(Arrays.stream(numeric).anyMatch(v -> Math.abs(v) > 1e-3), what + " is not identically zero");
        FD.assertClose(what + " against central differences", numeric, analytic);
    }

    // ------------------------------------------------------------------------- hand-checked AMF

    @Test
    void oneByOneFramesHaveNoMotion() {
        SplittableRandom random = new SplittableRandom(21);
        Shape s = new Shape(3, 1, 1, 4);
        AmfParams params = new AmfParams(2, 1f, 1, 1, 3);
        int[] pairs = FramePairs.all(3).flat();
        double[] q = TestData.toDouble(TestData.normal(random, s.elementCount(), 1));
        double[] k = TestData.toDouble(TestData.normal(random, s.elementCount(), 1));

        double[] zeros = new double[pairs.length];
        EXACT.assertClose("full Δ", zeros, MotionReference.fullForward(q, k, s, params, pairs));
        WindowedResult windowed = MotionReference.windowedForward(q, k, s, params, pairs);
        EXACT.assertClose("windowed Δ", zeros, windowed.delta());
        assertArrayEquals(new int[pairs.length], windowed.origins());
    }

    /**
     * One-hot tokens: Q_0[p] = e_p, K_1[q] = e_{(q − offset) mod frame}, so the only key whose
     * score is not 0 is q = p + offset; at temperature 2000 its probability is 1 − e^-100.
     */
    private static double[][] plantedOneHot(Shape s, int offsetRow, int offsetCol) {
        double[] q = new double[s.elementCount()];
        double[] k = new double[s.elementCount()];
        for (int r = 0; r < s.height(); r++) {
            for (int c = 0; c < s.width(); c++) {
                q[s.token(0, r, c) + r * s.width() + c] = 1;
                int sourceRow = Math.floorMod(r - offsetRow, s.height());
                int sourceCol = Math.floorMod(c - offsetCol, s.width());
                k[s.token(1, r, c) + sourceRow * s.width() + sourceCol] = 1;
            }
        }
        return new double[][] {q, k};
    }

    @Test
    void sharpSoftmaxFindsThePlantedMatch() {
        Shape s = new Shape(2, 7, 7, 49);
        double[][] qk = plantedOneHot(s, 1, 2);
        AmfParams params = new AmfParams(7, 2000f, 3, 3, 5);
        int[] pairs = {0, 1};

        double[] delta = MotionReference.fullForward(qk[0], qk[1], s, params, pairs);

        double[] expected = new double[delta.length];
        for (int r = 0; r < s.height(); r++) {
            for (int c = 0; c < s.width(); c++) {
                // The match of (r, c) is ((r + 1) mod 7, (c + 2) mod 7).
                expected[2 * (r * s.width() + c)] = (r + 1) % 7 - r;
                expected[2 * (r * s.width() + c) + 1] = (c + 2) % 7 - c;
            }
        }
        EXACT.assertClose("Δ", expected, delta);
    }

    @Test
    void windowsAreCentredOnTheMatchOfTheTileCentreAndClampedInsideTheFrame() {
        // 7x7 frames, 3x3 tiles: tile rows [0,3) [3,6) [6,7) have centres 1, 4, 6 (the last tile is
        // partial); likewise the columns. Matches are at +(1, 2) mod 7, window 5, so
        //   rows: centre 1 -> 2 -> row0 0;  4 -> 5 -> clamp(3) = 2;  6 -> 0 -> clamp(-2) = 0
        //   cols: centre 1 -> 3 -> col0 1;  4 -> 6 -> clamp(4) = 2;  6 -> 1 -> clamp(-1) = 0
        Shape s = new Shape(2, 7, 7, 49);
        double[][] qk = plantedOneHot(s, 1, 2);
        AmfParams params = new AmfParams(7, 2000f, 3, 3, 5);
        int[] pairs = {0, 1, 1, 1};

        WindowedResult result = MotionReference.windowedForward(qk[0], qk[1], s, params, pairs);

        int[] rowStart = {0, 2, 0};
        int[] colStart = {1, 2, 0};
        int[] matchRow = {2, 5, 0};
        int[] matchCol = {3, 6, 1};
        int[] expectedOrigins = new int[2 * 2 * 9];
        double[] expectedCentres = new double[expectedOrigins.length];
        Arrays.fill(expectedCentres, 18, 36, Double.NaN);
        for (int tr = 0; tr < 3; tr++) {
            for (int tc = 0; tc < 3; tc++) {
                expectedOrigins[2 * (tr * 3 + tc)] = rowStart[tr];
                expectedOrigins[2 * (tr * 3 + tc) + 1] = colStart[tc];
                expectedCentres[2 * (tr * 3 + tc)] = matchRow[tr];
                expectedCentres[2 * (tr * 3 + tc) + 1] = matchCol[tc];
            }
        }
        assertArrayEquals(expectedOrigins, result.origins(), "origins (pair (1, 1) has the whole frame: 0, 0)");
        for (int n = 0; n < expectedCentres.length; n++) {
            if (Double.isNaN(expectedCentres[n])) {
                assertTrue(Double.isNaN(result.centreExpected()[n]), "pair (1, 1) has no pass 1");
            } else {
                EXACT.assertClose("pass-1 expected position " + n, expectedCentres[n], result.centreExpected()[n]);
            }
        }
        // Pair (1, 1) is full in-frame attention, and Q_1 = 0 makes its scores uniform, so every
        // query's expected position is the frame centre (3, 3).
        for (int r = 0; r < 7; r++) {
            for (int c = 0; c < 7; c++) {
                int out = 2 * (49 + r * 7 + c);
                EXACT.assertClose("self pair d_row", 3 - r, result.delta()[out]);
                EXACT.assertClose("self pair d_col", 3 - c, result.delta()[out + 1]);
            }
        }
        // A query whose match lies in its tile's window sees it: query (3, 3) is in tile (1, 1),
        // window rows [2, 7) cols [2, 7), match (4, 5).
        EXACT.assertClose("windowed d_row of (3, 3)", 1, result.delta()[2 * (3 * 7 + 3)]);
        EXACT.assertClose("windowed d_col of (3, 3)", 2, result.delta()[2 * (3 * 7 + 3) + 1]);
    }

    @Test
    void uniformScoresPutTheExpectedPositionAtTheCentre() {
        SplittableRandom random = new SplittableRandom(22);
        Shape s = new Shape(2, 5, 8, 6);
        AmfParams params = new AmfParams(3, 1f, 2, 3, 3);
        double[] q = TestData.toDouble(TestData.normal(random, s.elementCount(), 1));
        double[] k = new double[s.elementCount()];
        double[] shared = TestData.toDouble(TestData.normal(random, s.channels(), 1));
        for (int token = 0; token < s.frames() * s.tokensPerFrame(); token++) {
            System.arraycopy(shared, 0, k, token * s.channels(), s.channels());
        }
        int[] pairs = {0, 1, 1, 0};

        double[] full = MotionReference.fullForward(q, k, s, params, pairs);
        // Windows of 3x3 at explicit origins: the expected position is the window's centre.
        int[] origins = new int[2 * 2 * 3 * 3];
        for (int t = 0; t < origins.length / 2; t++) {
            origins[2 * t] = t % 3;
            origins[2 * t + 1] = t % 6;
        }
        double[] windowed = MotionReference.windowedForward(q, k, s, params, pairs, origins);

        for (int p = 0; p < 2; p++) {
            for (int r = 0; r < 5; r++) {
                for (int c = 0; c < 8; c++) {
                    int out = 2 * ((p * 5 + r) * 8 + c);
                    EXACT.assertClose("full d_row", 2.0 - r, full[out]);
                    EXACT.assertClose("full d_col", 3.5 - c, full[out + 1]);
                    int t = 2 * ((p * 3 + r / 2) * 3 + c / 3);
                    EXACT.assertClose("windowed d_row", origins[t] + 1 - r, windowed[out]);
                    EXACT.assertClose("windowed d_col", origins[t + 1] + 1 - c, windowed[out + 1]);
                }
            }
        }
    }

    @Test
    void aWindowWiderThanTheFrameIsTheWholeFrame() {
        SplittableRandom random = new SplittableRandom(23);
        Shape s = new Shape(3, 3, 4, 4);
        AmfParams params = new AmfParams(2, 1f, 2, 3, 5);
        int[] pairs = FramePairs.forward(3, 3).flat();
        double[] q = TestData.toDouble(TestData.normal(random, s.elementCount(), 1));
        double[] k = TestData.toDouble(TestData.normal(random, s.elementCount(), 1));

        WindowedResult windowed = MotionReference.windowedForward(q, k, s, params, pairs);

        assertArrayEquals(new int[windowed.origins().length], windowed.origins());
        EXACT.assertClose("Δ", MotionReference.fullForward(q, k, s, params, pairs), windowed.delta());
    }

    @Test
    void windowStartRoundsHalfUpAndClamps() {
        assertEquals(2, MotionReference.windowStart(3.5, 10, 5), "floor(3.5 + 0.5) = 4, minus 2");
        assertEquals(1, MotionReference.windowStart(3.4999, 10, 5), "floor(3.9999) = 3, minus 2");
        assertEquals(0, MotionReference.windowStart(-0.3, 10, 5), "clamped at 0");
        assertEquals(5, MotionReference.windowStart(9.2, 10, 5), "clamped at 10 - 5");
        assertEquals(0, MotionReference.windowStart(2.7, 3, 5), "a 3-token axis uses the whole axis");
        assertEquals(7, MotionReference.tileCentre(2, 3, 8), "tile [6, 8) of a partial border tile: 6 + 2/2");
        assertEquals(4, MotionReference.tileCentre(1, 3, 8), "tile [3, 6): 3 + 3/2");
    }

    // ---------------------------------------------------------------------------- hand-checked losses

    @Test
    void windowLossOfKnownDeltas() {
        double[] ref = {1, 2, 3, 4};
        double[] gen = {0, 0, 3, 5};
        double[] weights = {1, 0.5};
        // (1·(1² + 2²) + 0.5·(0² + 1²)) / 2 = 2.75
        assertEquals(2.75, MotionReference.windowLoss(ref, gen, weights, 1), 1e-15);
        // lossGrad · (−2/2) · w · (ref − gen)
        assertArrayEquals(new double[] {-3, -6, 0, 1.5},
                MotionReference.windowLossGradient(ref, gen, weights, 1, 3), 1e-15);
    }

    @Test
    void trackingLossOfIdenticalWindowsIsZero() {
        SplittableRandom random = new SplittableRandom(31);
        Shape s = new Shape(4, 4, 5, 3);
        AmfParams params = new AmfParams(1, 1f, 2, 2, 3);
        double[] frame = TestData.toDouble(TestData.normal(random, s.tokensPerFrame() * s.channels(), 1));
        double[] k = new double[s.elementCount()];
        for (int f = 0; f < s.frames(); f++) {
            System.arraycopy(frame, 0, k, f * frame.length, frame.length);
        }
        int[] pairs = FramePairs.forward(4, 3).flat();
        int[] origins = new int[pairs.length / 2 * 2 * 3 * 2];
        for (int n = 0; n < origins.length; n += 2) {
            origins[n] = 1;
            origins[n + 1] = 2;
        }

        assertEquals(0.0, MotionReference.trackingLoss(k, s, params, pairs, origins), 0.0);
        assertArrayEquals(new double[k.length], MotionReference.trackingLossGradient(k, s, params, pairs, origins, 1),
                0.0);
    }

    @Test
    void trackingLossOfKeysThatStepByAConstantVector() {
        // K_j = j·v at every token: m(i, j+1, t) − m(i, j, t) = v for every couple, so L = ||v|| = 5.
        // forward(4, 3) gives couples only for i = 0 ((0,1),(0,2)) and i = 1 ((1,2),(1,3)).
        Shape s = new Shape(4, 4, 5, 2);
        AmfParams params = new AmfParams(1, 1f, 2, 2, 3);
        double[] k = new double[s.elementCount()];
        for (int f = 0; f < 4; f++) {
            for (int token = 0; token < s.tokensPerFrame(); token++) {
                k[(f * s.tokensPerFrame() + token) * 2] = 3.0 * f;
                k[(f * s.tokensPerFrame() + token) * 2 + 1] = 4.0 * f;
            }
        }
        int[] pairs = FramePairs.forward(4, 3).flat();
        int[] origins = new int[pairs.length / 2 * 2 * 3 * 2];

        assertEquals(5.0, MotionReference.trackingLoss(k, s, params, pairs, origins), 1e-12);
        assertEquals(0.0, MotionReference.trackingLoss(k, s, params, FramePairs.consecutive(4).flat(),
                new int[3 * 6 * 2]), 0.0, "consecutive pairs have no couples");
    }

    // ------------------------------------------------------------------------------------ AdamW

    @Test
    void firstAdamWStepMovesByTheLearningRate() {
        // Step 1: m̂ = g, v̂ = g², so param ← param·(1 − lr·wd) − lr·g / (|g| + eps).
        MotionReference.AdamWState state = MotionReference.AdamWState.of(new double[] {1.0, -2.0});
        MotionReference.adamwStep(state, new double[] {0.5, -4.0}, 0.1, 0.9, 0.999, 1e-8, 0.1, 1);
        assertEquals(0.99 - 0.1 * 0.5 / (0.5 + 1e-8), state.param()[0], 1e-14);
        assertEquals(-1.98 + 0.1 * 4.0 / (4.0 + 1e-8), state.param()[1], 1e-14);
        assertArrayEquals(new double[] {0.05, -0.4}, state.expAvg(), 1e-15);
        assertArrayEquals(new double[] {0.00025, 0.016}, state.expAvgSq(), 1e-15);
    }

    @Test
    void constantGradientMovesByTheLearningRateEveryStep() {
        // With a constant g the bias corrections make m̂ = g and v̂ = g² at every step.
        MotionReference.AdamWState state = MotionReference.AdamWState.of(new double[] {0.25});
        for (int step = 1; step <= 6; step++) {
            MotionReference.adamwStep(state, new double[] {-0.3}, 0.01, 0.9, 0.999, 1e-8, 0, step);
        }
        assertEquals(0.25 + 6 * 0.01 * 0.3 / (0.3 + 1e-8), state.param()[0], 1e-13);
    }

    @Test
    void countsNaNAndInfinities() {
        float[] x = {0, Float.NaN, 1, Float.POSITIVE_INFINITY, -0f, Float.NEGATIVE_INFINITY, Float.MAX_VALUE};
        assertEquals(3, MotionReference.countNonFinite(x));
    }
}
