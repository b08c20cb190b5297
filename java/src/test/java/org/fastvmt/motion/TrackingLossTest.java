package org.fastvmt.motion;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.fastvmt.motion.MotionFixtures.heldValues;
import static org.fastvmt.motion.MotionFixtures.qkTensor;

import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import org.fastvmt.backend.Backend;
import org.fastvmt.backend.Device;
import org.fastvmt.reference.FiniteDifferences;
import org.fastvmt.reference.MotionReference;
import org.fastvmt.reference.MotionReference.Shape;
import org.fastvmt.reference.OpenBackends;
import org.fastvmt.reference.TestData;
import org.fastvmt.reference.Tolerance;
import org.fastvmt.tensor.DType;
import org.fastvmt.tensor.Tensor;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The tracking loss of every backend against {@link MotionReference}, in windows the test
 * chooses (so the loss is tested apart from the windowed forward) and in the windows a real
 * windowed forward chose.
 */
class TrackingLossTest {

    /** The loss: window means (≤ 25 keys), norms, and a mean over ≤ 50 terms, in fp32. */
    private static final Tolerance LOSS = new Tolerance(1e-5, 1e-4);
    /** Gradients are O(1e-3) per key (1 / (frames · couples · tiles · window)). */
    private static final Tolerance GRADIENT = new Tolerance(1e-6, 1e-4);
    /** bf16 keys, against the reference evaluated on the bf16-rounded keys. */
    private static final Tolerance BF16_LOSS = new Tolerance(1e-3, 2e-2);
    private static final Tolerance BF16_GRADIENT = new Tolerance(1e-4, 2e-2);
    private static final float LOSS_GRAD = 0.7f;
    private static final double FD_STEP = 1e-5;

    private static final OpenBackends BACKENDS = new OpenBackends();

    @AfterAll
    static void closeBackends() {
        BACKENDS.close();
    }

    /** The AMF cases whose pair sets have couples, plus one whose pair set has none. */
    static Stream<Arguments> cases() {
        return OpenBackends.devices().flatMap(device -> Stream.of(AmfCase.named("typical"),
                AmfCase.named("frame smaller than the window"), AmfCase.named("H and W not divisible"),
                AmfCase.named("sf > F"), AmfCase.named("pairs in odd order"), AmfCase.named("largest"),
                AmfCase.named("1x1 frames")).map(c -> Arguments.of(device, c)));
    }

    static Stream<Arguments> bf16Cases() {
        return OpenBackends.devicesWithBf16()
                .flatMap(device -> Stream.of(AmfCase.named("typical"), AmfCase.named("pairs in odd order"))
                        .map(c -> Arguments.of(device, c)));
    }

    @ParameterizedTest(name = "{0}: {1}")
    @MethodSource("cases")
    void lossAndGradientInChosenWindowsMatchTheReference(Device device, AmfCase c) {
        int[] origins = MotionFixtures.randomOrigins(new SplittableRandom(c.seed() + 9), c.shape(), c.params(),
                c.pairs());
        check(BACKENDS.get(device), c, DType.F32, origins, LOSS, GRADIENT);
    }

    @ParameterizedTest(name = "{0}: {1}", allowZeroInvocations = true)
    @MethodSource("bf16Cases")
    void lossAndGradientOfBf16KeysMatchTheReference(Device device, AmfCase c) {
        int[] origins = MotionFixtures.randomOrigins(new SplittableRandom(c.seed() + 10), c.shape(), c.params(),
                c.pairs());
        check(BACKENDS.get(device), c, DType.BF16, origins, BF16_LOSS, BF16_GRADIENT);
    }

