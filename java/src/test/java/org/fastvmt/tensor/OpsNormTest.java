package org.fastvmt.tensor;

import static org.fastvmt.tensor.OpRun.assertClose;

import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import org.fastvmt.backend.Backend;
import org.fastvmt.backend.Device;
import org.fastvmt.reference.DitOpsReference;
import org.fastvmt.reference.DitOpsReference.NormGradients;
import org.fastvmt.reference.OpenBackends;
import org.fastvmt.reference.TestData;
import org.fastvmt.reference.Tolerance;
import org.fastvmt.tensor.OpRun.Input;
import org.fastvmt.tensor.OpRun.Result;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * {@link Ops#layerNorm} (with and without affine) and {@link Ops#rmsNorm} (with and without
 * weight) on every backend against {@link DitOpsReference}: y, dx and the parameter gradients
 * after {@link Graph#backward}, over one row, one column, odd widths and rows whose mean is far
 * from zero (where a one-pass variance in fp32 would lose digits).
 */
class OpsNormTest {

    /**
     * fp32 row statistics over at most 1536 columns, and column sums over at most 1100 rows; the
     * normalisation divides by the row's spread, so errors scale with |x|/std.
     */
    private static final Tolerance F32 = new Tolerance(2e-5, 1e-4);

    private static final OpenBackends BACKENDS = new OpenBackends();

    @AfterAll
    static void closeBackends() {
        BACKENDS.close();
    }

    /** x [rows, cols] = mean + N(0, std²); {@code parameters}: gamma/beta or the RMS weight given. */
    record NormCase(int rows, int cols, boolean parameters, float eps, double mean, double std) {
        @Override
        public String toString() {
            return "[" + rows + ", " + cols + "]" + (parameters ? "" : " without parameters") + ", eps " + eps
                    + (mean != 0 ? ", mean " + mean : "");
        }
    }

    private static final List<NormCase> CASES = List.of(
            // One column: LayerNorm's x − mean is 0 and its dx is rstd = 1/sqrt(eps) times fp32
            // rounding; eps 1e-2 keeps that at 10× (and gives RMSNorm's dx a visible size).
            new NormCase(1, 1, true, 1e-2f, 0, 1),
            new NormCase(4, 1, true, 1e-2f, 0, 1),
            new NormCase(1, 7, true, 1e-6f, 0, 1),
            new NormCase(3, 33, false, 1e-6f, 0, 1),
            new NormCase(3, 33, true, 1e-2f, 0, 0.3),
            new NormCase(5, 64, true, 1e-6f, 0, 2),
            new NormCase(2, 130, false, 1e-5f, 0, 1),
            new NormCase(4, 24, true, 1e-6f, 3, 0.5),
            // Wan's width; then many rows, so the column sums of dgamma/dbeta span many chunks
            // (cpu: 32 rows, cuda: 64 rows, finished by 8 strided lanes).
            new NormCase(3, 1536, true, 1e-6f, 0, 1),
            new NormCase(600, 12, true, 1e-6f, 0, 1),
            new NormCase(1100, 5, true, 1e-6f, 0, 1));

    static Stream<Arguments> cases() {
        return OpenBackends.onEveryDevice(CASES);
    }

    private static float[] rows(SplittableRandom random, NormCase c) {
        float[] x = TestData.normal(random, c.rows() * c.cols(), c.std());
        for (int n = 0; n < x.length; n++) {
            x[n] += (float) c.mean();
        }
        return x;
    }

    /** Norm parameters around 1 (like trained ones), so a missing parameter shows. */
    private static float[] aroundOne(SplittableRandom random, int n) {
        float[] p = TestData.normal(random, n, 0.5);
        for (int i = 0; i < n; i++) {
            p[i] += 1;
        }
        return p;
    }

    @ParameterizedTest(name = "{0}: {1}")
    @MethodSource("cases")
    void layerNormMatchesTheReference(Device device, NormCase c) {
        Backend backend = BACKENDS.get(device);
        SplittableRandom random = new SplittableRandom(c.toString().hashCode());
        Input x = Input.trained("x", rows(random, c), c.rows(), c.cols());
        Input gamma = c.parameters() ? Input.trained("gamma", aroundOne(random, c.cols()), c.cols()) : null;
        Input beta = c.parameters() ? Input.trained("beta", TestData.normal(random, c.cols(), 1), c.cols()) : null;

        Result got = OpRun.run(backend, random, (ops, t) -> ops.layerNorm(t[0], t[1], t[2], c.eps()), x, gamma, beta);

        String where = device + " layerNorm " + c + ": ";
        double[] g = gamma == null ? null : gamma.held();
        double[] b = beta == null ? null : beta.held();
        assertClose(F32, where + "y", DitOpsReference.layerNorm(x.held(), g, b, c.rows(), c.cols(), c.eps()),
                got.output());
        NormGradients ref = DitOpsReference.layerNormBackward(x.held(), g, got.upstream(), c.rows(), c.cols(),
                c.eps());
        assertClose(F32, where + "dx", ref.dx(), got.gradient(0));
        if (c.parameters()) {
            assertClose(F32, where + "dgamma", ref.dgamma(), got.gradient(1));
            assertClose(F32, where + "dbeta", ref.dbeta(), got.gradient(2));
        }
    }

    @ParameterizedTest(name = "{0}: {1}")
    @MethodSource("cases")
    void rmsNormMatchesTheReference(Device device, NormCase c) {
        Backend backend = BACKENDS.get(device);
        SplittableRandom random = new SplittableRandom(c.toString().hashCode() + 1);
        Input x = Input.trained("x", rows(random, c), c.rows(), c.cols());
        Input weight = c.parameters() ? Input.trained("weight", aroundOne(random, c.cols()), c.cols()) : null;

        Result got = OpRun.run(backend, random, (ops, t) -> ops.rmsNorm(t[0], t[1], c.eps()), x, weight);

        String where = device + " rmsNorm " + c + ": ";
        double[] w = weight == null ? null : weight.held();
        assertClose(F32, where + "y", DitOpsReference.rmsNorm(x.held(), w, c.rows(), c.cols(), c.eps()),
                got.output());
        NormGradients ref = DitOpsReference.rmsNormBackward(x.held(), w, got.upstream(), c.rows(), c.cols(),
                c.eps());
        assertClose(F32, where + "dx", ref.dx(), got.gradient(0));
        if (c.parameters()) {
            assertClose(F32, where + "dweight", ref.dgamma(), got.gradient(1));
        }
    }

    /** Frozen parameters (Wan's norm3 at inference of a guided step): only dx, through gamma. */
    @ParameterizedTest(name = "{0}")
    @MethodSource("org.fastvmt.reference.OpenBackends#devices")
    void frozenParametersStillScaleTheGradient(Device device) {
        Backend backend = BACKENDS.get(device);
        SplittableRandom random = new SplittableRandom(4);
        int rows = 3;
        int cols = 10;
        Input x = Input.trained("x", TestData.normal(random, rows * cols, 1), rows, cols);
        Input gamma = Input.constant("gamma", aroundOne(random, cols), cols);
        Input beta = Input.constant("beta", TestData.normal(random, cols, 1), cols);
        Result got = OpRun.run(backend, random, (ops, t) -> ops.layerNorm(t[0], t[1], t[2], 1e-6f), x, gamma, beta);
        assertClose(F32, device + ": layerNorm dx with frozen gamma",
                DitOpsReference.layerNormBackward(x.held(), gamma.held(), got.upstream(), rows, cols, 1e-6).dx(),
                got.gradient(0));
        Result rms = OpRun.run(backend, random, (ops, t) -> ops.rmsNorm(t[0], t[1], 1e-6f), x, gamma);
        assertClose(F32, device + ": rmsNorm dx with a frozen weight",
                DitOpsReference.rmsNormBackward(x.held(), gamma.held(), rms.upstream(), rows, cols, 1e-6).dx(),
                rms.gradient(0));
    }
}
