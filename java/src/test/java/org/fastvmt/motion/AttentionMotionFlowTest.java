package org.fastvmt.motion;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.fastvmt.motion.MotionFixtures.heldValues;
import static org.fastvmt.motion.MotionFixtures.qkTensor;

import java.util.Arrays;
import java.util.SplittableRandom;

import org.fastvmt.backend.Backend;
import org.fastvmt.backend.Device;
import org.fastvmt.reference.FiniteDifferences;
import org.fastvmt.reference.MotionReference;
import org.fastvmt.reference.MotionReference.Gradients;
import org.fastvmt.reference.MotionReference.Shape;
import org.fastvmt.reference.MotionReference.WindowedResult;
import org.fastvmt.reference.OpenBackends;
import org.fastvmt.reference.TestData;
import org.fastvmt.reference.Tolerance;
import org.fastvmt.tensor.DType;
import org.fastvmt.tensor.Tensor;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Full and windowed AMF of every backend against {@link MotionReference}: Δ, window origins, dQ
 * and dK over the {@link AmfCase} matrix, and each gradient also against central differences of
 * the reference forward at a few coordinates, which ties the kernel to the math directly.
 */
class AttentionMotionFlowTest {

    /** fp32 Q/K: Δ (positions of a few tokens) and gradients are short fp32 reductions. */
    private static final Tolerance F32 = new Tolerance(1e-4, 1e-3);
    /** bf16 Q/K, against the reference evaluated on the bf16-rounded inputs. */
    private static final Tolerance BF16 = new Tolerance(1e-2, 2e-2);
    private static final int FD_COORDINATES = 3;
    private static final double FD_STEP = 1e-5;

    private static final OpenBackends BACKENDS = new OpenBackends();

    @AfterAll
    static void closeBackends() {
        BACKENDS.close();
    }

    @ParameterizedTest(name = "{0}: {1}")
    @MethodSource("org.fastvmt.motion.AmfCase#onEveryDevice")
    void fullAmfMatchesTheReference(Device device, AmfCase c) {
        checkFull(BACKENDS.get(device), c, DType.F32, F32);
    }

    @ParameterizedTest(name = "{0}: {1}", allowZeroInvocations = true)
    @MethodSource("org.fastvmt.motion.AmfCase#bf16OnEveryDevice")
    void fullAmfOfBf16InputsMatchesTheReference(Device device, AmfCase c) {
        checkFull(BACKENDS.get(device), c, DType.BF16, BF16);
    }

    @ParameterizedTest(name = "{0}: {1}")
    @MethodSource("org.fastvmt.motion.AmfCase#onEveryDevice")
    void windowedAmfMatchesTheReference(Device device, AmfCase c) {
        checkWindowed(BACKENDS.get(device), c, DType.F32, F32);
    }

    @ParameterizedTest(name = "{0}: {1}", allowZeroInvocations = true)
    @MethodSource("org.fastvmt.motion.AmfCase#bf16OnEveryDevice")
    void windowedAmfOfBf16InputsMatchesTheReference(Device device, AmfCase c) {
        checkWindowed(BACKENDS.get(device), c, DType.BF16, BF16);
    }

    /** The backward accepts any in-range windows, not only the forward's: random ones here. */
    @ParameterizedTest(name = "{0}: {1}")
    @MethodSource("org.fastvmt.motion.AmfCase#onEveryDevice")
    void windowedBackwardDifferentiatesTheGivenWindows(Device device, AmfCase c) {
        Backend backend = BACKENDS.get(device);
        Shape s = c.shape();
        float[][] qk = c.qk();
        double[] q = heldValues(DType.F32, qk[0]);
        double[] k = heldValues(DType.F32, qk[1]);
        int[] origins = MotionFixtures.randomOrigins(new SplittableRandom(c.seed() + 5), s, c.params(), c.pairs());
        float[] upstream = c.upstream(2);
        AttentionMotionFlow amf = new AttentionMotionFlow(backend);
        try (Tensor qt = qkTensor(backend, DType.F32, qk[0], s); Tensor kt = qkTensor(backend, DType.F32, qk[1], s);
                WindowedFlow flow = MotionFixtures.flowWithOrigins(backend, s, c.params(), c.pairs(), origins);
                Tensor dDelta = Tensor.of(backend, upstream, c.pairs().count(), s.height(), s.width(), 2);
                Tensor dq = Tensor.zeros(backend, DType.F32, s.dims());
                Tensor dk = Tensor.zeros(backend, DType.F32, s.dims())) {
            amf.windowedBackward(qt, kt, flow, dDelta, dq, dk);
            int[] pairs = c.pairs().flat();
            double[] up = TestData.toDouble(upstream);
            checkGradients(F32, MotionReference.windowedBackward(q, k, s, c.params(), pairs, origins, up),
                    dq.toFloatArray(), dk.toFloatArray(), q, k, up, c.seed(),
                    (x, y) -> MotionReference.windowedForward(x, y, s, c.params(), pairs, origins));
        }
    }

