package org.fastvmt.tensor;

import static org.fastvmt.tensor.OpRun.assertClose;

import java.util.List;
import java.util.SplittableRandom;
import java.util.function.BiFunction;
import java.util.stream.Stream;

import org.fastvmt.backend.Backend;
import org.fastvmt.backend.Device;
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
 * fastvmt.h's gradient outputs accumulate (+=): an op applied twice to the same inputs, as in
 * add(op(p), op(p)), runs its backward twice into the same gradient buffers, so every input
 * must receive exactly twice what one application gives (which the other op tests prove against
 * the reference). A kernel that writes instead of adding gives once, not twice.
 */
class OpsAccumulationTest {

    /** 2·g against g + g accumulated in another order: equal to fp32 rounding. */
    private static final Tolerance F32 = new Tolerance(1e-5, 1e-5);

    private static final OpenBackends BACKENDS = new OpenBackends();

    @AfterAll
    static void closeBackends() {
        BACKENDS.close();
    }

    record OpCase(String name, long[][] shapes, BiFunction<Ops, Tensor[], Tensor> op) {
        @Override
        public String toString() {
            return name;
        }
    }

    private static long[][] shapes(long[]... shapes) {
        return shapes;
    }

    private static final List<OpCase> OPS = List.of(
            new OpCase("linear", shapes(new long[] {3, 7}, new long[] {5, 7}, new long[] {5}),
                    (o, p) -> o.linear(p[0], p[1], p[2])),
            new OpCase("layerNorm", shapes(new long[] {3, 9}, new long[] {9}, new long[] {9}),
                    (o, p) -> o.layerNorm(p[0], p[1], p[2], 1e-6f)),
            new OpCase("rmsNorm", shapes(new long[] {3, 9}, new long[] {9}), (o, p) -> o.rmsNorm(p[0], p[1], 1e-6f)),
            new OpCase("modulate", shapes(new long[] {4, 5}, new long[] {5}, new long[] {5}),
                    (o, p) -> o.modulate(p[0], p[1], p[2])),
            new OpCase("gatedResidual", shapes(new long[] {4, 5}, new long[] {4, 5}, new long[] {5}),
                    (o, p) -> o.gatedResidual(p[0], p[1], p[2])),
            new OpCase("geluTanh", shapes(new long[] {3, 11}), (o, p) -> o.geluTanh(p[0])),
            new OpCase("silu", shapes(new long[] {3, 11}), (o, p) -> o.silu(p[0])),
            new OpCase("rope3d", shapes(new long[] {2 * 2 * 3, 2 * 12}), (o, p) -> o.rope3d(p[0], 2, 2, 3, 2, 1e4f)),
            new OpCase("attention", shapes(new long[] {5, 8}, new long[] {7, 8}, new long[] {7, 8}),
                    (o, p) -> o.attention(p[0], p[1], p[2], 2)),
            new OpCase("timestepEmbedding", shapes(new long[] {3}), (o, p) -> o.timestepEmbedding(p[0], 16)),
            new OpCase("patchify", shapes(new long[] {2, 2, 4, 4}),
                    (o, p) -> o.patchify(p[0], 1, 2, 2, PatchLayout.CHANNEL_LAST)),
            new OpCase("unpatchify", shapes(new long[] {8, 8}),
                    (o, p) -> o.unpatchify(p[0], 2, 2, 4, 4, 1, 2, 2, PatchLayout.CHANNEL_FIRST)));

    static Stream<Arguments> ops() {
        return OpenBackends.onEveryDevice(OPS);
    }

    @ParameterizedTest(name = "{0}: {1}")
    @MethodSource("ops")
    void twoApplicationsGiveTwiceTheGradient(Device device, OpCase op) {
        Backend backend = BACKENDS.get(device);
        SplittableRandom values = new SplittableRandom(op.name().hashCode());
        Input[] inputs = new Input[op.shapes().length];
        for (int n = 0; n < inputs.length; n++) {
            inputs[n] = Input.trained("input " + n, TestData.normal(values, size(op.shapes()[n]), 1),
                    op.shapes()[n]);
        }
        // The same seed draws the same upstream for op(p) and for add(op(p), op(p)), whose
        // two halves each receive that upstream.
        Result once = OpRun.run(backend, new SplittableRandom(5), op.op(), inputs);
        Result twice = OpRun.run(backend, new SplittableRandom(5),
                (ops, t) -> ops.add(op.op().apply(ops, t), op.op().apply(ops, t)), inputs);
        for (int n = 0; n < inputs.length; n++) {
            double[] doubled = TestData.toDouble(once.gradient(n));
            for (int i = 0; i < doubled.length; i++) {
                doubled[i] *= 2;
            }
            assertClose(F32, device + " " + op + ": gradient of input " + n + " after two applications", doubled,
                    twice.gradient(n));
        }
    }

    private static int size(long[] shape) {
        int size = 1;
        for (long d : shape) {
            size *= (int) d;
        }
        return size;
    }
}