    /** The loss reads the windows the backend's own windowed forward chose. */
    @ParameterizedTest(name = "{0}")
    @MethodSource("org.fastvmt.reference.OpenBackends#devices")
    void lossInTheWindowsOfAWindowedForward(Device device) {
        Backend backend = BACKENDS.get(device);
        AmfCase c = AmfCase.named("largest");
        Shape s = c.shape();
        float[][] qk = c.qk();
        AttentionMotionFlow amf = new AttentionMotionFlow(backend);
        TrackingLoss tracking = new TrackingLoss(backend);
        try (Tensor qt = qkTensor(backend, DType.F32, qk[0], s); Tensor kt = qkTensor(backend, DType.F32, qk[1], s);
                WindowedFlow flow = amf.windowed(qt, kt, c.pairs(), c.params())) {
            int[] origins = flow.windowOrigins().toIntArray();
            LOSS.assertClose("loss", MotionReference.trackingLoss(TestData.toDouble(qk[1]), s, c.params(),
                    c.pairs().flat(), origins), tracking.forward(kt, flow));
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("org.fastvmt.reference.OpenBackends#devices")
    void handComputedLosses(Device device) {
        Backend backend = BACKENDS.get(device);
        Shape s = new Shape(4, 4, 5, 2);
        AmfParams params = new AmfParams(1, 1f, 2, 2, 3);
        FramePairs pairs = FramePairs.forward(4, 3);
        // K_j = j·(3, 4) at every token: every couple's window means differ by (3, 4), so L = 5.
        float[] stepping = new float[s.elementCount()];
        // Every frame the same and every window the same: L = 0, and the gradient at d = 0 is 0.
        float[] still = new float[s.elementCount()];
        float[] frame = TestData.normal(new SplittableRandom(1), s.tokensPerFrame() * 2, 1);
        for (int f = 0; f < 4; f++) {
            for (int token = 0; token < s.tokensPerFrame(); token++) {
                stepping[(f * s.tokensPerFrame() + token) * 2] = 3f * f;
                stepping[(f * s.tokensPerFrame() + token) * 2 + 1] = 4f * f;
            }
            System.arraycopy(frame, 0, still, f * frame.length, frame.length);
        }
        int[] origins = new int[pairs.count() * 6 * 2];
        Arrays.fill(origins, 1);
        TrackingLoss tracking = new TrackingLoss(backend);
        try (WindowedFlow flow = MotionFixtures.flowWithOrigins(backend, s, params, pairs, origins);
                Tensor steppingKeys = Tensor.of(backend, stepping, s.dims());
                Tensor stillKeys = Tensor.of(backend, still, s.dims());
                Tensor dk = Tensor.zeros(backend, DType.F32, s.dims());
                WindowedFlow uncoupled = MotionFixtures.flowWithOrigins(backend, s, params,
                        FramePairs.consecutive(4), new int[3 * 6 * 2])) {
            assertEquals(5f, tracking.forward(steppingKeys, flow), 1e-5f);
            assertEquals(0f, tracking.forward(stillKeys, flow), 0f);
            tracking.backward(stillKeys, flow, 1f, dk);
            assertArrayEquals(new float[s.elementCount()], dk.toFloatArray(), 0f);
            assertEquals(0f, tracking.forward(steppingKeys, uncoupled), 0f, "consecutive pairs have no couples");
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("org.fastvmt.reference.OpenBackends#devices")
    void backwardIsBitForBitRepeatable(Device device) {
        Backend backend = BACKENDS.get(device);
        AmfCase c = AmfCase.named("largest");
        Shape s = c.shape();
        int[] origins = MotionFixtures.randomOrigins(new SplittableRandom(4), s, c.params(), c.pairs());
        TrackingLoss tracking = new TrackingLoss(backend);
        try (Tensor kt = qkTensor(backend, DType.F32, c.qk()[1], s);
                WindowedFlow flow = MotionFixtures.flowWithOrigins(backend, s, c.params(), c.pairs(), origins);
                Tensor first = Tensor.zeros(backend, DType.F32, s.dims());
                Tensor second = Tensor.zeros(backend, DType.F32, s.dims())) {
            tracking.backward(kt, flow, LOSS_GRAD, first);
            tracking.backward(kt, flow, LOSS_GRAD, second);
            assertArrayEquals(AttentionMotionFlowTest.bits(first.toFloatArray()),
                    AttentionMotionFlowTest.bits(second.toFloatArray()), "dk differs between runs");
            assertEquals(Float.floatToRawIntBits(tracking.forward(kt, flow)),
                    Float.floatToRawIntBits(tracking.forward(kt, flow)), "loss differs between runs");
        }
    }

    private static void check(Backend backend, AmfCase c, DType dtype, int[] origins, Tolerance lossTolerance,
            Tolerance gradientTolerance) {
        Shape s = c.shape();
        float[] keys = c.qk()[1];
        double[] k = heldValues(dtype, keys);
        int[] pairs = c.pairs().flat();
        TrackingLoss tracking = new TrackingLoss(backend);
        try (Tensor kt = qkTensor(backend, dtype, keys, s);
                WindowedFlow flow = MotionFixtures.flowWithOrigins(backend, s, c.params(), c.pairs(), origins);
                Tensor dk = Tensor.zeros(backend, DType.F32, s.dims())) {
            lossTolerance.assertClose("loss", MotionReference.trackingLoss(k, s, c.params(), pairs, origins),
                    tracking.forward(kt, flow));
            tracking.backward(kt, flow, LOSS_GRAD, dk);
            float[] got = dk.toFloatArray();
            double[] expected = MotionReference.trackingLossGradient(k, s, c.params(), pairs, origins, LOSS_GRAD);
            gradientTolerance.assertClose("dk", expected, got);

            FiniteDifferences.assertAtRandomCoordinates(gradientTolerance, "dk", TestData.toDouble(got), expected, k,
                    x -> LOSS_GRAD * MotionReference.trackingLoss(x, s, c.params(), pairs, origins),
                    new SplittableRandom(c.seed()), 4, FD_STEP);
        }
    }
}