    /** Gradients are accumulated (+=) into dq and dk, as the header says. */
    @ParameterizedTest(name = "{0}")
    @MethodSource("org.fastvmt.reference.OpenBackends#devices")
    void backwardAddsIntoTheGradientBuffers(Device device) {
        Backend backend = BACKENDS.get(device);
        AmfCase c = AmfCase.named("typical");
        Shape s = c.shape();
        float[][] qk = c.qk();
        double[] q = heldValues(DType.F32, qk[0]);
        double[] k = heldValues(DType.F32, qk[1]);
        SplittableRandom random = new SplittableRandom(3);
        float[] dqBefore = TestData.normal(random, s.elementCount(), 1);
        float[] dkBefore = TestData.normal(random, s.elementCount(), 1);
        float[] upstream = c.upstream(3);
        AttentionMotionFlow amf = new AttentionMotionFlow(backend);
        try (Tensor qt = qkTensor(backend, DType.F32, qk[0], s); Tensor kt = qkTensor(backend, DType.F32, qk[1], s);
                Tensor dDelta = Tensor.of(backend, upstream, c.pairs().count(), s.height(), s.width(), 2);
                Tensor dq = Tensor.of(backend, dqBefore, s.dims());
                Tensor dk = Tensor.of(backend, dkBefore, s.dims())) {
            amf.fullBackward(qt, kt, c.pairs(), c.params(), dDelta, dq, dk);
            Gradients ref = MotionReference.fullBackward(q, k, s, c.params(), c.pairs().flat(),
                    TestData.toDouble(upstream));
            F32.assertClose("dq = before + dL/dQ", plus(dqBefore, ref.dq()), dq.toFloatArray());
            F32.assertClose("dk = before + dL/dK", plus(dkBefore, ref.dk()), dk.toFloatArray());
        }
    }

    /** The same call twice gives bit-identical Δ, origins, dq and dk (no order-dependent atomics). */
    @ParameterizedTest(name = "{0}")
    @MethodSource("org.fastvmt.reference.OpenBackends#devices")
    void forwardAndBackwardAreBitForBitRepeatable(Device device) {
        Backend backend = BACKENDS.get(device);
        AttentionMotionFlow amf = new AttentionMotionFlow(backend);
        for (AmfCase c : new AmfCase[] {AmfCase.named("largest"), AmfCase.named("pairs in odd order")}) {
            Shape s = c.shape();
            float[][] qk = c.qk();
            try (Tensor qt = qkTensor(backend, DType.F32, qk[0], s);
                    Tensor kt = qkTensor(backend, DType.F32, qk[1], s);
                    Tensor dDelta = Tensor.of(backend, c.upstream(4), c.pairs().count(), s.height(), s.width(), 2)) {
                float[][] first = runAll(amf, backend, c, qt, kt, dDelta);
                float[][] second = runAll(amf, backend, c, qt, kt, dDelta);
                String[] names = {"full Δ", "full dq", "full dk", "windowed Δ", "windowed dq", "windowed dk",
                        "origins"};
                for (int n = 0; n < names.length; n++) {
                    assertArrayEquals(bits(first[n]), bits(second[n]), c + ": " + names[n] + " differs between runs");
                }
            }
        }
    }

    private static float[][] runAll(AttentionMotionFlow amf, Backend backend, AmfCase c, Tensor qt, Tensor kt,
            Tensor dDelta) {
        long[] dims = c.shape().dims();
        try (Tensor delta = amf.full(qt, kt, c.pairs(), c.params());
                WindowedFlow flow = amf.windowed(qt, kt, c.pairs(), c.params());
                Tensor fullDq = Tensor.zeros(backend, DType.F32, dims);
                Tensor fullDk = Tensor.zeros(backend, DType.F32, dims);
                Tensor windowDq = Tensor.zeros(backend, DType.F32, dims);
                Tensor windowDk = Tensor.zeros(backend, DType.F32, dims)) {
            amf.fullBackward(qt, kt, c.pairs(), c.params(), dDelta, fullDq, fullDk);
            amf.windowedBackward(qt, kt, flow, dDelta, windowDq, windowDk);
            int[] origins = flow.windowOrigins().toIntArray();
            float[] originsAsFloats = new float[origins.length];
            for (int n = 0; n < origins.length; n++) {
                originsAsFloats[n] = origins[n];
            }
            return new float[][] {delta.toFloatArray(), fullDq.toFloatArray(), fullDk.toFloatArray(),
                    flow.delta().toFloatArray(), windowDq.toFloatArray(), windowDk.toFloatArray(), originsAsFloats};
        }
    }

    // --------------------------------------------------------------------------------- checks

