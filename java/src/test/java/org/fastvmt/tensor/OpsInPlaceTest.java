package org.fastvmt.tensor;

import static org.fastvmt.tensor.OpRun.assertClose;

import java.util.SplittableRandom;

import org.fastvmt.backend.Backend;
import org.fastvmt.backend.Device;
import org.fastvmt.nativeabi.FastVmtH;
import org.fastvmt.nativeabi.FastVmtLibrary;
import org.fastvmt.reference.DitOpsReference;
import org.fastvmt.reference.DitOpsReference.RopeShape;
import org.fastvmt.reference.OpenBackends;
import org.fastvmt.reference.TestData;
import org.fastvmt.reference.Tolerance;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The kernels fastvmt.h declares safe in place ("y may equal x": bias add, modulate, gated
 * residual, GELU, SiLU, RoPE), called with the output on the input, on every backend: the result
 * equals the out-of-place reference. Ops itself always allocates its output (linear's bias add is
 * the one in-place call it makes); a model that reuses buffers relies on this contract.
 */
class OpsInPlaceTest {

    private static final Tolerance F32 = new Tolerance(1e-5, 1e-4);
    private static final int ROWS = 3;
    private static final int COLS = 36;

    private static final OpenBackends BACKENDS = new OpenBackends();

    @AfterAll
    static void closeBackends() {
        BACKENDS.close();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("org.fastvmt.reference.OpenBackends#devices")
    void inPlaceKernelsGiveTheOutOfPlaceResult(Device device) {
        Backend backend = BACKENDS.get(device);
        FastVmtLibrary library = backend.library();
        FastVmtH h = library.h();
        SplittableRandom random = new SplittableRandom(12);
        float[] values = TestData.normal(random, ROWS * COLS, 2);
        double[] x = TestData.toDouble(values);
        float[] column1 = TestData.normal(random, COLS, 1);
        float[] column2 = TestData.normal(random, COLS, 1);
        float[] other = TestData.normal(random, ROWS * COLS, 1);
        double[] c1 = TestData.toDouble(column1);
        double[] c2 = TestData.toDouble(column2);
        try (Tensor a = Tensor.of(backend, column1, COLS); Tensor b = Tensor.of(backend, column2, COLS);
                Tensor y = Tensor.of(backend, other, ROWS, COLS)) {
            String where = device + " in place: ";
            try (Tensor t = Tensor.of(backend, values, ROWS, COLS)) {
                library.check(h.fvmt_bias_add_forward(t.segment(), a.segment(), ROWS, COLS, t.segment(),
                        backend.stream()));
                assertClose(F32, where + "bias add", DitOpsReference.biasAdd(x, c1, ROWS, COLS), t.toFloatArray());
            }
            try (Tensor t = Tensor.of(backend, values, ROWS, COLS)) {
                library.check(h.fvmt_modulate_forward(t.segment(), a.segment(), b.segment(), ROWS, COLS,
                        t.segment(), backend.stream()));
                assertClose(F32, where + "modulate", DitOpsReference.modulate(x, c1, c2, ROWS, COLS),
                        t.toFloatArray());
            }
            try (Tensor t = Tensor.of(backend, values, ROWS, COLS)) {
                library.check(h.fvmt_gated_residual_forward(t.segment(), y.segment(), a.segment(), ROWS, COLS,
                        t.segment(), backend.stream()));
                assertClose(F32, where + "gated residual",
                        DitOpsReference.gatedResidual(x, TestData.toDouble(other), c1, ROWS, COLS), t.toFloatArray());
            }
            try (Tensor t = Tensor.of(backend, values, ROWS, COLS)) {
                library.check(h.fvmt_gelu_tanh_forward(t.segment(), t.elementCount(), t.segment(),
                        backend.stream()));
                assertClose(F32, where + "gelu", DitOpsReference.geluTanh(x), t.toFloatArray());
            }
            try (Tensor t = Tensor.of(backend, values, ROWS, COLS)) {
                library.check(h.fvmt_silu_forward(t.segment(), t.elementCount(), t.segment(), backend.stream()));
                assertClose(F32, where + "silu", DitOpsReference.silu(x), t.toFloatArray());
            }
            // 3 tokens (1 frame, 1 row, 3 columns) × 2 heads of 18.
            RopeShape s = new RopeShape(1, 1, ROWS, 2, COLS / 2);
            try (Tensor t = Tensor.of(backend, values, ROWS, COLS)) {
                library.check(h.fvmt_rope3d_forward(t.segment(), 1, 1, ROWS, 2, COLS / 2, 10000f, t.segment(),
                        backend.stream()));
                assertClose(F32, where + "rope3d", DitOpsReference.rope3d(x, s, 10000), t.toFloatArray());
            }
        }
    }
}
