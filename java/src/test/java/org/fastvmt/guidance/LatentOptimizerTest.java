package org.fastvmt.guidance;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.SplittableRandom;

import org.fastvmt.backend.Backend;
import org.fastvmt.backend.Device;
import org.fastvmt.reference.MotionReference;
import org.fastvmt.reference.MotionReference.AdamWState;
import org.fastvmt.reference.OpenBackends;
import org.fastvmt.reference.TestData;
import org.fastvmt.reference.Tolerance;
import org.fastvmt.tensor.DType;
import org.fastvmt.tensor.Tensor;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The fused AdamW step with gradient reuse, on every backend: against the reference AdamW in
 * double over a guidance loop, and reused steps bit for bit equal to fresh steps of the kept
 * gradient.
 */
class LatentOptimizerTest {

    /** Ten fp32 AdamW steps of size ~lr on O(1) latents. */
    private static final Tolerance ADAMW = new Tolerance(1e-6, 1e-5);
    /** An odd element count, so vectorised loops also run their tails. */
    private static final long[] LATENT_SHAPE = {3, 7, 11, 13};
    private static final int ELEMENTS = 3 * 7 * 11 * 13;

    private static final OpenBackends BACKENDS = new OpenBackends();

    @AfterAll
    static void closeBackends() {
        BACKENDS.close();
    }

    private static int[] bits(float[] x) {
        int[] out = new int[x.length];
        for (int n = 0; n < x.length; n++) {
            out[n] = Float.floatToRawIntBits(x[n]);
        }
        return out;
    }