    private static void checkFull(Backend backend, AmfCase c, DType dtype, Tolerance tolerance) {
        Shape s = c.shape();
        float[][] qk = c.qk();
        double[] q = heldValues(dtype, qk[0]);
        double[] k = heldValues(dtype, qk[1]);
        int[] pairs = c.pairs().flat();
        float[] upstream = c.upstream(0);
        double[] up = TestData.toDouble(upstream);
        AttentionMotionFlow amf = new AttentionMotionFlow(backend);
        try (Tensor qt = qkTensor(backend, dtype, qk[0], s); Tensor kt = qkTensor(backend, dtype, qk[1], s);
                Tensor delta = amf.full(qt, kt, c.pairs(), c.params());
                Tensor dDelta = Tensor.of(backend, upstream, c.pairs().count(), s.height(), s.width(), 2);
                Tensor dq = Tensor.zeros(backend, DType.F32, s.dims());
                Tensor dk = Tensor.zeros(backend, DType.F32, s.dims())) {
            tolerance.assertClose("Δ", MotionReference.fullForward(q, k, s, c.params(), pairs),
                    delta.toFloatArray());
            amf.fullBackward(qt, kt, c.pairs(), c.params(), dDelta, dq, dk);
            checkGradients(tolerance, MotionReference.fullBackward(q, k, s, c.params(), pairs, up),
                    dq.toFloatArray(), dk.toFloatArray(), q, k, up, c.seed(),
                    (x, y) -> MotionReference.fullForward(x, y, s, c.params(), pairs));
        }
    }

    private static void checkWindowed(Backend backend, AmfCase c, DType dtype, Tolerance tolerance) {
        Shape s = c.shape();
        float[][] qk = c.qk();
        double[] q = heldValues(dtype, qk[0]);
        double[] k = heldValues(dtype, qk[1]);
        int[] pairs = c.pairs().flat();
        float[] upstream = c.upstream(1);
        double[] up = TestData.toDouble(upstream);
        AttentionMotionFlow amf = new AttentionMotionFlow(backend);
        try (Tensor qt = qkTensor(backend, dtype, qk[0], s); Tensor kt = qkTensor(backend, dtype, qk[1], s);
                WindowedFlow flow = amf.windowed(qt, kt, c.pairs(), c.params());
                Tensor dDelta = Tensor.of(backend, upstream, c.pairs().count(), s.height(), s.width(), 2);
                Tensor dq = Tensor.zeros(backend, DType.F32, s.dims());
                Tensor dk = Tensor.zeros(backend, DType.F32, s.dims())) {
            WindowedResult ref = MotionReference.windowedForward(q, k, s, c.params(), pairs);
            int[] origins = MotionFixtures.reconcileOrigins(ref, flow.windowOrigins().toIntArray(), s, c.params());
            double[] refDelta = Arrays.equals(origins, ref.origins()) ? ref.delta()
                    : MotionReference.windowedForward(q, k, s, c.params(), pairs, origins);
            tolerance.assertClose("Δ", refDelta, flow.delta().toFloatArray());
            amf.windowedBackward(qt, kt, flow, dDelta, dq, dk);
            checkGradients(tolerance, MotionReference.windowedBackward(q, k, s, c.params(), pairs, origins, up),
                    dq.toFloatArray(), dk.toFloatArray(), q, k, up, c.seed(),
                    (x, y) -> MotionReference.windowedForward(x, y, s, c.params(), pairs, origins));
        }
    }

    private interface Forward {
        double[] delta(double[] q, double[] k);
    }

    /**
     * dq and dk against the reference backward everywhere, and at a few coordinates against
     * central differences of L = Σ dL/dΔ · Δ(Q, K) evaluated by the reference forward.
     */
    private static void checkGradients(Tolerance tolerance, Gradients ref, float[] dq, float[] dk, double[] q,
            double[] k, double[] upstream, long seed, Forward forward) {
        tolerance.assertClose("dq", ref.dq(), dq);
        tolerance.assertClose("dk", ref.dk(), dk);
        SplittableRandom random = new SplittableRandom(seed);
        FiniteDifferences.assertAtRandomCoordinates(tolerance, "dq", TestData.toDouble(dq), ref.dq(), q,
                x -> FiniteDifferences.weightedSum(upstream, forward.delta(x, k)), random, FD_COORDINATES, FD_STEP);
        FiniteDifferences.assertAtRandomCoordinates(tolerance, "dk", TestData.toDouble(dk), ref.dk(), k,
                x -> FiniteDifferences.weightedSum(upstream, forward.delta(q, x)), random, FD_COORDINATES, FD_STEP);
    }

    private static double[] plus(float[] a, double[] b) {
        double[] sum = new double[a.length];
        for (int n = 0; n < a.length; n++) {
            sum[n] = a[n] + b[n];
        }
        return sum;
    }

    static int[] bits(float[] x) {
        int[] out = new int[x.length];
        for (int n = 0; n < x.length; n++) {
            out[n] = Float.floatToRawIntBits(x[n]);
        }
        return out;
    }
}
