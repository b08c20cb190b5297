package org.fastvmt.reference;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.function.ToDoubleFunction;

import org.fastvmt.reference.DitOpsReference.AttentionGradients;
import org.fastvmt.reference.DitOpsReference.AttentionShape;
import org.fastvmt.reference.DitOpsReference.LinearGradients;
import org.fastvmt.reference.DitOpsReference.ModulateGradients;
import org.fastvmt.reference.DitOpsReference.NormGradients;
import org.fastvmt.reference.DitOpsReference.PatchShape;
import org.fastvmt.reference.DitOpsReference.ResidualGradients;
import org.fastvmt.reference.DitOpsReference.RopeShape;
import org.fastvmt.tensor.PatchLayout;
import org.junit.jupiter.api.Test;

/**
 * {@link DitOpsReference} against the math itself: every backward against central finite
 * differences of its forward (double, along random directions, on small random shapes with odd
 * sizes), and forwards against cases whose answer is known by hand.
 */
class DitOpsReferenceTest {

    /** Central differences with h = 1e-5 in double are exact to about 1e-9 on these O(1) inputs. */
    private static final double FD_STEP = 1e-5;
    private static final Tolerance FD = new Tolerance(1e-7, 1e-6);
    private static final int DIRECTIONS = 4;
    /** Hand-computed values are exact up to double rounding. */
    private static final Tolerance EXACT = new Tolerance(1e-12, 1e-12);

    // ------------------------------------------------------------ gradients by finite differences

    @Test
    void linearBackwardMatchesFiniteDifferences() {
        SplittableRandom random = new SplittableRandom(31);
        int rows = 3;
        int in = 5;
        int out = 4;
        double[] x = normal(random, rows * in, 1);
        double[] w = normal(random, out * in, 1);
        double[] b = normal(random, out, 1);
        double[] dy = normal(random, rows * out, 1);

        LinearGradients g = DitOpsReference.linearBackward(x, w, true, dy, rows, in, out);

        assertGradient("dx", g.dx(), x, v -> loss(dy, DitOpsReference.linear(v, w, b, rows, in, out)), random);
        assertGradient("dweight", g.dweight(), w, v -> loss(dy, DitOpsReference.linear(x, v, b, rows, in, out)),
                random);
        assertGradient("dbias", g.dbias(), b, v -> loss(dy, DitOpsReference.linear(x, w, v, rows, in, out)), random);
        LinearGradients noBias = DitOpsReference.linearBackward(x, w, false, dy, rows, in, out);
        assertTrue(noBias.dbias() == null, "no bias, no dbias");
        EXACT.assertClose("dx does not depend on the bias", g.dx(), noBias.dx());
    }

    @Test
    void biasAddBackwardMatchesFiniteDifferences() {
        SplittableRandom random = new SplittableRandom(32);
        double[] x = normal(random, 4 * 3, 1);
        double[] b = normal(random, 3, 1);
        double[] dy = normal(random, 4 * 3, 1);
        assertGradient("dbias", DitOpsReference.biasAddBackward(dy, 4, 3), b,
                v -> loss(dy, DitOpsReference.biasAdd(x, v, 4, 3)), random);
    }

    @Test
    void layerNormBackwardMatchesFiniteDifferences() {
        SplittableRandom random = new SplittableRandom(33);
        int rows = 3;
        int cols = 7;
        double eps = 1e-2; // large enough that a misplaced eps shows
        double[] x = normal(random, rows * cols, 1.5);
        double[] gamma = normal(random, cols, 1);
        double[] beta = normal(random, cols, 1);
        double[] dy = normal(random, rows * cols, 1);

        NormGradients affine = DitOpsReference.layerNormBackward(x, gamma, dy, rows, cols, eps);
        assertGradient("dx", affine.dx(), x,
                v -> loss(dy, DitOpsReference.layerNorm(v, gamma, beta, rows, cols, eps)), random);
        assertGradient("dgamma", affine.dgamma(), gamma,
                v -> loss(dy, DitOpsReference.layerNorm(x, v, beta, rows, cols, eps)), random);
        assertGradient("dbeta", affine.dbeta(), beta,
                v -> loss(dy, DitOpsReference.layerNorm(x, gamma, v, rows, cols, eps)), random);

        NormGradients plain = DitOpsReference.layerNormBackward(x, null, dy, rows, cols, eps);
        assertTrue(plain.dgamma() == null && plain.dbeta() == null, "no affine, no parameter gradients");
        assertGradient("dx without affine", plain.dx(), x,
                v -> loss(dy, DitOpsReference.layerNorm(v, null, null, rows, cols, eps)), random);
    }

