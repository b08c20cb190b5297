package org.fastvmt.motion;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import org.fastvmt.backend.Backend;
import org.fastvmt.backend.Device;
import org.fastvmt.nativeabi.FastVmtH;
import org.fastvmt.nativeabi.FastVmtLibrary;
import org.fastvmt.reference.MotionReference;
import org.fastvmt.reference.MotionReference.Shape;
import org.fastvmt.reference.OpenBackends;
import org.fastvmt.reference.TestData;
import org.fastvmt.reference.Tolerance;
import org.fastvmt.tensor.DType;
import org.fastvmt.tensor.Tensor;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Bad input through the Java API: each is refused with an IllegalArgumentException whose
 * message names the argument, before any kernel runs, and the backend keeps working.
 */
class MotionArgumentTest {

    private static final Shape SHAPE = new Shape(3, 4, 5, 8);
    private static final AmfParams PARAMS = new AmfParams(2, 1f, 2, 2, 3);
    private static final FramePairs PAIRS = FramePairs.forward(3, 2);
    private static final Tolerance VALID_CALL = new Tolerance(1e-4, 1e-3);

    private static final OpenBackends BACKENDS = new OpenBackends();

    @AfterAll
    static void closeBackends() {
        BACKENDS.close();
    }

    static Stream<Device> devicesWithoutBf16() {
        return OpenBackends.devices()
                .filter(device -> !FastVmtLibrary.load(device.label()).supportsDtype(FastVmtH.FVMT_DTYPE_BF16));
    }

