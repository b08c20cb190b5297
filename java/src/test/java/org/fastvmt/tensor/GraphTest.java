package org.fastvmt.tensor;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.ToDoubleFunction;
import java.util.stream.Stream;

import org.fastvmt.backend.Backend;
import org.fastvmt.backend.Device;
import org.fastvmt.reference.FiniteDifferences;
import org.fastvmt.reference.OpenBackends;
import org.fastvmt.reference.TestData;
import org.fastvmt.reference.Tolerance;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The tape: gradients of a small network to its input and to every weight against central finite
 * differences of the same ops; every op's backward wiring to each of its inputs (the values of
 * each op against a double reference are OpsTest's job); gradients through views and slices; aliasing inputs; accumulation
 * over several backward calls; what is not recorded; and that closing frees every byte.
 */
class GraphTest {

    private static final OpenBackends BACKENDS = new OpenBackends();

    /**
     * Central differences of an fp32 forward with step 1e-2: truncation ~h²·f''' ≈ 1e-4 and
     * rounding ~1e-7·|L|/h ≈ 1e-4 for these sizes; a wrong gradient is off by O(1).
     */
    private static final Tolerance FINITE_DIFFERENCES = new Tolerance(3e-3, 3e-2);
    private static final double STEP = 1e-2;
    /** fp32 sums of a few terms against their double values. */
    private static final Tolerance FP32_SUMS = new Tolerance(1e-5, 1e-5);

    @AfterAll
    static void closeBackends() {
        BACKENDS.close();
    }

    /** The parameters of linear → silu → layerNorm(affine) → linear, as host arrays. */
    private static final String[] NAMES = {"x", "w1", "b1", "gamma", "beta", "w2", "b2"};
    private static final int ROWS = 5;
    private static final int IN = 7;
    private static final int HIDDEN = 6;
    private static final int OUT = 4;
    private static final long[][] SHAPES = {{ROWS, IN}, {HIDDEN, IN}, {HIDDEN}, {HIDDEN}, {HIDDEN}, {OUT, HIDDEN},
        {OUT}};

    private static Tensor chain(Ops ops, Tensor[] p) {
        Tensor h = ops.silu(ops.linear(p[0], p[1], p[2]));
        return ops.linear(ops.layerNorm(h, p[3], p[4], 1e-5f), p[5], p[6]);
    }