    @Test
    void rmsNormBackwardMatchesFiniteDifferences() {
        SplittableRandom random = new SplittableRandom(34);
        int rows = 4;
        int cols = 5;
        double eps = 1e-2;
        double[] x = normal(random, rows * cols, 1);
        double[] weight = normal(random, cols, 1);
        double[] dy = normal(random, rows * cols, 1);

        NormGradients weighted = DitOpsReference.rmsNormBackward(x, weight, dy, rows, cols, eps);
        assertGradient("dx", weighted.dx(), x, v -> loss(dy, DitOpsReference.rmsNorm(v, weight, rows, cols, eps)),
                random);
        assertGradient("dweight", weighted.dgamma(), weight,
                v -> loss(dy, DitOpsReference.rmsNorm(x, v, rows, cols, eps)), random);

        NormGradients plain = DitOpsReference.rmsNormBackward(x, null, dy, rows, cols, eps);
        assertTrue(plain.dgamma() == null, "no weight, no dweight");
        assertGradient("dx without weight", plain.dx(), x,
                v -> loss(dy, DitOpsReference.rmsNorm(v, null, rows, cols, eps)), random);
    }

    @Test
    void modulateBackwardMatchesFiniteDifferences() {
        SplittableRandom random = new SplittableRandom(35);
        int rows = 3;
        int cols = 6;
        double[] x = normal(random, rows * cols, 1);
        double[] shift = normal(random, cols, 1);
        double[] scale = normal(random, cols, 1);
        double[] dy = normal(random, rows * cols, 1);

        ModulateGradients g = DitOpsReference.modulateBackward(x, scale, dy, rows, cols);

        assertGradient("dx", g.dx(), x, v -> loss(dy, DitOpsReference.modulate(v, shift, scale, rows, cols)), random);
        assertGradient("dshift", g.dshift(), shift,
                v -> loss(dy, DitOpsReference.modulate(x, v, scale, rows, cols)), random);
        assertGradient("dscale", g.dscale(), scale,
                v -> loss(dy, DitOpsReference.modulate(x, shift, v, rows, cols)), random);
    }

    @Test
    void gatedResidualBackwardMatchesFiniteDifferences() {
        SplittableRandom random = new SplittableRandom(36);
        int rows = 2;
        int cols = 7;
        double[] x = normal(random, rows * cols, 1);
        double[] y = normal(random, rows * cols, 1);
        double[] gate = normal(random, cols, 1);
        double[] dout = normal(random, rows * cols, 1);

        ResidualGradients g = DitOpsReference.gatedResidualBackward(y, gate, dout, rows, cols);
        assertGradient("dx", g.dx(), x, v -> loss(dout, DitOpsReference.gatedResidual(v, y, gate, rows, cols)),
                random);
        assertGradient("dy", g.dy(), y, v -> loss(dout, DitOpsReference.gatedResidual(x, v, gate, rows, cols)),
                random);
        assertGradient("dgate", g.dgate(), gate,
                v -> loss(dout, DitOpsReference.gatedResidual(x, y, v, rows, cols)), random);

        ResidualGradients ungated = DitOpsReference.gatedResidualBackward(y, null, dout, rows, cols);
        assertTrue(ungated.dgate() == null, "no gate, no dgate");
        assertGradient("dy without gate", ungated.dy(), y,
                v -> loss(dout, DitOpsReference.gatedResidual(x, v, null, rows, cols)), random);
    }

    @Test
    void addSendsItsGradientToBothInputs() {
        SplittableRandom random = new SplittableRandom(37);
        double[] a = normal(random, 9, 1);
        double[] b = normal(random, 9, 1);
        double[] dout = normal(random, 9, 1);
        assertGradient("da", dout, a, v -> loss(dout, DitOpsReference.add(v, b)), random);
        assertGradient("db", dout, b, v -> loss(dout, DitOpsReference.add(a, v)), random);
    }

    @Test
    void activationBackwardsMatchFiniteDifferences() {
        SplittableRandom random = new SplittableRandom(38);
        double[] x = normal(random, 40, 3); // both tails and the bend around 0
        double[] dy = normal(random, 40, 1);
        assertGradient("gelu dx", DitOpsReference.geluTanhBackward(x, dy), x,
                v -> loss(dy, DitOpsReference.geluTanh(v)), random);
        assertGradient("silu dx", DitOpsReference.siluBackward(x, dy), x, v -> loss(dy, DitOpsReference.silu(v)),
                random);
    }

