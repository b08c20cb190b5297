package org.fastvmt.model.wan;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.util.Arrays;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.ToDoubleFunction;
import java.util.stream.IntStream;

import org.fastvmt.backend.Backend;
import org.fastvmt.backend.Device;
import org.fastvmt.reference.FiniteDifferences;
import org.fastvmt.reference.OpenBackends;
import org.fastvmt.reference.TestData;
import org.fastvmt.reference.Tolerance;
import org.fastvmt.reference.WanReference;
import org.fastvmt.tensor.DType;
import org.fastvmt.tensor.Tensor;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The Wan2.1 DiT on every backend, on {@link WanConfig#TINY} and a latent of 3×2×3 tokens:
 * forward against the double-precision {@link WanReference}; the checkpointed latent gradient
 * against central differences of the reference; the truncated forward against the full one;
 * backends against each other; bf16 weights; memory; bad input.
 */
class WanDiTTest {

    private static final OpenBackends BACKENDS = new OpenBackends();

    private static final WanConfig CONFIG = WanConfig.TINY;
    /** latent [4, 3, 4, 6] → 3 × 2 × 3 tokens with the (1, 2, 2) patch. */
    private static final int FRAMES = 3;
    private static final int HEIGHT = 4;
    private static final int WIDTH = 6;
    private static final int TEXT_ROWS = 5;
    private static final float TIMESTEP = 700f;
    private static final long[] LATENT_SHAPE = {CONFIG.inDim(), FRAMES, HEIGHT, WIDTH};
    private static final int TOKENS = 3 * 2 * 3;

    private static final float[] LATENT = TestData.normal(new SplittableRandom(11), 4 * FRAMES * HEIGHT * WIDTH, 1.0);
    private static final float[] TEXT = TestData.normal(new SplittableRandom(12), TEXT_ROWS * CONFIG.textDim(), 1.0);
    /** The upstream gradients R1 = dL/dQ and R2 = dL/dK of L = <R1, Q> + <R2, K>. */
    private static final float[] R1 = TestData.normal(new SplittableRandom(13), TOKENS * CONFIG.dim(), 1.0);
    private static final float[] R2 = TestData.normal(new SplittableRandom(14), TOKENS * CONFIG.dim(), 1.0);
    private static final long SEED = 5;

    /**
     * fp32 model against the double reference, through two blocks of width 64: every op rounds at
     * ~1e-7 relative and sums are short. Measured on cpu: 4.8e-7 at most on velocities up to 2.3
     * (Q, K: 8e-7 of 3.3; context, e0: 1.6e-7), so this leaves a margin of about 20.
     */
    private static final Tolerance FP32_MODEL = new Tolerance(1e-5, 1e-4);
    /**
     * The fp32 gradient against central differences (step 1e-4) of the double reference, whose
     * own error is ~1e-8 (steps 1e-3 to 1e-5 agree to 1e-7): what remains is the fp32 model's
     * rounding through the backward. Scaled by the largest |gradient| (about 12): atol = 1e-5·max,
     * rtol 1e-4; measured 2.4e-6 at most, i.e. 2e-7·max. A block left out of the backward is off
     * by O(max).
     */
    private static final double GRADIENT_ATOL = 1e-5;
    private static final double GRADIENT_RTOL = 1e-4;
    private static final double FD_STEP = 1e-4;
    /** Two builds of the same fp32 model: different summation orders only. */
    private static final Tolerance BACKENDS_AGREE = new Tolerance(1e-5, 1e-4);
    /**
     * bf16 matrices (8-bit mantissa, relative rounding up to 2^-9 ≈ 2e-3 per weight) against fp32
     * ones: measured 4e-3 at most on velocities up to 2.3.
     */
    private static final Tolerance BF16_MODEL = new Tolerance(2e-2, 2e-2);

    /** The finite-difference gradients of the reference, by block: the same on every backend. */
    private static final Map<Integer, double[]> FD_GRADIENTS = new ConcurrentHashMap<>();

    @AfterAll
    static void closeBackends() {
        BACKENDS.close();
    }

    static java.util.stream.Stream<Device> devices() {
        return OpenBackends.devices();
    }

    /** The model, its inputs and the conditioning on one backend; closes them all. */
    private record Fixture(WanWeights weights, WanDiT model, Tensor latent, Tensor text, WanConditioning conditioning)
            implements AutoCloseable {

        static Fixture open(Backend backend, DType matrices) {
            return open(backend, CONFIG, matrices);
        }

        static Fixture open(Backend backend, WanConfig config, DType matrices) {
            WanWeights weights = WanWeights.random(config, backend, SEED, matrices);
            Tensor latent = Tensor.of(backend, LATENT, LATENT_SHAPE);
            Tensor text = Tensor.of(backend, TEXT, TEXT_ROWS, config.textDim());
            WanDiT model = new WanDiT(weights);
            return new Fixture(weights, model, latent, text, model.condition(text, TIMESTEP));
        }

        @Override
        public void close() {
            conditioning.close();
            text.close();
            latent.close();
            weights.close();
        }
    }

    private static WanReference.Conditioning referenceConditioning(WanReference reference) {
        return reference.condition(TestData.toDouble(TEXT), TEXT_ROWS, TIMESTEP);
    }

    // ------------------------------------------------------------------ 1. forward against the reference

    @ParameterizedTest
    @MethodSource("devices")
    void forwardMatchesTheDoubleReference(Device device) {
        Backend backend = BACKENDS.get(device);
        try (Fixture f = Fixture.open(backend, DType.F32)) {
            WanReference reference = WanReference.of(f.weights());
            WanReference.Conditioning expected = referenceConditioning(reference);
            FP32_MODEL.assertClose("e", expected.e(), f.conditioning().e().toFloatArray());
            FP32_MODEL.assertClose("e0", expected.e0(), f.conditioning().e0().toFloatArray());
            FP32_MODEL.assertClose("context", expected.context(), f.conditioning().context().toFloatArray());
            assertArrayEquals(new long[] {CONFIG.textLength(), CONFIG.dim()}, f.conditioning().context().shape());

            double[] velocity = reference.forward(TestData.toDouble(LATENT), FRAMES, HEIGHT, WIDTH, expected);
            try (Tensor got = f.model().forward(f.latent(), f.conditioning())) {
                assertArrayEquals(new long[] {CONFIG.outDim(), FRAMES, HEIGHT, WIDTH}, got.shape());
                FP32_MODEL.assertClose("velocity on " + device, velocity, got.toFloatArray());
            }
            for (int block = 0; block < CONFIG.layers(); block++) {
                WanReference.QueryKey qk = reference.queryKey(TestData.toDouble(LATENT), FRAMES, HEIGHT, WIDTH,
                        expected, block);
                try (AttentionFeatures features = f.model().attentionFeatures(f.latent(), f.conditioning(), block)) {
                    assertArrayEquals(new long[] {3, 2, 3, CONFIG.dim()}, features.q().shape());
                    FP32_MODEL.assertClose("Q of block " + block, qk.q(), features.q().toFloatArray());
                    FP32_MODEL.assertClose("K of block " + block, qk.k(), features.k().toFloatArray());
                }
            }
        }
    }

    // ------------------------------------------------------------------ 2. latent gradient

    /** dL/dlatent of L = <R1, Q> + <R2, K> at {@code block}, by central differences of the reference. */
    private static double[] finiteDifferenceGradient(WanReference reference, int block) {
        return FD_GRADIENTS.computeIfAbsent(block, b -> {
            WanReference.Conditioning c = referenceConditioning(reference);
            double[] r1 = TestData.toDouble(R1);
            double[] r2 = TestData.toDouble(R2);
            ToDoubleFunction<double[]> loss = latent -> {
                WanReference.QueryKey qk = reference.queryKey(latent, FRAMES, HEIGHT, WIDTH, c, b);
                return FiniteDifferences.weightedSum(r1, qk.q()) + FiniteDifferences.weightedSum(r2, qk.k());
            };
            double[] at = TestData.toDouble(LATENT);
            double[] gradient = new double[at.length];
            for (int n = 0; n < at.length; n++) {
                gradient[n] = FiniteDifferences.derivative(loss, at, n, FD_STEP);
            }
            return gradient;
        });
    }

    private static float[] latentGradient(Fixture f, int block) {
        Backend backend = f.weights().backend();
        try (AttentionFeatures features = f.model().differentiableFeatures(f.latent(), f.conditioning(), block);
                Tensor dq = Tensor.of(backend, R1, features.q().shape());
                Tensor dk = Tensor.of(backend, R2, features.k().shape());
                Tensor dlatent = features.backward(dq, dk)) {
            assertArrayEquals(LATENT_SHAPE, dlatent.shape());
            return dlatent.toFloatArray();
        }
    }

    @ParameterizedTest
    @MethodSource("devices")
    void latentGradientMatchesFiniteDifferencesOfTheReference(Device device) {
        Backend backend = BACKENDS.get(device);
        try (Fixture f = Fixture.open(backend, DType.F32)) {
            WanReference reference = WanReference.of(f.weights());
            for (int block : IntStream.of(0, 1, CONFIG.layers() - 1).distinct().toArray()) {
                double[] expected = finiteDifferenceGradient(reference, block);
                double largest = Arrays.stream(expected).map(Math::abs).max().orElseThrow();
                assertTrue(largest > 1e-3, "the loss must depend on the latent");
                new Tolerance(GRADIENT_ATOL * largest, GRADIENT_RTOL).assertClose(
                        "dL/dlatent at block " + block + " on " + device, expected, latentGradient(f, block));
            }
        }
    }

    /** dQ alone, dK alone and both: the backward is linear in the seeds. */
    @ParameterizedTest
    @MethodSource("devices")
    void backwardIsLinearInItsSeedsAndRepeatable(Device device) {
        Backend backend = BACKENDS.get(device);
        try (Fixture f = Fixture.open(backend, DType.F32);
                AttentionFeatures features = f.model().differentiableFeatures(f.latent(), f.conditioning(), 1);
                Tensor dq = Tensor.of(backend, R1, features.q().shape());
                Tensor dk = Tensor.of(backend, R2, features.k().shape());
                Tensor both = features.backward(dq, dk);
                Tensor again = features.backward(dq, dk);
                Tensor fromQ = features.backward(dq, null);
                Tensor fromK = features.backward(null, dk)) {
            float[] sum = both.toFloatArray();
            assertArrayEquals(sum, again.toFloatArray(), "a second backward gives the same gradient");
            float[] q = fromQ.toFloatArray();
            float[] k = fromK.toFloatArray();
            double[] parts = new double[sum.length];
            for (int n = 0; n < sum.length; n++) {
                parts[n] = (double) q[n] + k[n];
            }
            new Tolerance(1e-5, 1e-5).assertClose("dQ-only + dK-only", parts, sum);
        }
    }

    // ------------------------------------------------------------------ 3. truncated = full

    @ParameterizedTest
    @MethodSource("devices")
    void truncatedForwardGivesTheFeaturesOfTheFullForward(Device device) {
        Backend backend = BACKENDS.get(device);
        try (Fixture f = Fixture.open(backend, DType.F32); Tensor velocity = f.model().forward(f.latent(),
                f.conditioning())) {
            float[] expectedVelocity = velocity.toFloatArray();
            for (int block = 0; block < CONFIG.layers(); block++) {
                try (WanDiT.Prediction full = f.model().forwardWithFeatures(f.latent(), f.conditioning(), block);
                        AttentionFeatures truncated = f.model().attentionFeatures(f.latent(), f.conditioning(), block);
                        AttentionFeatures kept = f.model().differentiableFeatures(f.latent(), f.conditioning(),
                                block)) {
                    assertArrayEquals(expectedVelocity, full.velocity().toFloatArray(), 1e-6f);
                    assertArrayEquals(full.q().shape(), truncated.q().shape());
                    assertArrayEquals(full.q().toFloatArray(), truncated.q().toFloatArray(), 1e-6f, "Q of block " + block);
                    assertArrayEquals(full.k().toFloatArray(), truncated.k().toFloatArray(), 1e-6f, "K of block " + block);
                    assertArrayEquals(truncated.q().toFloatArray(), kept.q().toFloatArray(), 1e-6f);
                    assertArrayEquals(truncated.k().toFloatArray(), kept.k().toFloatArray(), 1e-6f);
                    assertFalse(truncated.differentiable());
                    assertTrue(kept.differentiable());
                }
            }
        }
    }

    // ------------------------------------------------------------------ 4. backends agree

    @Test
    void emulatedCudaMatchesCpu() {
        assumeTrue(OpenBackends.devices().anyMatch(d -> d == Device.CUDAEMU), "cudaemu is not available here");
        float[][] velocity = new float[2][];
        float[][] gradient = new float[2][];
        Device[] pair = {Device.CPU, Device.CUDAEMU};
        for (int n = 0; n < 2; n++) {
            try (Fixture f = Fixture.open(BACKENDS.get(pair[n]), DType.F32);
                    Tensor v = f.model().forward(f.latent(), f.conditioning())) {
                velocity[n] = v.toFloatArray();
                gradient[n] = latentGradient(f, CONFIG.layers() - 1);
            }
        }
        BACKENDS_AGREE.assertClose("cudaemu velocity against cpu", TestData.toDouble(velocity[0]), velocity[1]);
        double largest = 0;
        for (float g : gradient[0]) {
            largest = Math.max(largest, Math.abs(g));
        }
        new Tolerance(1e-5 * largest, 1e-4).assertClose("cudaemu dL/dlatent against cpu",
                TestData.toDouble(gradient[0]), gradient[1]);
    }

    // ------------------------------------------------------------------ 5. bf16 matrices

    @ParameterizedTest
    @MethodSource("devices")
    void bf16MatricesStayCloseToTheF32Model(Device device) {
        Backend backend = BACKENDS.get(device);
        try (Fixture f32 = Fixture.open(backend, DType.F32); Fixture bf16 = Fixture.open(backend, DType.BF16);
                Tensor v32 = f32.model().forward(f32.latent(), f32.conditioning());
                Tensor v16 = bf16.model().forward(bf16.latent(), bf16.conditioning())) {
            assertEquals(DType.BF16, bf16.weights().get("blocks.0.ffn.0.weight").dtype());
            assertEquals(DType.BF16, bf16.weights().get("patch_embedding.weight").dtype());
            float[] got = v16.toFloatArray();
            BF16_MODEL.assertClose("bf16 velocity against the f32 model", TestData.toDouble(v32.toFloatArray()), got);
            // The bf16 model computes exactly (in fp32) with the rounded weights it holds.
            WanReference reference = WanReference.of(bf16.weights());
            double[] expected = reference.forward(TestData.toDouble(LATENT), FRAMES, HEIGHT, WIDTH,
                    referenceConditioning(reference));
            FP32_MODEL.assertClose("bf16 velocity against the reference of its rounded weights", expected, got);
            assertFalse(Arrays.equals(got, v32.toFloatArray()), "bf16 weights must differ from fp32 ones");
        }
    }

    // ------------------------------------------------------------------ 6. memory

    @ParameterizedTest
    @MethodSource("devices")
    void everyCallFreesWhatItAllocates(Device device) {
        Backend backend = BACKENDS.get(device);
        try (Fixture f = Fixture.open(backend, DType.F32)) {
            latentGradient(f, CONFIG.layers() - 1); // grows the shared workspace to its size for these shapes
            f.model().forward(f.latent(), f.conditioning()).close();
            long baseline = backend.allocatedBytes();

            f.model().forward(f.latent(), f.conditioning()).close();
            assertEquals(baseline, backend.allocatedBytes(), "after forward");
            f.model().forwardWithFeatures(f.latent(), f.conditioning(), 1).close();
            assertEquals(baseline, backend.allocatedBytes(), "after forwardWithFeatures");
            f.model().attentionFeatures(f.latent(), f.conditioning(), 1).close();
            assertEquals(baseline, backend.allocatedBytes(), "after attentionFeatures");
            latentGradient(f, CONFIG.layers() - 1);
            assertEquals(baseline, backend.allocatedBytes(), "after differentiableFeatures and backward");
            f.model().condition(f.text(), 10f).close();
            assertEquals(baseline, backend.allocatedBytes(), "after condition");
        }
    }

    /**
     * The checkpointed backward holds the inputs of the blocks up to the feature block and, on top
     * of them, one block's recomputed activations: its extra peak does not grow with the block.
     */
    @ParameterizedTest
    @MethodSource("devices")
    void checkpointedBackwardMemoryIsBounded(Device device) {
        Backend backend = BACKENDS.get(device);
        WanConfig fourBlocks = CONFIG.withLayers(4);
        long hidden = (long) TOKENS * CONFIG.dim() * Float.BYTES;
        long latentBytes = (long) LATENT.length * Float.BYTES;
        try (Fixture f = Fixture.open(backend, fourBlocks, DType.F32)) {
            latentGradient(f, 3); // warm the workspace
            long[] extra = new long[4];
            for (int block : new int[] {0, 1, 3}) {
                long baseline = backend.allocatedBytes();
                try (AttentionFeatures features = f.model().differentiableFeatures(f.latent(), f.conditioning(), block);
                        Tensor dq = Tensor.of(backend, R1, features.q().shape());
                        Tensor dk = Tensor.of(backend, R2, features.k().shape())) {
                    // q, k, the input of blocks 0..block and the latent copy; nothing else is kept
                    assertEquals(baseline + (2 + block + 1) * hidden + latentBytes + 2 * hidden,
                            backend.allocatedBytes(), "kept by the features of block " + block + " (with dq, dk)");
                    long before = backend.allocatedBytes();
                    backend.resetPeak();
                    features.backward(dq, dk).close();
                    extra[block] = backend.peakAllocatedBytes() - before;
                }
                assertEquals(baseline, backend.allocatedBytes());
            }
            // One block's activations are many hidden states (q, k, v, attention, ffn, ...); the
            // backward of block 3 may hold at most one more than that of block 1 (its own gradient).
            assertTrue(extra[3] <= extra[1] + hidden, "peak above the checkpoints: block 1 " + extra[1]
                    + " B, block 3 " + extra[3] + " B, one hidden state " + hidden + " B");
            assertTrue(extra[1] > 4 * hidden, "the recomputation of a block needs its activations: " + extra[1]);
        }
    }

    // ------------------------------------------------------------------ 7. bad input

    @ParameterizedTest
    @MethodSource("devices")
    void badInputIsRefusedWithAClearMessage(Device device) {
        Backend backend = BACKENDS.get(device);
        try (Fixture f = Fixture.open(backend, DType.F32)) {
            long baseline = backend.allocatedBytes();
            WanDiT model = f.model();
            WanConditioning c = f.conditioning();
            try (Tensor threeChannels = Tensor.zeros(backend, DType.F32, 3, FRAMES, HEIGHT, WIDTH);
                    Tensor oddHeight = Tensor.zeros(backend, DType.F32, 4, FRAMES, 5, WIDTH);
                    Tensor oddWidth = Tensor.zeros(backend, DType.F32, 4, FRAMES, HEIGHT, 7);
                    Tensor rank3 = Tensor.zeros(backend, DType.F32, 4, FRAMES, HEIGHT * WIDTH);
                    Tensor wideText = Tensor.zeros(backend, DType.F32, 2, CONFIG.textDim() + 1);
                    Tensor longText = Tensor.zeros(backend, DType.F32, CONFIG.textLength() + 1, CONFIG.textDim());
                    Tensor fullText = Tensor.zeros(backend, DType.F32, CONFIG.textLength(), CONFIG.textDim())) {
                refused("channels", () -> model.forward(threeChannels, c), "latent", "4 channels");
                refused("height", () -> model.forward(oddHeight, c), "latent", "multiples of the patch");
                refused("width", () -> model.attentionFeatures(oddWidth, c, 0), "latent", "multiples of the patch");
                refused("rank", () -> model.differentiableFeatures(rank3, c, 0), "latent", "[channels, frames");
                refused("text width", () -> model.condition(wideText, TIMESTEP), "textEmbeddings", "24 columns");
                refused("text rows", () -> model.condition(longText, TIMESTEP), "textEmbeddings", "1 to 16 rows");
                refused("timestep", () -> model.condition(fullText, Float.NaN), "timestep");
                refused("block -1", () -> model.attentionFeatures(f.latent(), c, -1), "block", "[0, 2)");
                refused("block 2", () -> model.differentiableFeatures(f.latent(), c, 2), "block", "[0, 2)");
                refused("feature block", () -> model.forwardWithFeatures(f.latent(), c, 2), "featureBlock");
                // a full-length prompt is fine
                model.condition(fullText, TIMESTEP).close();
            }
            try (AttentionFeatures plain = model.attentionFeatures(f.latent(), c, 0);
                    AttentionFeatures kept = model.differentiableFeatures(f.latent(), c, 0);
                    Tensor small = Tensor.zeros(backend, DType.F32, 3, CONFIG.dim());
                    Tensor dq = Tensor.zeros(backend, DType.F32, plain.q().shape())) {
                assertThrows(IllegalStateException.class, () -> plain.backward(dq, dq));
                refused("dQ size", () -> kept.backward(small, dq), "dQ", "elements");
                refused("dK size", () -> kept.backward(dq, small), "dK", "elements");
                refused("no seeds", () -> kept.backward(null, null), "dQ and dK");
            }
            try (WanConditioning other = WanConditioning.compute(f.weights(), f.text(), TIMESTEP)) {
                other.close();
                assertThrows(IllegalStateException.class, () -> model.forward(f.latent(), other));
            }
            assertEquals(baseline, backend.allocatedBytes(), "refused calls must not leak");
        }
    }

    private static void refused(String what, Executable call, String... inMessage) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call, what);
        for (String part : inMessage) {
            assertTrue(e.getMessage().contains(part), what + ": '" + e.getMessage() + "' should mention '" + part + "'");
        }
    }
}