    /**
     * The official loop: 10 iterations, lr 0.003 → 0.002, a fresh gradient when iteration % 3 == 0
     * (new random data each time), the kept one otherwise; compared after every iteration.
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("org.fastvmt.reference.OpenBackends#devices")
    void aGuidanceLoopMatchesTheReferenceAdamW(Device device) {
        Backend backend = BACKENDS.get(device);
        runLoop(backend, AdamWConfig.PYTORCH_DEFAULTS, StepSkippingPolicy.fastvmt(), 1);
        runLoop(backend, new AdamWConfig(0.8f, 0.99f, 1e-6f, 0.1f), StepSkippingPolicy.everyIteration(), 2);
    }

    private static void runLoop(Backend backend, AdamWConfig config, StepSkippingPolicy policy, long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        float[] start = TestData.normal(random, ELEMENTS, 1);
        LearningRateSchedule schedule = LearningRateSchedule.OFFICIAL;
        AdamWState reference = AdamWState.of(TestData.toDouble(start));
        float[] kept = null;
        try (Tensor latents = Tensor.of(backend, start, LATENT_SHAPE);
                LatentOptimizer optimizer = new LatentOptimizer(latents, config)) {
            for (int iteration = 0; iteration < schedule.iterations(); iteration++) {
                float lr = schedule.at(iteration);
                if (policy.freshGradient(iteration)) {
                    kept = TestData.normal(random, ELEMENTS, 0.5);
                    try (Tensor gradient = Tensor.of(backend, kept, LATENT_SHAPE)) {
                        optimizer.stepFresh(gradient, lr);
                    }
                } else {
                    optimizer.stepReused(lr);
                }
                MotionReference.adamwStep(reference, TestData.toDouble(kept), lr, config.beta1(), config.beta2(),
                        config.eps(), config.weightDecay(), iteration + 1);
                ADAMW.assertClose("latents after iteration " + iteration, reference.param(),
                        latents.toFloatArray());
                assertArrayEquals(bits(kept), bits(optimizer.reuseBuffer().gradient().toFloatArray()),
                        "the reuse buffer holds the last fresh gradient");
            }
            assertEquals(policy.freshCount(schedule.iterations()), optimizer.reuseBuffer().freshSteps());
            assertEquals(schedule.iterations() - policy.freshCount(schedule.iterations()),
                    optimizer.reuseBuffer().reusedSteps());
            assertEquals(schedule.iterations(), optimizer.stepCount());
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("org.fastvmt.reference.OpenBackends#devices")
    void aReusedStepEqualsAFreshStepOfTheKeptGradientBitForBit(Device device) {
        Backend backend = BACKENDS.get(device);
        SplittableRandom random = new SplittableRandom(3);
        float[] start = TestData.normal(random, ELEMENTS, 1);
        float[] g = TestData.normal(random, ELEMENTS, 1);
        try (Tensor reusing = Tensor.of(backend, start, LATENT_SHAPE);
                Tensor refreshing = Tensor.of(backend, start, LATENT_SHAPE);
                Tensor gradient = Tensor.of(backend, g, LATENT_SHAPE);
                LatentOptimizer a = new LatentOptimizer(reusing, AdamWConfig.PYTORCH_DEFAULTS);
                LatentOptimizer b = new LatentOptimizer(refreshing, AdamWConfig.PYTORCH_DEFAULTS)) {
            a.stepFresh(gradient, 0.003f);
            b.stepFresh(gradient, 0.003f);
            for (int step = 2; step <= 4; step++) {
                a.stepReused(0.0025f);
                b.stepFresh(gradient, 0.0025f);
                assertArrayEquals(bits(refreshing.toFloatArray()), bits(reusing.toFloatArray()), "step " + step);
            }
            assertTrue(!Arrays.equals(start, reusing.toFloatArray()), "the steps moved the latents");
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("org.fastvmt.reference.OpenBackends#devices")
    void resetStartsAfresh(Device device) {
        Backend backend = BACKENDS.get(device);
        SplittableRandom random = new SplittableRandom(4);
        float[] start = TestData.normal(random, ELEMENTS, 1);
        float[] g = TestData.normal(random, ELEMENTS, 1);
        try (Tensor latents = Tensor.of(backend, start, LATENT_SHAPE);
                Tensor gradient = Tensor.of(backend, g, LATENT_SHAPE);
                LatentOptimizer optimizer = new LatentOptimizer(latents, AdamWConfig.PYTORCH_DEFAULTS)) {
            optimizer.stepFresh(gradient, 0.003f);
            optimizer.stepReused(0.003f);
            optimizer.reset();
            assertEquals(0, optimizer.stepCount());
            assertThrows(IllegalStateException.class, () -> optimizer.stepReused(0.003f),
                    "no kept gradient after reset");
            float[] before = latents.toFloatArray();
            optimizer.stepFresh(gradient, 0.003f);
            // A first step again: m̂ = g, v̂ = g², from the latents as they were.
            AdamWState reference = AdamWState.of(TestData.toDouble(before));
            AdamWConfig c = AdamWConfig.PYTORCH_DEFAULTS;
            MotionReference.adamwStep(reference, TestData.toDouble(g), 0.003f, c.beta1(), c.beta2(), c.eps(),
                    c.weightDecay(), 1);
            ADAMW.assertClose("first step after reset", reference.param(), latents.toFloatArray());
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("org.fastvmt.reference.OpenBackends#devices")
    void badStepsAreRefused(Device device) {
        Backend backend = BACKENDS.get(device);
        float[] nan = new float[ELEMENTS];
        nan[17] = Float.NaN;
        try (Tensor latents = Tensor.zeros(backend, DType.F32, LATENT_SHAPE);
                Tensor shortGradient = Tensor.zeros(backend, DType.F32, 5);
                Tensor nanGradient = Tensor.of(backend, nan, LATENT_SHAPE);
                Tensor bf16 = Tensor.zeros(backend, DType.BF16, LATENT_SHAPE);
                LatentOptimizer optimizer = new LatentOptimizer(latents, AdamWConfig.PYTORCH_DEFAULTS)) {
            assertThrows(IllegalStateException.class, () -> optimizer.stepReused(0.003f), "nothing to reuse yet");
            assertMessageNames("gradient", assertThrows(IllegalArgumentException.class,
                    () -> optimizer.stepFresh(shortGradient, 0.003f)));
            assertMessageNames("gradient", assertThrows(IllegalArgumentException.class,
                    () -> optimizer.stepFresh(nanGradient, 0.003f)));
            assertMessageNames("lr", assertThrows(IllegalArgumentException.class,
                    () -> optimizer.stepFresh(latents, -1f)));
            assertMessageNames("latents", assertThrows(IllegalArgumentException.class,
                    () -> new LatentOptimizer(bf16, AdamWConfig.PYTORCH_DEFAULTS)));
            assertEquals(0, optimizer.stepCount(), "no refused step counted");
            assertArrayEquals(new float[ELEMENTS], latents.toFloatArray(), "no refused step ran");
        }
    }

    private static void assertMessageNames(String argument, IllegalArgumentException e) {
        assertTrue(e.getMessage().contains(argument), "the message should name " + argument + ": " + e.getMessage());
    }
}