    /** L = <r, chain(params)> by a non-recording forward of the same ops. */
    private static double loss(Backend backend, float[][] params, float[] r) {
        try (Graph graph = new Graph(backend, false)) {
            Tensor[] p = new Tensor[params.length];
            for (int n = 0; n < params.length; n++) {
                p[n] = graph.own(Tensor.of(backend, params[n], SHAPES[n]));
            }
            float[] out = chain(new Ops(graph), p).toFloatArray();
            double sum = 0;
            for (int n = 0; n < out.length; n++) {
                sum += (double) r[n] * out[n];
            }
            return sum;
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("org.fastvmt.reference.OpenBackends#devices")
    void gradientsOfANetworkMatchFiniteDifferences(Device device) {
        Backend backend = BACKENDS.get(device);
        SplittableRandom random = new SplittableRandom(11);
        float[][] params = new float[NAMES.length][];
        for (int n = 0; n < NAMES.length; n++) {
            params[n] = TestData.normal(random, (int) elements(SHAPES[n]), n == 3 ? 0.3 : 0.6);
        }
        for (int c = 0; c < HIDDEN; c++) {
            params[3][c] += 1; // gamma around 1
        }
        float[] r = TestData.normal(random, ROWS * OUT, 1);
        float[][] gradients = new float[NAMES.length][];
        try (Graph graph = new Graph(backend, true)) {
            Ops ops = new Ops(graph);
            Tensor[] p = new Tensor[NAMES.length];
            for (int n = 0; n < NAMES.length; n++) {
                p[n] = graph.own(Tensor.of(backend, params[n], SHAPES[n]));
                graph.requireGradient(p[n]);
            }
            Tensor out = chain(ops, p);
            assertEquals(4, graph.recordCount(), "linear, silu, layerNorm, linear");
            graph.backward(out, graph.own(Tensor.of(backend, r, ROWS, OUT)));
            for (int n = 0; n < NAMES.length; n++) {
                gradients[n] = graph.gradient(p[n]).toFloatArray();
            }
        }
        for (int n = 0; n < NAMES.length; n++) {
            int parameter = n;
            ToDoubleFunction<double[]> lossOf = values -> {
                float[][] shifted = params.clone();
                shifted[parameter] = toFloat(values);
                return loss(backend, shifted, r);
            };
            double[] at = TestData.toDouble(params[n]);
            for (int sample = 0; sample < 4; sample++) {
                int index = random.nextInt(at.length);
                double numeric = FiniteDifferences.derivative(lossOf, at, index, STEP);
                FINITE_DIFFERENCES.assertClose("dL/d" + NAMES[n] + "[" + index + "] on " + device, numeric,
                        gradients[n][index]);
            }
        }
        // Along one random direction of every parameter at once: <grad, d> = dL/dt (params + t·d).
        float[][] direction = new float[NAMES.length][];
        double predicted = 0;
        for (int n = 0; n < NAMES.length; n++) {
            direction[n] = TestData.normal(random, params[n].length, 1);
            for (int i = 0; i < params[n].length; i++) {
                predicted += (double) gradients[n][i] * direction[n][i];
            }
        }
        double numeric = (loss(backend, step(params, direction, STEP), r)
                - loss(backend, step(params, direction, -STEP), r)) / (2 * STEP);
        FINITE_DIFFERENCES.assertClose("directional derivative on " + device, numeric, predicted);
    }

    /** One op as a function of its tensor inputs, for {@link #everyOpSendsGradientsToEveryInput}. */
    private record OpCase(String name, long[][] shapes, java.util.function.BiFunction<Ops, Tensor[], Tensor> op) {
        @Override
        public String toString() {
            return name;
        }
    }

    private static long[][] shapes(long[]... shapes) {
        return shapes;
    }

    static Stream<Arguments> opCases() {
        List<OpCase> ops = List.of(
                new OpCase("linear", shapes(new long[] {4, 5}, new long[] {3, 5}, new long[] {3}),
                        (o, p) -> o.linear(p[0], p[1], p[2])),
                new OpCase("layerNorm", shapes(new long[] {3, 6}), (o, p) -> o.layerNorm(p[0], null, null, 1e-5f)),
                new OpCase("layerNorm affine", shapes(new long[] {3, 6}, new long[] {6}, new long[] {6}),
                        (o, p) -> o.layerNorm(p[0], p[1], p[2], 1e-5f)),
                new OpCase("rmsNorm", shapes(new long[] {3, 6}, new long[] {6}), (o, p) -> o.rmsNorm(p[0], p[1], 1e-6f)),
                new OpCase("modulate", shapes(new long[] {3, 5}, new long[] {5}, new long[] {5}),
                        (o, p) -> o.modulate(p[0], p[1], p[2])),
                new OpCase("gatedResidual", shapes(new long[] {3, 5}, new long[] {3, 5}, new long[] {5}),
                        (o, p) -> o.gatedResidual(p[0], p[1], p[2])),
                new OpCase("add", shapes(new long[] {2, 3, 2}, new long[] {2, 3, 2}), (o, p) -> o.add(p[0], p[1])),
                new OpCase("geluTanh", shapes(new long[] {2, 7}), (o, p) -> o.geluTanh(p[0])),
                new OpCase("silu", shapes(new long[] {2, 7}), (o, p) -> o.silu(p[0])),
                new OpCase("rope3d", shapes(new long[] {2 * 2 * 3, 2 * 6}), (o, p) -> o.rope3d(p[0], 2, 2, 3, 2, 1e4f)),
                new OpCase("attention", shapes(new long[] {3, 8}, new long[] {5, 8}, new long[] {5, 8}),
                        (o, p) -> o.attention(p[0], p[1], p[2], 2)),
                new OpCase("timestepEmbedding", shapes(new long[] {3}), (o, p) -> o.timestepEmbedding(p[0], 8)),
                new OpCase("patchify", shapes(new long[] {2, 2, 4, 4}),
                        (o, p) -> o.patchify(p[0], 1, 2, 2, PatchLayout.CHANNEL_FIRST)),
                new OpCase("unpatchify", shapes(new long[] {8, 8}),
                        (o, p) -> o.unpatchify(p[0], 2, 2, 4, 4, 1, 2, 2, PatchLayout.CHANNEL_LAST)));
        return OpenBackends.devices().flatMap(device -> ops.stream().map(op -> Arguments.of(device, op)));
    }

    /**
     * Every op's recorded backward reaches every input: for each input alone, the gradient
     * along a random direction equals the central difference of L = <r, op(inputs)>.
     */
    @ParameterizedTest(name = "{0}: {1}")
    @MethodSource("opCases")
    void everyOpSendsGradientsToEveryInput(Device device, OpCase op) {
        Backend backend = BACKENDS.get(device);
        SplittableRandom random = new SplittableRandom(op.name().hashCode());
        float[][] inputs = new float[op.shapes().length][];
        for (int n = 0; n < inputs.length; n++) {
            inputs[n] = TestData.normal(random, (int) elements(op.shapes()[n]), 1);
        }
        float[] r;
        float[][] gradients = new float[inputs.length][];
        try (Graph graph = new Graph(backend, true)) {
            Tensor[] p = new Tensor[inputs.length];
            for (int n = 0; n < inputs.length; n++) {
                p[n] = graph.own(Tensor.of(backend, inputs[n], op.shapes()[n]));
                graph.requireGradient(p[n]);
            }
            Tensor out = op.op().apply(new Ops(graph), p);
            r = TestData.normal(random, (int) out.elementCount(), 1);
            graph.backward(out, graph.own(Tensor.of(backend, r, out.shape())));
            for (int n = 0; n < inputs.length; n++) {
                gradients[n] = graph.gradient(p[n]).toFloatArray();
            }
        }
        for (int n = 0; n < inputs.length; n++) {
            float[] direction = TestData.normal(random, inputs[n].length, 1);
            double predicted = 0;
            for (int i = 0; i < direction.length; i++) {
                predicted += (double) gradients[n][i] * direction[i];
            }
            float[][] up = inputs.clone();
            float[][] down = inputs.clone();
            up[n] = step(new float[][] {inputs[n]}, new float[][] {direction}, STEP)[0];
            down[n] = step(new float[][] {inputs[n]}, new float[][] {direction}, -STEP)[0];
            double numeric = (opLoss(backend, op, up, r) - opLoss(backend, op, down, r)) / (2 * STEP);
            FINITE_DIFFERENCES.assertClose(op + ": gradient of input " + n + " along a direction on " + device,
                    numeric, predicted);
        }
    }

    private static double opLoss(Backend backend, OpCase op, float[][] inputs, float[] r) {
        try (Graph graph = new Graph(backend, false)) {
            Tensor[] p = new Tensor[inputs.length];
            for (int n = 0; n < inputs.length; n++) {
                p[n] = graph.own(Tensor.of(backend, inputs[n], op.shapes()[n]));
            }
            float[] out = op.op().apply(new Ops(graph), p).toFloatArray();
            double sum = 0;
            for (int n = 0; n < out.length; n++) {
                sum += (double) r[n] * out[n];
            }
            return sum;
        }
    }

    /** A tensor used twice by one op (self-attention of x with itself) receives both contributions. */
    @ParameterizedTest(name = "{0}")
    @MethodSource("org.fastvmt.reference.OpenBackends#devices")
    void anInputPassedSeveralTimesGetsEveryContribution(Device device) {
        Backend backend = BACKENDS.get(device);
        SplittableRandom random = new SplittableRandom(5);
        float[] x = TestData.normal(random, 5 * 8, 1);
        float[] r = TestData.normal(random, 5 * 8, 1);
        float[] gradient;
        try (Graph graph = new Graph(backend, true)) {
            Tensor xt = graph.own(Tensor.of(backend, x, 5, 8));
            graph.requireGradient(xt);
            Tensor out = new Ops(graph).attention(xt, xt, xt, 2);
            graph.backward(out, graph.own(Tensor.of(backend, r, 5, 8)));
            gradient = graph.gradient(xt).toFloatArray();
        }
        ToDoubleFunction<double[]> lossOf = values -> {
            try (Graph graph = new Graph(backend, false)) {
                Tensor xt = graph.own(Tensor.of(backend, toFloat(values), 5, 8));
                float[] out = new Ops(graph).attention(xt, xt, xt, 2).toFloatArray();
                double sum = 0;
                for (int n = 0; n < out.length; n++) {
                    sum += (double) r[n] * out[n];
                }
                return sum;
            }
        };
        double[] at = TestData.toDouble(x);
        for (int index = 0; index < x.length; index += 3) {
            double numeric = FiniteDifferences.derivative(lossOf, at, index, STEP);
            FINITE_DIFFERENCES.assertClose("dL/dx[" + index + "] of attention(x, x, x) on " + device, numeric,
                    gradient[index]);
        }
    }

    /**
     * Slices of one parameter table used as shift and scale (Wan's modulation chunks), a view of
     * the input, a seed on a slice of the output, and a slice used twice by add: every gradient
     * lands in its range of the base's gradient.
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("org.fastvmt.reference.OpenBackends#devices")
    void gradientsOfViewsAndSlicesReachTheirBase(Device device) {
        Backend backend = BACKENDS.get(device);
        SplittableRandom random = new SplittableRandom(3);
        int rows = 3;
        int cols = 4;
        float[] x = TestData.normal(random, rows * cols, 1);
        float[] table = TestData.normal(random, 3 * cols, 0.5); // rows: shift, scale, unused
        float[] seed = TestData.normal(random, 2 * cols, 1); // on output rows 1 and 2
        try (Graph graph = new Graph(backend, true)) {
            Ops ops = new Ops(graph);
            Tensor xFlat = graph.own(Tensor.of(backend, x, rows * cols));
            Tensor tableT = graph.own(Tensor.of(backend, table, 3, cols));
            graph.requireGradient(xFlat);
            graph.requireGradient(tableT);
            Tensor shift = tableT.slice(0, cols);
            Tensor scale = tableT.slice(cols, cols);
            Tensor y = ops.modulate(xFlat.view(rows, cols), shift, scale);
            Tensor doubled = ops.add(y, y);
            graph.backward(doubled.slice(cols, 2, cols), graph.own(Tensor.of(backend, seed, 2, cols)));

            double[] dx = new double[rows * cols];
            double[] dTable = new double[3 * cols];
            for (int r = 1; r < rows; r++) {
                for (int c = 0; c < cols; c++) {
                    double upstream = 2.0 * seed[(r - 1) * cols + c]; // add(y, y): twice
                    dx[r * cols + c] = upstream * (1 + table[cols + c]);
                    dTable[c] += upstream;
                    dTable[cols + c] += upstream * x[r * cols + c];
                }
            }
            FP32_SUMS.assertClose("dx (through a view)", dx, graph.gradient(xFlat).toFloatArray());
            FP32_SUMS.assertClose("d table (through two slices)", dTable, graph.gradient(tableT).toFloatArray());
            Tensor dScale = graph.gradient(scale);
            assertArrayEquals(new long[] {cols}, dScale.shape());
            assertSame(graph.gradient(tableT), dScale.base(), "the gradient of a slice is a slice of the base's");
            FP32_SUMS.assertClose("d scale", Arrays.copyOfRange(dTable, cols, 2 * cols), dScale.toFloatArray());
            assertNull(graph.gradient(y), "intermediate gradients are freed by backward");
        }
    }

    /** Leaf gradients accumulate over backward calls; a Map of seeds equals the calls in turn. */
    @ParameterizedTest(name = "{0}")
    @MethodSource("org.fastvmt.reference.OpenBackends#devices")
    void backwardCallsAccumulateIntoLeavesOnly(Device device) {
        Backend backend = BACKENDS.get(device);
        SplittableRandom random = new SplittableRandom(8);
        float[] x = TestData.normal(random, 12, 1);
        float[] w = TestData.normal(random, 3 * 4, 1);
        float[] g1 = TestData.normal(random, 12, 1);
        float[] g2 = TestData.normal(random, 9, 1);
        float[] inTurn;
        float[] together;
        try (Graph graph = new Graph(backend, true)) {
            Ops ops = new Ops(graph);
            Tensor xt = graph.own(Tensor.of(backend, x, 3, 4));
            graph.requireGradient(xt);
            Tensor hidden = ops.silu(xt);
            Tensor out = ops.linear(hidden, graph.own(Tensor.of(backend, w, 3, 4)), null);
            graph.backward(hidden, graph.own(Tensor.of(backend, g1, 3, 4)));
            graph.backward(out, graph.own(Tensor.of(backend, g2, 3, 3)));
            inTurn = graph.gradient(xt).toFloatArray();
        }
        try (Graph graph = new Graph(backend, true)) {
            Ops ops = new Ops(graph);
            Tensor xt = graph.own(Tensor.of(backend, x, 3, 4));
            graph.requireGradient(xt);
            Tensor hidden = ops.silu(xt);
            Tensor out = ops.linear(hidden, graph.own(Tensor.of(backend, w, 3, 4)), null);
            Map<Tensor, Tensor> seeds = new IdentityHashMap<>();
            seeds.put(hidden, graph.own(Tensor.of(backend, g1, 3, 4)));
            seeds.put(out, graph.own(Tensor.of(backend, g2, 3, 3)));
            graph.backward(seeds);
            together = graph.gradient(xt).toFloatArray();
        }
        // The same fp32 operations in another order of accumulation: equal to rounding.
        new Tolerance(1e-5, 1e-5).assertClose("gradient of x", TestData.toDouble(together), inTurn);
    }

    /** Ops on tensors that need no gradient record nothing; a non-recording graph records nothing at all. */
    @ParameterizedTest(name = "{0}")
    @MethodSource("org.fastvmt.reference.OpenBackends#devices")
    void opsWithoutGradientInputsRecordNothing(Device device) {
        Backend backend = BACKENDS.get(device);
        try (Graph graph = new Graph(backend, true)) {
            Ops ops = new Ops(graph);
            Tensor constant = graph.own(Tensor.of(backend, new float[] {1, -2, 3, -4}, 2, 2));
            Tensor weight = graph.own(Tensor.of(backend, new float[] {1, 0, 0, 1}, 2, 2));
            Tensor y = ops.linear(ops.silu(constant), weight, null);
            assertEquals(0, graph.recordCount());
            assertFalse(graph.needsGradient(y));
            assertThrows(IllegalArgumentException.class, () -> graph.backward(y, y));

            graph.requireGradient(weight);
            Tensor z = ops.linear(ops.silu(constant), weight, null);
            assertEquals(1, graph.recordCount(), "only the linear reads a tensor that needs a gradient");
            assertTrue(graph.needsGradient(z));
        }
        try (Graph inference = new Graph(backend, false)) {
            Tensor x = inference.own(Tensor.of(backend, new float[] {1, 2}, 1, 2));
            assertThrows(IllegalStateException.class, () -> inference.requireGradient(x));
            new Ops(inference).silu(x);
            assertEquals(0, inference.recordCount());
            assertFalse(inference.needsGradient(x));
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("org.fastvmt.reference.OpenBackends#devices")
    void bf16WeightsCannotRequireGradients(Device device) {
        Backend backend = BACKENDS.get(device);
        try (Graph graph = new Graph(backend, true)) {
            Tensor weight = graph.own(Tensor.of(backend, DType.BF16, new float[] {1, 2, 3, 4}, 2, 2));
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> graph.requireGradient(weight));
            assertTrue(e.getMessage().contains("F32"), e.getMessage());
        }
    }

    /** Closing the graph frees intermediates, saved attention statistics and gradients: every byte. */
    @ParameterizedTest(name = "{0}")
    @MethodSource("org.fastvmt.reference.OpenBackends#devices")
    void closingTheGraphFreesEveryByte(Device device) {
        Backend backend = BACKENDS.get(device);
        // One pass first, so the backend's workspace has grown to what these ops need.
        runAttentionBlock(backend);
        long before = backend.allocatedBytes();
        backend.resetPeak();
        runAttentionBlock(backend);
        assertEquals(before, backend.allocatedBytes(), "bytes allocated after the graph closed");
        assertTrue(backend.peakAllocatedBytes() > before, "the pass allocated memory while it ran");
    }

    /** free and disown hand memory back early or to the caller; a tensor the tape needs is refused. */
    @ParameterizedTest(name = "{0}")
    @MethodSource("org.fastvmt.reference.OpenBackends#devices")
    void freeAndDisownRespectTheTape(Device device) {
        Backend backend = BACKENDS.get(device);
        long before = backend.allocatedBytes();
        Tensor kept;
        try (Graph graph = new Graph(backend, true)) {
            Ops ops = new Ops(graph);
            Tensor x = graph.own(Tensor.of(backend, new float[] {1, 2, 3, 4}, 2, 2));
            graph.requireGradient(x);
            Tensor y = ops.silu(x);
            assertThrows(IllegalArgumentException.class, () -> graph.free(x));
            assertThrows(IllegalArgumentException.class, () -> graph.disown(y));
            Tensor unrelated = graph.own(Tensor.zeros(backend, DType.F32, 8));
            graph.free(unrelated);
            assertThrows(IllegalArgumentException.class, () -> graph.free(unrelated));
            kept = graph.disown(graph.own(Tensor.of(backend, new float[] {5, 6}, 2)));
        }
        assertEquals(2, kept.toFloatArray().length, "a disowned tensor outlives the graph");
        kept.close();
        assertEquals(before, backend.allocatedBytes());
    }

    private static void runAttentionBlock(Backend backend) {
        SplittableRandom random = new SplittableRandom(2);
        try (Graph graph = new Graph(backend, true)) {
            Ops ops = new Ops(graph);
            Tensor x = graph.own(Tensor.of(backend, TestData.normal(random, 6 * 8, 1), 6, 8));
            Tensor w = graph.own(Tensor.of(backend, TestData.normal(random, 8 * 8, 0.3), 8, 8));
            graph.requireGradient(x);
            graph.requireGradient(w);
            Tensor q = ops.rmsNorm(ops.linear(x, w, null), null, 1e-6f);
            Tensor out = ops.add(x, ops.attention(q, x, x, 2));
            graph.backward(out, graph.own(Tensor.of(backend, TestData.normal(random, 6 * 8, 1), 6, 8)));
            assertNotNull(graph.gradient(w));
        }
    }

    private static float[][] step(float[][] params, float[][] direction, double t) {
        float[][] out = new float[params.length][];
        for (int n = 0; n < params.length; n++) {
            out[n] = new float[params[n].length];
            for (int i = 0; i < params[n].length; i++) {
                out[n][i] = (float) (params[n][i] + t * direction[n][i]);
            }
        }
        return out;
    }

    private static float[] toFloat(double[] values) {
        float[] out = new float[values.length];
        for (int n = 0; n < values.length; n++) {
            out[n] = (float) values[n];
        }
        return out;
    }

    private static long elements(long[] shape) {
        long count = 1;
        for (long d : shape) {
            count *= d;
        }
        return count;
    }
}
