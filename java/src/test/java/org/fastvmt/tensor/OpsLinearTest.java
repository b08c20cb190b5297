package org.fastvmt.tensor;

import static org.fastvmt.tensor.OpRun.assertClose;

import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import org.fastvmt.backend.Backend;
import org.fastvmt.backend.Device;
import org.fastvmt.reference.DitOpsReference;
import org.fastvmt.reference.DitOpsReference.LinearGradients;
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
 * {@link Ops#linear} on every backend against {@link DitOpsReference#linear}: y, dx, dweight and
 * dbias after {@link Graph#backward}, for fp32 and bf16 weights, with and without bias, over edge
 * shapes (one row, one output, widths like 7, 17 and 33 that are not multiples of 8 or 32).
 */
class OpsLinearTest {

    /** fp32 GEMM of at most 64 terms (sgemm, cuBLAS or OpenBLAS) against double. */
    private static final Tolerance F32 = new Tolerance(1e-5, 1e-4);
    /** dweight and dbias of many rows: sums of 600 fp32 terms. */
    private static final Tolerance F32_LONG = new Tolerance(1e-4, 1e-3);
    /**
     * A bf16 weight against the fp32 weight it was rounded from: bf16 keeps 8 bits, a relative
     * error of 2^-9 per weight, which the sum of 33 terms of size 1 turns into about 1e-2.
     */
    private static final Tolerance BF16_ROUNDING = new Tolerance(3e-2, 2e-2);

    private static final OpenBackends BACKENDS = new OpenBackends();

    @AfterAll
    static void closeBackends() {
        BACKENDS.close();
    }

    record LinearCase(String name, int rows, int in, int out, boolean bias, DType weightDtype) {
        @Override
        public String toString() {
            return name + " [" + rows + ", " + in + "] → " + out + (bias ? "" : ", no bias") + ", " + weightDtype
                    + " weight";
        }
    }

    private static final List<LinearCase> CASES = List.of(
            new LinearCase("1×1", 1, 1, 1, true, DType.F32),
            new LinearCase("one row", 1, 33, 7, true, DType.F32),
            new LinearCase("one output", 5, 7, 1, true, DType.F32),
            new LinearCase("odd widths", 3, 33, 17, true, DType.F32),
            new LinearCase("odd widths", 4, 40, 9, false, DType.F32),
            new LinearCase("wide", 2, 64, 48, true, DType.F32),
            new LinearCase("many rows", 600, 12, 8, true, DType.F32),
            new LinearCase("bf16 1×1", 1, 1, 1, true, DType.BF16),
            new LinearCase("bf16", 3, 33, 7, true, DType.BF16),
            new LinearCase("bf16", 5, 16, 24, false, DType.BF16));

    static Stream<Arguments> cases() {
        return OpenBackends.onEveryDevice(CASES);
    }

    /** Every input that can have a gradient requires one (a bf16 weight cannot). */
    @ParameterizedTest(name = "{0}: {1}")
    @MethodSource("cases")
    void linearMatchesTheReference(Device device, LinearCase c) {
        Backend backend = BACKENDS.get(device);
        SplittableRandom random = new SplittableRandom(c.toString().hashCode());
        Input x = Input.trained("x", TestData.normal(random, c.rows() * c.in(), 1), c.rows(), c.in());
        float[] weightValues = TestData.normal(random, c.out() * c.in(), 1);
        Input weight = c.weightDtype() == DType.BF16 ? Input.bf16("weight", weightValues, c.out(), c.in())
                : Input.trained("weight", weightValues, c.out(), c.in());
        Input bias = c.bias() ? Input.trained("bias", TestData.normal(random, c.out(), 1), c.out()) : null;

        Result got = OpRun.run(backend, random, (ops, t) -> ops.linear(t[0], t[1], t[2]), x, weight, bias);

        double[] b = bias == null ? null : bias.held();
        String where = device + " " + c + ": ";
        double[] y = DitOpsReference.linear(x.held(), weight.held(), b, c.rows(), c.in(), c.out());
        assertClose(F32, where + "y", y, got.output());
        LinearGradients ref = DitOpsReference.linearBackward(x.held(), weight.held(), c.bias(), got.upstream(),
                c.rows(), c.in(), c.out());
        assertClose(F32, where + "dx", ref.dx(), got.gradient(0));
        Tolerance overRows = c.rows() > 64 ? F32_LONG : F32;
        if (weight.gradient()) {
            assertClose(overRows, where + "dweight", ref.dweight(), got.gradient(1));
        }
        if (c.bias()) {
            assertClose(overRows, where + "dbias", ref.dbias(), got.gradient(2));
        }
        if (c.weightDtype() == DType.BF16) {
            double[] unrounded = DitOpsReference.linear(x.held(), TestData.toDouble(weightValues), b, c.rows(),
                    c.in(), c.out());
            assertClose(BF16_ROUNDING, where + "y against the fp32 weights", unrounded, got.output());
        }
    }

    /** Only the inputs that require a gradient receive one (OpRun checks the others stay absent). */
    @ParameterizedTest(name = "{0}")
    @MethodSource("org.fastvmt.reference.OpenBackends#devices")
    void gradientsGoOnlyWhereWanted(Device device) {
        Backend backend = BACKENDS.get(device);
        SplittableRandom random = new SplittableRandom(7);
        int rows = 3;
        int in = 9;
        int out = 5;
        float[] xValues = TestData.normal(random, rows * in, 1);
        float[] wValues = TestData.normal(random, out * in, 1);
        float[] bValues = TestData.normal(random, out, 1);
        // A first layer: x is data, the weight trains, the bias is frozen.
        Input x = Input.constant("x", xValues, rows, in);
        Input w = Input.trained("weight", wValues, out, in);
        Input b = Input.constant("bias", bValues, out);
        Result got = OpRun.run(backend, random, (ops, t) -> ops.linear(t[0], t[1], t[2]), x, w, b);
        LinearGradients ref = DitOpsReference.linearBackward(x.held(), w.held(), true, got.upstream(), rows, in,
                out);
        assertClose(F32, device + ": dweight of a trained weight", ref.dweight(), got.gradient(1));

        // Frozen weights: only x.
        Input xTrained = Input.trained("x", xValues, rows, in);
        Input wFrozen = Input.constant("weight", wValues, out, in);
        Result onlyX = OpRun.run(backend, random, (ops, t) -> ops.linear(t[0], t[1], t[2]), xTrained, wFrozen, b);
        LinearGradients refX = DitOpsReference.linearBackward(xTrained.held(), wFrozen.held(), true,
                onlyX.upstream(), rows, in, out);
        assertClose(F32, device + ": dx through frozen weights", refX.dx(), onlyX.gradient(0));
    }

    /** linear(x, x) of a square x: x receives dy·x (as input) plus dy^T·x (as weight). */
    @ParameterizedTest(name = "{0}")
    @MethodSource("org.fastvmt.reference.OpenBackends#devices")
    void aTensorUsedAsInputAndWeightGetsBothGradients(Device device) {
        Backend backend = BACKENDS.get(device);
        SplittableRandom random = new SplittableRandom(8);
        int n = 6;
        Input x = Input.trained("x", TestData.normal(random, n * n, 1), n, n);
        Result got = OpRun.run(backend, random, (ops, t) -> ops.linear(t[0], t[0], null), x);
        double[] held = x.held();
        assertClose(F32, device + ": x · x^T", DitOpsReference.linear(held, held, null, n, n, n), got.output());
        LinearGradients ref = DitOpsReference.linearBackward(held, held, false, got.upstream(), n, n, n);
        assertClose(F32, device + ": dx + dweight", DitOpsReference.add(ref.dx(), ref.dweight()), got.gradient(0));
    }
}
