package org.fastvmt.motion;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.SplittableRandom;
import java.util.stream.Stream;

import org.fastvmt.backend.Backend;
import org.fastvmt.backend.Device;
import org.fastvmt.reference.FiniteDifferences;
import org.fastvmt.reference.MotionReference;
import org.fastvmt.reference.OpenBackends;
import org.fastvmt.reference.TestData;
import org.fastvmt.reference.Tolerance;
import org.fastvmt.tensor.DType;
import org.fastvmt.tensor.Tensor;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** The corresponding-window loss of every backend against {@link MotionReference}. */
class CorrespondingWindowLossTest {

    /** The loss is one fp32 reduction over up to 24 000 squares. */
    private static final Tolerance LOSS = new Tolerance(1e-5, 1e-4);
    /** The gradient is element-wise: a few fp32 roundings. */
    private static final Tolerance GRADIENT = new Tolerance(1e-6, 1e-5);
    private static final double FD_STEP = 1e-5;

    private static final OpenBackends BACKENDS = new OpenBackends();

    @AfterAll
    static void closeBackends() {
        BACKENDS.close();
    }

    /** Pair sets by size: a single token, a typical flow, and one large enough for many blocks. */
    record LossCase(String name, FramePairs pairs, int height, int width) {
        @Override
        public String toString() {
            return name;
        }
    }

    static Stream<Arguments> cases() {
        LossCase[] cases = {
            new LossCase("one token, two pairs", FramePairs.of(2, new int[] {0, 1, 1, 0}, new float[] {1f, 0.5f}), 1,
                    1),
            new LossCase("forward(4, 3): weights linspace(1, 0.8, 3)", FramePairs.forward(4, 3), 6, 8),
            new LossCase("6 pairs of 40x50 tokens", FramePairs.forward(3, 3), 40, 50),
        };
        return OpenBackends.devices().flatMap(device -> Stream.of(cases).map(c -> Arguments.of(device, c)));
    }

    @ParameterizedTest(name = "{0}: {1}")
    @MethodSource("cases")
    void lossAndGradientMatchTheReference(Device device, LossCase c) {
        Backend backend = BACKENDS.get(device);
        int pairs = c.pairs().count();
        int tokens = c.height() * c.width();
        SplittableRandom random = new SplittableRandom(tokens);
        float[] ref = TestData.normal(random, pairs * tokens * 2, 2);
        float[] gen = TestData.normal(random, pairs * tokens * 2, 2);
        float[] before = TestData.normal(random, pairs * tokens * 2, 1);
        double[] weights = TestData.toDouble(c.pairs().weights());
        float lossGrad = 0.75f;
        CorrespondingWindowLoss loss = new CorrespondingWindowLoss(backend);
        try (Tensor refT = Tensor.of(backend, ref, pairs, c.height(), c.width(), 2);
                Tensor genT = Tensor.of(backend, gen, pairs, c.height(), c.width(), 2);
                Tensor grad = Tensor.of(backend, before, pairs, c.height(), c.width(), 2)) {
            double[] refD = TestData.toDouble(ref);
            double[] genD = TestData.toDouble(gen);
            LOSS.assertClose("loss", MotionReference.windowLoss(refD, genD, weights, tokens),
                    loss.forward(refT, genT, c.pairs()));

            loss.backward(refT, genT, c.pairs(), lossGrad, grad);
            double[] expected = MotionReference.windowLossGradient(refD, genD, weights, tokens, lossGrad);
            float[] got = grad.toFloatArray();
            double[] added = new double[got.length];
            for (int n = 0; n < got.length; n++) {
                added[n] = got[n] - (double) before[n];
                expected[n] += before[n];
            }
            GRADIENT.assertClose("dDeltaGen (accumulated onto its previous content)", expected, got);

            FiniteDifferences.assertAtRandomCoordinates(GRADIENT, "dDeltaGen", added,
                    MotionReference.windowLossGradient(refD, genD, weights, tokens, lossGrad), genD,
                    x -> lossGrad * MotionReference.windowLoss(refD, x, weights, tokens), random, 4, FD_STEP);
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("org.fastvmt.reference.OpenBackends#devices")
    void lossOfHandComputedDeltas(Device device) {
        Backend backend = BACKENDS.get(device);
        FramePairs pairs = FramePairs.of(2, new int[] {0, 1, 1, 0}, new float[] {1f, 0.5f});
        CorrespondingWindowLoss loss = new CorrespondingWindowLoss(backend);
        try (Tensor ref = Tensor.of(backend, new float[] {1, 2, 3, 4}, 2, 1, 1, 2);
                Tensor gen = Tensor.of(backend, new float[] {0, 0, 3, 5}, 2, 1, 1, 2);
                Tensor grad = Tensor.zeros(backend, DType.F32, 2, 1, 1, 2)) {
            // (1·(1 + 4) + 0.5·(0 + 1)) / 2 pairs
            assertEquals(2.75f, loss.forward(ref, gen, pairs), 1e-6f);
            // 3 · (−2/2) · w · (ref − gen)
            loss.backward(ref, gen, pairs, 3f, grad);
            assertArrayEquals(new float[] {-3, -6, 0, 1.5f}, grad.toFloatArray(),
                    1e-6f);
            assertEquals(0f, loss.forward(ref, ref, pairs), 0f, "identical flows");
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("org.fastvmt.reference.OpenBackends#devices")
    void lossIsBitForBitRepeatable(Device device) {
        Backend backend = BACKENDS.get(device);
        FramePairs pairs = FramePairs.forward(3, 3);
        SplittableRandom random = new SplittableRandom(5);
        int n = pairs.count() * 40 * 50 * 2;
        CorrespondingWindowLoss loss = new CorrespondingWindowLoss(backend);
        try (Tensor ref = Tensor.of(backend, TestData.normal(random, n, 1), pairs.count(), 40, 50, 2);
                Tensor gen = Tensor.of(backend, TestData.normal(random, n, 1), pairs.count(), 40, 50, 2)) {
            float first = loss.forward(ref, gen, pairs);
            float second = loss.forward(ref, gen, pairs);
            assertEquals(Float.floatToRawIntBits(first), Float.floatToRawIntBits(second),
                    "loss " + first + " then " + second);
        }
    }
}
