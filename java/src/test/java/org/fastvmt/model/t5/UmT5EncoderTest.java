package org.fastvmt.model.t5;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import org.fastvmt.backend.Backend;
import org.fastvmt.backend.Device;
import org.fastvmt.reference.OpenBackends;
import org.fastvmt.reference.TestData;
import org.fastvmt.reference.TextEncoderReference;
import org.fastvmt.reference.TextEncoderReference.EncoderShape;
import org.fastvmt.reference.Tolerance;
import org.fastvmt.tensor.DType;
import org.fastvmt.tensor.Tensor;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The TINY umT5 encoder (2 blocks, dim 24, dim_attn 32, 4 heads of 8, 8 buckets up to distance 16,
 * text length 16) on every backend against {@link TextEncoderReference#encoder}, a double
 * evaluation of t5.py written independently of the kernels; Wan's padded computation against the
 * prompt-only one; cpu against cudaemu; BF16 weights against F32 ones; truncation and bad ids.
 */
class UmT5EncoderTest {

    private static final UmT5Config TINY = UmT5Config.TINY;
    private static final EncoderShape SHAPE = new EncoderShape(TINY.dim(), TINY.dimAttn(), TINY.ffnDim(), TINY.heads(),
            TINY.layers(), TINY.numBuckets(), TINY.maxDistance(), TINY.eps());
    /** Two blocks of fp32 GEMMs, norms and softmax over a few dozen terms each. */
    private static final Tolerance F32 = new Tolerance(1e-4, 1e-4);
    /** The same ids one way or another: only the order of fp32 sums differs. */
    private static final Tolerance SAME = new Tolerance(2e-5, 2e-5);
    /** Weights rounded to bf16 (8 bits of mantissa) against fp32 ones, after two blocks. */
    private static final Tolerance BF16 = new Tolerance(3e-2, 3e-2);
    private static final int[] PROMPT = {5, 17, 2, 63, 40, 40, 9, 0, 1};

    private static final OpenBackends BACKENDS = new OpenBackends();

    @AfterAll
    static void closeBackends() {
        BACKENDS.close();
    }

    static Stream<Device> devices() {
        return OpenBackends.devices();
    }

    /** The values a model's tensors hold, in double, by official key. */
    static Map<String, double[]> held(UmT5Weights weights) {
        Map<String, double[]> values = new LinkedHashMap<>();
        weights.tensors().forEach((key, tensor) -> values.put(key, TestData.toDouble(tensor.toFloatArray())));
        return values;
    }

    @ParameterizedTest
    @MethodSource("devices")
    void encodeMatchesTheReferenceAndZeroesThePadding(Device device) {
        Backend backend = BACKENDS.get(device);
        try (UmT5Weights weights = UmT5Weights.random(TINY, backend, 11, DType.F32);
                Tensor out = new UmT5Encoder(weights).encode(PROMPT)) {
            assertArrayEquals(new long[] {TINY.textLength(), TINY.dim()}, out.shape());
            float[] values = out.toFloatArray();
            double[] expected = TextEncoderReference.encoder(held(weights), SHAPE, PROMPT, PROMPT.length);
            F32.assertClose(device + " prompt rows", expected,
                    Arrays.copyOf(values, PROMPT.length * TINY.dim()));
            float[] padding = Arrays.copyOfRange(values, PROMPT.length * TINY.dim(), values.length);
            assertArrayEquals(new float[padding.length], padding, "rows past the prompt are zero");
            // The output is not trivially small: the model did something.
            double norm = 0;
            for (double e : expected) {
                norm += e * e;
            }
            assertTrue(norm / expected.length > 0.1, "mean square " + norm / expected.length);
        }
    }

    @ParameterizedTest
    @MethodSource("devices")
    void wansPaddedRunGivesThePromptRows(Device device) {
        Backend backend = BACKENDS.get(device);
        int[] padded = Arrays.copyOf(PROMPT, TINY.textLength()); // padded with id 0, as Wan's tokenizer does
        try (UmT5Weights weights = UmT5Weights.random(TINY, backend, 12, DType.F32)) {
            UmT5Encoder encoder = new UmT5Encoder(weights);
            try (Tensor full = encoder.hiddenStates(padded, PROMPT.length); Tensor out = encoder.encode(PROMPT)) {
                float[] all = full.toFloatArray();
                // The padded computation, padding rows included, against the reference with the same mask.
                F32.assertClose(device + " padded", TextEncoderReference.encoder(held(weights), SHAPE, padded,
                        PROMPT.length), all);
                float[] promptRows = Arrays.copyOf(all, PROMPT.length * TINY.dim());
                SAME.assertClose(device + " padded vs prompt-only", TestData.toDouble(promptRows),
                        Arrays.copyOf(out.toFloatArray(), PROMPT.length * TINY.dim()));
                // Without the mask the padding would change the prompt rows: the mask matters here.
                try (Tensor unmasked = encoder.hiddenStates(padded, padded.length)) {
                    float[] other = unmasked.toFloatArray();
                    double largest = 0;
                    for (int i = 0; i < promptRows.length; i++) {
                        largest = Math.max(largest, Math.abs(other[i] - promptRows[i]));
                    }
                    assertTrue(largest > 1e-2, "padding keys changed the prompt rows by only " + largest);
                }
            }
        }
    }

    @Test
    void cpuAndCudaemuAgree() {
        Backend cpu = BACKENDS.get(Device.CPU);
        Backend emu = BACKENDS.get(Device.CUDAEMU);
        try (UmT5Weights a = UmT5Weights.random(TINY, cpu, 13, DType.BF16);
                UmT5Weights b = UmT5Weights.random(TINY, emu, 13, DType.BF16);
                Tensor x = new UmT5Encoder(a).encode(PROMPT); Tensor y = new UmT5Encoder(b).encode(PROMPT)) {
            SAME.assertClose("cpu vs cudaemu", TestData.toDouble(x.toFloatArray()), y.toFloatArray());
        }
    }

    @ParameterizedTest
    @MethodSource("devices")
    void bf16WeightsStayBf16AndAgreeWithinBf16Tolerance(Device device) {
        Backend backend = BACKENDS.get(device);
        try (UmT5Weights f32 = UmT5Weights.random(TINY, backend, 14, DType.F32);
                UmT5Weights bf16 = UmT5Weights.random(TINY, backend, 14, DType.BF16);
                Tensor x = new UmT5Encoder(f32).encode(PROMPT); Tensor y = new UmT5Encoder(bf16).encode(PROMPT)) {
            assertEquals(DType.BF16, bf16.get("token_embedding.weight").dtype());
            assertEquals(DType.BF16, bf16.get("blocks.1.ffn.fc2.weight").dtype());
            assertEquals(DType.F32, bf16.get("blocks.1.norm2.weight").dtype());
            float[] bf16Out = y.toFloatArray();
            BF16.assertClose(device + " bf16 vs f32 weights", TestData.toDouble(x.toFloatArray()), bf16Out);
            // Against the reference at the rounded weights, the bf16 model is as exact as the f32 one.
            double[] expected = TextEncoderReference.encoder(held(bf16), SHAPE, PROMPT, PROMPT.length);
            F32.assertClose(device + " bf16 vs reference", expected, Arrays.copyOf(bf16Out, expected.length));
        }
    }

    @Test
    void longIdsAreTruncatedWithAWarning() {
        Backend backend = BACKENDS.get(Device.CPU);
        int[] ids = new int[TINY.textLength() + 4];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = (7 * i + 3) % TINY.vocab();
        }
        List<String> warnings = new ArrayList<>();
        try (UmT5Weights weights = UmT5Weights.random(TINY, backend, 15, DType.F32)) {
            UmT5Encoder encoder = new UmT5Encoder(weights, warnings::add);
            try (Tensor out = encoder.encode(ids);
                    Tensor first = encoder.encode(Arrays.copyOf(ids, TINY.textLength()))) {
                assertEquals(1, warnings.size());
                assertTrue(warnings.get(0).contains("20 tokens") && warnings.get(0).contains("first 16"),
                        warnings.get(0));
                assertArrayEquals(first.toFloatArray(), out.toFloatArray());
            }
        }
    }

    @Test
    void badIdsAreNamed() {
        Backend backend = BACKENDS.get(Device.CPU);
        try (UmT5Weights weights = UmT5Weights.random(TINY, backend, 16, DType.F32)) {
            UmT5Encoder encoder = new UmT5Encoder(weights);
            IllegalArgumentException high = assertThrows(IllegalArgumentException.class,
                    () -> encoder.encode(new int[] {1, 2, 64}));
            assertTrue(high.getMessage().contains("ids[2] = 64") && high.getMessage().contains("[0, 64)"),
                    high.getMessage());
            IllegalArgumentException negative = assertThrows(IllegalArgumentException.class,
                    () -> encoder.encode(new int[] {-3}));
            assertTrue(negative.getMessage().contains("ids[0] = -3"), negative.getMessage());
            IllegalArgumentException empty = assertThrows(IllegalArgumentException.class,
                    () -> encoder.encode(new int[0]));
            assertTrue(empty.getMessage().contains("ids must hold at least one"), empty.getMessage());
            IllegalArgumentException valid = assertThrows(IllegalArgumentException.class,
                    () -> encoder.hiddenStates(new int[] {1, 2}, 3));
            assertTrue(valid.getMessage().contains("validTokens"), valid.getMessage());
        }
    }
}
