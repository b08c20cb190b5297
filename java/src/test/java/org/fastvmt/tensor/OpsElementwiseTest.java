package org.fastvmt.tensor;

import static org.fastvmt.tensor.OpRun.assertClose;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import org.fastvmt.backend.Backend;
import org.fastvmt.backend.Device;
import org.fastvmt.reference.DitOpsReference;
import org.fastvmt.reference.DitOpsReference.ModulateGradients;
import org.fastvmt.reference.DitOpsReference.ResidualGradients;
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
 * The element-wise ops on every backend against {@link DitOpsReference}: modulate, gated
 * residual (with and without gate), add, GELU (tanh) and SiLU, forward and every gradient after
 * {@link Graph#backward}; shapes of one element, one row, odd widths and rank 1 and 3; activations
 * far in both tails; and a tensor used twice receiving the sum of its gradients.
 */
class OpsElementwiseTest {

    /** One fp32 operation per element, and column sums of at most 1100 rows (in fp32 chunks, then double). */
    private static final Tolerance F32 = new Tolerance(1e-5, 1e-4);

    private static final OpenBackends BACKENDS = new OpenBackends();

    @AfterAll
    static void closeBackends() {
        BACKENDS.close();
    }

    /** [rows, cols] for the per-column ops. */
    record Matrix(int rows, int cols) {
        int size() {
            return rows * cols;
        }

        @Override
        public String toString() {
            return "[" + rows + ", " + cols + "]";
        }
    }

    private static final List<Matrix> MATRICES = List.of(new Matrix(1, 1), new Matrix(1, 7), new Matrix(5, 1),
            new Matrix(4, 33), new Matrix(3, 64),
            // Column sums over many row chunks (cpu 32, cuda 64 rows) and column tiles (cuda 512).
            new Matrix(600, 12), new Matrix(1100, 5), new Matrix(130, 520));

    /** Any-rank shapes for add and the activations. */
    private static final List<long[]> SHAPES = List.of(new long[] {1}, new long[] {7}, new long[] {3, 5},
            new long[] {2, 33}, new long[] {2, 3, 5}, new long[] {5003});

    static Stream<Arguments> matrices() {
        return OpenBackends.onEveryDevice(MATRICES);
    }

    static Stream<Arguments> shapes() {
        return OpenBackends.onEveryDevice(SHAPES);
    }

    @ParameterizedTest(name = "{0}: {1}")
    @MethodSource("matrices")
    void modulateMatchesTheReference(Device device, Matrix m) {
        Backend backend = BACKENDS.get(device);
        SplittableRandom random = new SplittableRandom(m.toString().hashCode());
        Input x = Input.trained("x", TestData.normal(random, m.size(), 1), m.rows(), m.cols());
        Input shift = Input.trained("shift", TestData.normal(random, m.cols(), 1), m.cols());
        Input scale = Input.trained("scale", TestData.normal(random, m.cols(), 1), m.cols());

        Result got = OpRun.run(backend, random, (ops, t) -> ops.modulate(t[0], t[1], t[2]), x, shift, scale);

        String where = device + " modulate " + m + ": ";
        assertClose(F32, where + "y", DitOpsReference.modulate(x.held(), shift.held(), scale.held(), m.rows(),
                m.cols()), got.output());
        ModulateGradients ref = DitOpsReference.modulateBackward(x.held(), scale.held(), got.upstream(), m.rows(),
                m.cols());
        assertClose(F32, where + "dx", ref.dx(), got.gradient(0));
        assertClose(F32, where + "dshift", ref.dshift(), got.gradient(1));
        assertClose(F32, where + "dscale", ref.dscale(), got.gradient(2));
    }

    @ParameterizedTest(name = "{0}: {1}")
    @MethodSource("matrices")
    void gatedResidualMatchesTheReference(Device device, Matrix m) {
        Backend backend = BACKENDS.get(device);
        SplittableRandom random = new SplittableRandom(m.toString().hashCode() + 1);
        Input x = Input.trained("x", TestData.normal(random, m.size(), 1), m.rows(), m.cols());
        Input y = Input.trained("y", TestData.normal(random, m.size(), 1), m.rows(), m.cols());
        Input gate = Input.trained("gate", TestData.normal(random, m.cols(), 1), m.cols());
        for (Input g : new Input[] {gate, null}) {
            Result got = OpRun.run(backend, random, (ops, t) -> ops.gatedResidual(t[0], t[1], t[2]), x, y, g);
            double[] held = g == null ? null : g.held();
            String where = device + " gatedResidual " + m + (g == null ? " without gate" : "") + ": ";
            assertClose(F32, where + "out", DitOpsReference.gatedResidual(x.held(), y.held(), held, m.rows(),
                    m.cols()), got.output());
            ResidualGradients ref = DitOpsReference.gatedResidualBackward(y.held(), held, got.upstream(), m.rows(),
                    m.cols());
            assertClose(F32, where + "dx", ref.dx(), got.gradient(0));
            assertClose(F32, where + "dy", ref.dy(), got.gradient(1));
            if (g != null) {
                assertClose(F32, where + "dgate", ref.dgate(), got.gradient(2));
            }
        }
    }

    @ParameterizedTest(name = "{0}: {1}")
    @MethodSource("shapes")
    void addMatchesTheReference(Device device, long[] shape) {
        Backend backend = BACKENDS.get(device);
        SplittableRandom random = new SplittableRandom(Arrays.hashCode(shape));
        int size = size(shape);
        Input a = Input.trained("a", TestData.normal(random, size, 1), shape);
        Input b = Input.trained("b", TestData.normal(random, size, 1), shape);
        Result got = OpRun.run(backend, random, (ops, t) -> ops.add(t[0], t[1]), a, b);
        String where = device + " add " + Arrays.toString(shape) + ": ";
        assertShape(shape, got);
        assertClose(F32, where + "a + b", DitOpsReference.add(a.held(), b.held()), got.output());
        assertClose(F32, where + "da", got.upstream(), got.gradient(0));
        assertClose(F32, where + "db", got.upstream(), got.gradient(1));
    }

    @ParameterizedTest(name = "{0}: {1}")
    @MethodSource("shapes")
    void activationsMatchTheReference(Device device, long[] shape) {
        Backend backend = BACKENDS.get(device);
        SplittableRandom random = new SplittableRandom(Arrays.hashCode(shape) + 1);
        int size = size(shape);
        float[] values = TestData.normal(random, size, 3);
        // Far into both tails, where exp overflows fp32 and tanh saturates: 0 and x, not NaN.
        float[] tails = {-90f, 90f, -30f, 30f, 0f, -1e-3f};
        System.arraycopy(tails, 0, values, 0, Math.min(tails.length, size));
        Input x = Input.trained("x", values, shape);

        Result gelu = OpRun.run(backend, random, (ops, t) -> ops.geluTanh(t[0]), x);
        String where = device + " " + Arrays.toString(shape) + " ";
        assertShape(shape, gelu);
        assertClose(F32, where + "gelu y", DitOpsReference.geluTanh(x.held()), gelu.output());
        assertClose(F32, where + "gelu dx", DitOpsReference.geluTanhBackward(x.held(), gelu.upstream()),
                gelu.gradient(0));

        Result silu = OpRun.run(backend, random, (ops, t) -> ops.silu(t[0]), x);
        assertShape(shape, silu);
        assertClose(F32, where + "silu y", DitOpsReference.silu(x.held()), silu.output());
        assertClose(F32, where + "silu dx", DitOpsReference.siluBackward(x.held(), silu.upstream()),
                silu.gradient(0));
    }

    /** One tensor read by two ops, and twice by one op: its gradient is the sum of every use. */
    @ParameterizedTest(name = "{0}")
    @MethodSource("org.fastvmt.reference.OpenBackends#devices")
    void aTensorUsedTwiceReceivesBothGradients(Device device) {
        Backend backend = BACKENDS.get(device);
        SplittableRandom random = new SplittableRandom(9);
        int rows = 3;
        int cols = 7;
        Input x = Input.trained("x", TestData.normal(random, rows * cols, 1), rows, cols);
        Input gate = Input.trained("gate", TestData.normal(random, cols, 1), cols);

        Result two = OpRun.run(backend, random, (ops, t) -> ops.add(ops.silu(t[0]), ops.geluTanh(t[0])), x);
        double[] up = two.upstream();
        assertClose(F32, device + ": silu(x) + gelu(x)",
                DitOpsReference.add(DitOpsReference.silu(x.held()), DitOpsReference.geluTanh(x.held())),
                two.output());
        assertClose(F32, device + ": dx of silu(x) + gelu(x)", DitOpsReference.add(
                DitOpsReference.siluBackward(x.held(), up), DitOpsReference.geluTanhBackward(x.held(), up)),
                two.gradient(0));

        Result self = OpRun.run(backend, random, (ops, t) -> ops.gatedResidual(t[0], t[0], t[1]), x, gate);
        ResidualGradients ref = DitOpsReference.gatedResidualBackward(x.held(), gate.held(), self.upstream(), rows,
                cols);
        assertClose(F32, device + ": x + gate·x", DitOpsReference.gatedResidual(x.held(), x.held(), gate.held(),
                rows, cols), self.output());
        assertClose(F32, device + ": dx of x + gate·x (as x and as y)", DitOpsReference.add(ref.dx(), ref.dy()),
                self.gradient(0));
        assertClose(F32, device + ": dgate of x + gate·x", ref.dgate(), self.gradient(1));

        Result doubled = OpRun.run(backend, random, (ops, t) -> ops.add(t[0], t[0]), x);
        double[] twice = DitOpsReference.add(doubled.upstream(), doubled.upstream());
        assertClose(F32, device + ": d(x + x)/dx = 2·upstream", twice, doubled.gradient(0));
    }

    private static void assertShape(long[] expected, Result got) {
        assertArrayEquals(expected, got.outputShape(), "output shape");
    }

    private static int size(long[] shape) {
        int size = 1;
        for (long d : shape) {
            size *= (int) d;
        }
        return size;
    }
}