    @Test
    void rope3dBackwardMatchesFiniteDifferences() {
        SplittableRandom random = new SplittableRandom(39);
        // head_dim 14: 7 pairs → n_r = n_c = 2, n_f = 3, so every axis has frequencies.
        for (RopeShape s : new RopeShape[] {new RopeShape(2, 3, 2, 2, 14), new RopeShape(3, 1, 2, 1, 8)}) {
            double[] x = normal(random, s.elementCount(), 1);
            double[] dy = normal(random, s.elementCount(), 1);
            assertGradient(s + " dx", DitOpsReference.rope3dBackward(dy, s, 100), x,
                    v -> loss(dy, DitOpsReference.rope3d(v, s, 100)), random);
        }
    }

    @Test
    void attentionBackwardMatchesFiniteDifferences() {
        SplittableRandom random = new SplittableRandom(40);
        AttentionShape s = new AttentionShape(3, 5, 2, 4);
        double[] q = normal(random, s.qTokens() * s.width(), 1);
        double[] k = normal(random, s.kvTokens() * s.width(), 1);
        double[] v = normal(random, s.kvTokens() * s.width(), 1);
        double[] dout = normal(random, s.qTokens() * s.width(), 1);

        AttentionGradients g = DitOpsReference.attentionBackward(q, k, v, dout, s);

        assertGradient("dq", g.dq(), q, x -> loss(dout, DitOpsReference.attention(x, k, v, s)), random);
        assertGradient("dk", g.dk(), k, x -> loss(dout, DitOpsReference.attention(q, x, v, s)), random);
        assertGradient("dv", g.dv(), v, x -> loss(dout, DitOpsReference.attention(q, k, x, s)), random);
    }

    @Test
    void timestepEmbeddingBackwardMatchesFiniteDifferences() {
        SplittableRandom random = new SplittableRandom(41);
        double[] t = {0, 0.37, 3.5, 250, 999};
        int dim = 10;
        double[] dout = normal(random, t.length * dim, 1);
        assertGradient("dt", DitOpsReference.timestepEmbeddingBackward(t, dim, dout), t,
                v -> loss(dout, DitOpsReference.timestepEmbedding(v, dim)), random);
    }

    @Test
    void patchBackwardsMatchFiniteDifferences() {
        SplittableRandom random = new SplittableRandom(42);
        PatchShape s = new PatchShape(3, 2, 4, 6, 1, 2, 3);
        for (PatchLayout layout : PatchLayout.values()) {
            double[] latent = normal(random, s.elementCount(), 1);
            double[] tokens = normal(random, s.elementCount(), 1);
            double[] dTokens = normal(random, s.elementCount(), 1);
            double[] dLatent = normal(random, s.elementCount(), 1);
            assertGradient(layout + " patchify", DitOpsReference.patchifyBackward(dTokens, s, layout), latent,
                    v -> loss(dTokens, DitOpsReference.patchify(v, s, layout)), random);
            assertGradient(layout + " unpatchify", DitOpsReference.unpatchifyBackward(dLatent, s, layout), tokens,
                    v -> loss(dLatent, DitOpsReference.unpatchify(v, s, layout)), random);
        }
    }

    // ------------------------------------------------------------------------- hand-checked forwards

    @Test
    void linearOfAHandExample() {
        // [1, 2] · [[1, 0], [3, -1], [0.5, 2]]^T + [0, 1, -1] = [1, 2, 3.5]
        double[] y = DitOpsReference.linear(new double[] {1, 2}, new double[] {1, 0, 3, -1, 0.5, 2},
                new double[] {0, 1, -1}, 1, 2, 3);
        EXACT.assertClose("y", new double[] {1, 2, 3.5}, y);
    }