    /** Asserts that {@code call} throws IllegalArgumentException naming {@code argument} as a word. */
    static IllegalArgumentException assertRefused(String argument, Executable call) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
        assertTrue(Pattern.compile("(?<![\\w])" + Pattern.quote(argument) + "(?![\\w])").matcher(e.getMessage()).find(),
                "the message should name " + argument + ": " + e.getMessage());
        return e;
    }

    private static Tensor random(Backend backend, long seed, Shape s) {
        return Tensor.of(backend, TestData.normal(new SplittableRandom(seed), s.elementCount(), 1), s.dims());
    }

    @Test
    void windowMustBeOddAndPositive() {
        assertRefused("window", () -> new AmfParams(2, 1f, 3, 4, 4));
        assertRefused("window", () -> new AmfParams(2, 1f, 3, 4, 0));
        assertRefused("window", () -> new AmfParams(2, 1f, 3, 4, -3));
        assertRefused("window", () -> PARAMS.withWindow(20));
        assertRefused("heads", () -> new AmfParams(0, 1f, 3, 4, 5));
        assertRefused("temperature", () -> new AmfParams(2, Float.NaN, 3, 4, 5));
        assertRefused("temperature", () -> new AmfParams(2, 0f, 3, 4, 5));
        assertRefused("tileHeight", () -> new AmfParams(2, 1f, 0, 4, 5));
        assertRefused("tileWidth", () -> new AmfParams(2, 1f, 3, -1, 5));
    }

    @Test
    void pairsMustNameFramesInRange() {
        assertRefused("pairs[1]", () -> FramePairs.of(3, new int[] {0, 1, 2, 3}, new float[] {1, 1}));
        assertRefused("pairs[0]", () -> FramePairs.of(3, new int[] {-1, 0}, new float[] {1}));
        assertRefused("pairs", () -> FramePairs.of(3, new int[] {0, 1, 2}, new float[] {1}));
        assertRefused("weights", () -> FramePairs.of(3, new int[] {0, 1}, new float[] {1, 1}));
        assertRefused("repeats", () -> FramePairs.of(3, new int[] {0, 1, 2, 2, 0, 1}, new float[] {1, 1, 1}));
        assertRefused("sf", () -> FramePairs.forward(3, 0));
        assertRefused("frames", () -> FramePairs.all(0));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("org.fastvmt.reference.OpenBackends#devices")
    void shapesOfQAndKMustAgree(Device device) {
        Backend backend = BACKENDS.get(device);
        AttentionMotionFlow amf = new AttentionMotionFlow(backend);
        try (Tensor q = random(backend, 1, SHAPE); Tensor k = random(backend, 2, SHAPE);
                Tensor narrowK = random(backend, 3, new Shape(3, 4, 4, 8));
                Tensor flatQ = Tensor.zeros(backend, DType.F32, 3, 20, 8)) {
            assertRefused("k", () -> amf.full(q, narrowK, PAIRS, PARAMS).close());
            assertRefused("k", () -> amf.windowed(q, narrowK, PAIRS, PARAMS).close());
            assertRefused("q", () -> amf.full(flatQ, flatQ, PAIRS, PARAMS).close());
            assertRefused("pairs", () -> amf.full(q, k, FramePairs.forward(4, 2), PARAMS).close());
            assertRefused("heads", () -> amf.full(q, k, PAIRS, new AmfParams(3, 1f, 2, 2, 3)).close());
            assertRefused("tileHeight", () -> amf.windowed(q, k, PAIRS, PARAMS.withTile(5, 2)).close());
            assertRefused("tileWidth", () -> amf.windowed(q, k, PAIRS, PARAMS.withTile(2, 6)).close());
            stillWorks(backend, q, k);
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("org.fastvmt.reference.OpenBackends#devices")
    void nanAndInfinityAreRefused(Device device) {
        Backend backend = BACKENDS.get(device);
        AttentionMotionFlow amf = new AttentionMotionFlow(backend);
        float[] withNaN = TestData.normal(new SplittableRandom(4), SHAPE.elementCount(), 1);
        withNaN[37] = Float.NaN;
        float[] withInfinity = TestData.normal(new SplittableRandom(5), SHAPE.elementCount(), 1);
        withInfinity[SHAPE.elementCount() - 1] = Float.NEGATIVE_INFINITY;
        float[] upstream = new float[PAIRS.count() * SHAPE.tokensPerFrame() * 2];
        upstream[3] = Float.POSITIVE_INFINITY;
        try (Tensor q = random(backend, 1, SHAPE); Tensor k = random(backend, 2, SHAPE);
                Tensor badQ = Tensor.of(backend, withNaN, SHAPE.dims());
                Tensor badK = Tensor.of(backend, withInfinity, SHAPE.dims());
                Tensor badUpstream = Tensor.of(backend, upstream, PAIRS.count(), 4, 5, 2);
                Tensor dq = Tensor.zeros(backend, DType.F32, SHAPE.dims());
                Tensor dk = Tensor.zeros(backend, DType.F32, SHAPE.dims())) {
            assertRefused("q", () -> amf.full(badQ, k, PAIRS, PARAMS).close());
            assertRefused("k", () -> amf.windowed(q, badK, PAIRS, PARAMS).close());
            assertRefused("q", () -> amf.fullBackward(badQ, k, PAIRS, PARAMS, badUpstream, dq, dk));
            assertRefused("dDelta", () -> amf.fullBackward(q, k, PAIRS, PARAMS, badUpstream, dq, dk));
            try (WindowedFlow flow = amf.windowed(q, k, PAIRS, PARAMS)) {
                assertRefused("k", () -> new TrackingLoss(backend).forward(badK, flow));
                assertRefused("dDelta", () -> amf.windowedBackward(q, k, flow, badUpstream, dq, dk));
            }
            assertEquals(0f, maxAbs(dq.toFloatArray()) + maxAbs(dk.toFloatArray()), "nothing was written");
            stillWorks(backend, q, k);
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("org.fastvmt.reference.OpenBackends#devices")
    void gradientsMustHaveTheirShapes(Device device) {
        Backend backend = BACKENDS.get(device);
        AttentionMotionFlow amf = new AttentionMotionFlow(backend);
        Shape other = new Shape(3, 4, 5, 4);
        try (Tensor q = random(backend, 1, SHAPE); Tensor k = random(backend, 2, SHAPE);
                Tensor upstream = Tensor.zeros(backend, DType.F32, PAIRS.count(), 4, 5, 2);
                Tensor shortUpstream = Tensor.zeros(backend, DType.F32, PAIRS.count() - 1, 4, 5, 2);
                Tensor dq = Tensor.zeros(backend, DType.F32, SHAPE.dims());
                Tensor dk = Tensor.zeros(backend, DType.F32, SHAPE.dims());
                Tensor wrong = Tensor.zeros(backend, DType.F32, other.dims());
                Tensor bf16Gradient = Tensor.zeros(backend, DType.BF16, SHAPE.dims());
                WindowedFlow flow = amf.windowed(q, k, PAIRS, PARAMS)) {
            assertRefused("dq", () -> amf.fullBackward(q, k, PAIRS, PARAMS, upstream, wrong, dk));
            assertRefused("dk", () -> amf.fullBackward(q, k, PAIRS, PARAMS, upstream, dq, wrong));
            assertRefused("dq", () -> amf.fullBackward(q, k, PAIRS, PARAMS, upstream, bf16Gradient, dk));
            assertRefused("dDelta", () -> amf.fullBackward(q, k, PAIRS, PARAMS, shortUpstream, dq, dk));
            assertRefused("dk", () -> amf.windowedBackward(q, k, flow, upstream, dq, wrong));
            assertRefused("dk", () -> new TrackingLoss(backend).backward(k, flow, 1f, wrong));
            assertRefused("dDeltaGen", () -> new CorrespondingWindowLoss(backend).backward(flow.delta(),
                    flow.delta(), PAIRS, 1f, shortUpstream));
            assertRefused("deltaRef", () -> new CorrespondingWindowLoss(backend).forward(shortUpstream,
                    flow.delta(), PAIRS));
            assertRefused("k", () -> new TrackingLoss(backend).forward(wrong, flow));
            stillWorks(backend, q, k);
        }
    }

    @ParameterizedTest(name = "{0}", allowZeroInvocations = true)
    @MethodSource("devicesWithoutBf16")
    void bf16IsRefusedWhereTheBuildLacksIt(Device device) {
        Backend backend = BACKENDS.get(device);
        AttentionMotionFlow amf = new AttentionMotionFlow(backend);
        float[] data = TestData.normal(new SplittableRandom(6), SHAPE.elementCount(), 1);
        try (Tensor q = Tensor.of(backend, DType.BF16, data, SHAPE.dims());
                Tensor k = Tensor.of(backend, DType.BF16, data, SHAPE.dims())) {
            assertRefused("q", () -> amf.full(q, k, PAIRS, PARAMS).close());
            assertRefused("q", () -> amf.windowed(q, k, PAIRS, PARAMS).close());
        }
    }

    /** After refusals, a valid call on the same backend still gives the right answer. */
    private static void stillWorks(Backend backend, Tensor q, Tensor k) {
        try (Tensor delta = new AttentionMotionFlow(backend).full(q, k, PAIRS, PARAMS)) {
            VALID_CALL.assertClose("Δ of a valid call after the refusals",
                    MotionReference.fullForward(TestData.toDouble(q.toFloatArray()),
                            TestData.toDouble(k.toFloatArray()), SHAPE, PARAMS, PAIRS.flat()),
                    delta.toFloatArray());
        }
    }

    private static float maxAbs(float[] x) {
        float max = 0;
        for (float v : x) {
            max = Math.max(max, Math.abs(v));
        }
        return max;
    }
}