    @Test
    void normsStandardiseEachRow() {
        SplittableRandom random = new SplittableRandom(51);
        int rows = 3;
        int cols = 9;
        double eps = 1e-3;
        double[] x = normal(random, rows * cols, 2);
        double[] y = DitOpsReference.layerNorm(x, null, null, rows, cols, eps);
        double[] z = DitOpsReference.rmsNorm(x, null, rows, cols, eps);
        for (int r = 0; r < rows; r++) {
            double mean = 0;
            double variance = 0;
            double xMean = 0;
            double xVariance = 0;
            double xSquare = 0;
            double zSquare = 0;
            for (int c = 0; c < cols; c++) {
                mean += y[r * cols + c] / cols;
                xMean += x[r * cols + c] / cols;
                zSquare += z[r * cols + c] * z[r * cols + c] / cols;
                xSquare += x[r * cols + c] * x[r * cols + c] / cols;
            }
            for (int c = 0; c < cols; c++) {
                variance += y[r * cols + c] * y[r * cols + c] / cols;
                xVariance += (x[r * cols + c] - xMean) * (x[r * cols + c] - xMean) / cols;
            }
            EXACT.assertClose("layerNorm row mean", 0, mean);
            EXACT.assertClose("layerNorm row variance", xVariance / (xVariance + eps), variance);
            EXACT.assertClose("rmsNorm row mean square", xSquare / (xSquare + eps), zSquare);
        }
        double[] constantRow = {4, 4, 4};
        EXACT.assertClose("a constant row normalises to beta", new double[] {1, -2, 0.5},
                DitOpsReference.layerNorm(constantRow, new double[] {7, 8, 9}, new double[] {1, -2, 0.5}, 1, 3, 1e-5));
    }

    @Test
    void activationsAtKnownPoints() {
        // gelu_tanh(1) = 0.5 (1 + tanh(sqrt(2/π) · 1.044715)); silu(1) = 1 / (1 + e^-1).
        double gelu1 = 0.5 * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * 1.044715));
        EXACT.assertClose("gelu", new double[] {0, gelu1, 0, 0},
                DitOpsReference.geluTanh(new double[] {0, 1, -0.0, -100}));
        new Tolerance(1e-7, 0).assertClose("gelu(1) ≈ 0.841192", 0.841192, gelu1);
        EXACT.assertClose("silu", new double[] {0, 1 / (1 + Math.exp(-1)), -2 / (1 + Math.exp(2))},
                DitOpsReference.silu(new double[] {0, 1, -2}));
    }

    @Test
    void rope3dSplitsWansHeadDimension() {
        double theta = 10000;
        // head_dim 128: 22 frame, 21 row, 21 column frequencies, each axis starting at θ^0.
        EXACT.assertClose("frame pair 0", 3, DitOpsReference.ropeAngle(3, 5, 7, 0, 128, theta));
        EXACT.assertClose("frame pair 21", 3 * Math.pow(theta, -42.0 / 44), DitOpsReference.ropeAngle(3, 5, 7, 21,
                128, theta));
        EXACT.assertClose("row pair 22", 5, DitOpsReference.ropeAngle(3, 5, 7, 22, 128, theta));
        EXACT.assertClose("row pair 42", 5 * Math.pow(theta, -40.0 / 42), DitOpsReference.ropeAngle(3, 5, 7, 42,
                128, theta));
        EXACT.assertClose("column pair 43", 7, DitOpsReference.ropeAngle(3, 5, 7, 43, 128, theta));
        EXACT.assertClose("column pair 63", 7 * Math.pow(theta, -40.0 / 42), DitOpsReference.ropeAngle(3, 5, 7, 63,
                128, theta));
        // head_dim 2: one pair, all of it the frame axis.
        EXACT.assertClose("head_dim 2", 4, DitOpsReference.ropeAngle(4, 9, 9, 0, 2, theta));
    }

    @Test
    void rope3dRotatesPairsAndItsBackwardUndoesIt() {
        SplittableRandom random = new SplittableRandom(52);
        RopeShape s = new RopeShape(2, 2, 3, 2, 12);
        double[] x = normal(random, s.elementCount(), 1);
        double[] y = DitOpsReference.rope3d(x, s, 10000);
        int width = s.heads() * s.headDim();
        EXACT.assertClose("token (0, 0, 0) is not moved", Arrays.copyOf(x, width), Arrays.copyOf(y, width));
        for (int n = 0; n < x.length; n += 2) {
            EXACT.assertClose("pair " + n / 2 + " keeps its length", Math.hypot(x[n], x[n + 1]),
                    Math.hypot(y[n], y[n + 1]));
        }
        EXACT.assertClose("backward of forward", x, DitOpsReference.rope3dBackward(y, s, 10000));
        // Token (f, r, c) = (0, 0, 1), head_dim 12 = 2 frame, 2 row, 2 column pairs: pair 0 (frame)
        // is not turned, the last (column m = 1 of n_c = 2) by 1 · 10000^(-2·1/4) = 0.01 rad.
        int token = 1;
        int last = token * width + s.headDim() - 2;
        double angle = 0.01;
        EXACT.assertClose("frame pair of a frame-0 token", x[token * width], y[token * width]);
        EXACT.assertClose("last column pair, re", x[last] * Math.cos(angle) - x[last + 1] * Math.sin(angle),
                y[last]);
        EXACT.assertClose("last column pair, im", x[last] * Math.sin(angle) + x[last + 1] * Math.cos(angle),
                y[last + 1]);
    }

    @Test
    void attentionOfOneKeyOrEqualKeys() {
        SplittableRandom random = new SplittableRandom(53);
        AttentionShape one = new AttentionShape(4, 1, 2, 3);
        double[] q = normal(random, 4 * 6, 1);
        double[] k = normal(random, 6, 1);
        double[] v = normal(random, 6, 1);
        double[] out = DitOpsReference.attention(q, k, v, one);
        for (int i = 0; i < 4; i++) {
            EXACT.assertClose("one key: every query gets v", v, Arrays.copyOfRange(out, i * 6, i * 6 + 6));
        }
        AttentionShape equal = new AttentionShape(2, 3, 1, 2);
        double[] sameKeys = {0.3, -1, 0.3, -1, 0.3, -1};
        double[] values = {1, 2, 3, 4, 5, 9};
        EXACT.assertClose("equal keys: the mean of v", new double[] {3, 5, 3, 5},
                DitOpsReference.attention(new double[] {1, 2, -3, 0.5}, sameKeys, values, equal));
    }

    @Test
    void timestepEmbeddingAtKnownPoints() {
        EXACT.assertClose("t = 0: cos half 1, sin half 0", new double[] {1, 1, 1, 0, 0, 0},
                DitOpsReference.timestepEmbedding(new double[] {0}, 6));
        // dim 4: w = (1, 10000^-1/2 = 0.01).
        EXACT.assertClose("t = 2, dim 4", new double[] {Math.cos(2), Math.cos(0.02), Math.sin(2), Math.sin(0.02)},
                DitOpsReference.timestepEmbedding(new double[] {2}, 4));
    }

    @Test
    void patchifyOfAHandExample() {
        // 2 channels, 1 frame, 2×2, one (1, 2, 2) patch: latent[ch, 0, b, e] = 10·ch + 2b + e.
        PatchShape s = new PatchShape(2, 1, 2, 2, 1, 2, 2);
        double[] latent = {0, 1, 2, 3, 10, 11, 12, 13};
        assertArrayEquals(latent, DitOpsReference.patchify(latent, s, PatchLayout.CHANNEL_FIRST));
        assertArrayEquals(new double[] {0, 10, 1, 11, 2, 12, 3, 13},
                DitOpsReference.patchify(latent, s, PatchLayout.CHANNEL_LAST));
        // 1 channel, 2 frames, 2×4 in (2, 1, 2) patches: 2×2 tokens of 4 features.
        PatchShape t = new PatchShape(1, 2, 2, 4, 2, 1, 2);
        double[] ramp = new double[16];
        for (int n = 0; n < 16; n++) {
            ramp[n] = n; // (frame, row, col) = n / 8, n / 4 % 2, n % 4
        }
        // token (row 0, col 0): (a, e) over frames 0/1 and cols 0/1 of row 0 → 0, 1, 8, 9.
        assertArrayEquals(new double[] {0, 1, 8, 9, 2, 3, 10, 11, 4, 5, 12, 13, 6, 7, 14, 15},
                DitOpsReference.patchify(ramp, t, PatchLayout.CHANNEL_FIRST));
        for (PatchLayout layout : PatchLayout.values()) {
            assertArrayEquals(ramp, DitOpsReference.unpatchify(DitOpsReference.patchify(ramp, t, layout), t, layout));
        }
    }

    // --------------------------------------------------------------------------------- helpers

    private static double[] normal(SplittableRandom random, int n, double scale) {
        return TestData.toDouble(TestData.normal(random, n, scale));
    }

    /** L = Σ upstream · output: its gradient is what a backward returns for {@code upstream}. */
    private static double loss(double[] upstream, double[] output) {
        return FiniteDifferences.weightedSum(upstream, output);
    }

    private static void assertGradient(String what, double[] analytic, double[] at, ToDoubleFunction<double[]> f,
            SplittableRandom random) {
        assertTrue(Arrays.stream(analytic).anyMatch(v -> Math.abs(v) > 1e-3), what + " is not identically zero");
        FiniteDifferences.assertAlongRandomDirections(FD, what, analytic, at, f, random, DIRECTIONS, FD_STEP);
    }
}
