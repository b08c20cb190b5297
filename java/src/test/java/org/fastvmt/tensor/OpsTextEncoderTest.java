package org.fastvmt.tensor;

import static org.fastvmt.tensor.OpRun.assertClose;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import org.fastvmt.backend.Backend;
import org.fastvmt.backend.Device;
import org.fastvmt.nativeabi.FastVmtH;
import org.fastvmt.nativeabi.NativeCallException;
import org.fastvmt.reference.OpenBackends;
import org.fastvmt.reference.TestData;
import org.fastvmt.reference.TextEncoderReference;
import org.fastvmt.reference.Tolerance;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The text encoder ops ({@link Ops#mul}, {@link Ops#embedding}, {@link Ops#relativeAttention}) on
 * every backend against {@link TextEncoderReference}: products at lengths around the float4
 * path and at an unaligned offset; gathers from F32 and BF16 tables, and the refusal of an id out
 * of range (named with its position by every build); attention with and without the relative
 * bias and the key mask, a fully masked chunk and fully masked queries, head widths from 1 to
 * 130 (several passes of a CUDA block over the head), more keys than one chunk of 128, q ≠ kv
 * tokens, T5's scale 1 and another; and the refusal of every op on a graph that would need its
 * gradient.
 */
class OpsTextEncoderTest {

    /** Short fp32 reductions (head_dim terms) and exp: llm.c-style fp32 bounds. */
    private static final Tolerance F32 = new Tolerance(2e-5, 2e-4);

    private static final OpenBackends BACKENDS = new OpenBackends();

    @AfterAll
    static void closeBackends() {
        BACKENDS.close();
    }

    static Stream<Device> devices() {
        return OpenBackends.devices();
    }

    @ParameterizedTest
    @MethodSource("devices")
    void mulMatchesTheReference(Device device) {
        Backend backend = BACKENDS.get(device);
        SplittableRandom random = new SplittableRandom(3);
        for (int n : new int[] {1, 3, 4, 17, 1030}) {
            float[] a = TestData.normal(random, n, 1);
            float[] b = TestData.normal(random, n, 1);
            try (Graph graph = new Graph(backend, false)) {
                Tensor ta = graph.own(Tensor.of(backend, a, n));
                // b at an odd offset: no float4 path.
                float[] padded = new float[n + 1];
                System.arraycopy(b, 0, padded, 1, n);
                Tensor tb = graph.own(Tensor.of(backend, padded, n + 1)).slice(1, n);
                float[] y = new Ops(graph).mul(ta, tb).toFloatArray();
                assertClose(PRODUCT, device + " mul n=" + n,
                        TextEncoderReference.mul(TestData.toDouble(a), TestData.toDouble(b)), y);
            }
        }
    }

    /** One fp32 product, rounded once: within half an ulp of the exact product. */
    private static final Tolerance PRODUCT = new Tolerance(0, 6e-8);

    @ParameterizedTest
    @MethodSource("devices")
    void embeddingGathersF32AndBf16Rows(Device device) {
        Backend backend = BACKENDS.get(device);
        SplittableRandom random = new SplittableRandom(5);
        int vocab = 11;
        int dim = 7;
        int[] ids = {3, 0, 10, 3, 7};
        float[] table = TestData.normal(random, vocab * dim, 1);
        for (DType dtype : new DType[] {DType.F32, DType.BF16}) {
            try (Graph graph = new Graph(backend, false)) {
                Tensor t = graph.own(Tensor.of(backend, dtype, table, vocab, dim));
                Tensor out = new Ops(graph).embedding(ids, t);
                assertArrayEquals(new long[] {ids.length, dim}, out.shape());
                double[] held = TestData.toDouble(dtype == DType.BF16 ? TestData.roundToBf16(table) : table);
                // A copy (bf16 widening is exact): bit-identical.
                assertClose(new Tolerance(0, 0), device + " " + dtype, TextEncoderReference.embedding(ids, held, dim),
                        out.toFloatArray());
            }
        }
    }

    @ParameterizedTest
    @MethodSource("devices")
    void embeddingRefusesAnIdOutOfRange(Device device) {
        Backend backend = BACKENDS.get(device);
        try (Graph graph = new Graph(backend, false)) {
            Tensor table = graph.own(Tensor.of(backend, new float[12], 4, 3));
            Ops ops = new Ops(graph);
            // Checked in Java for host ids...
            IllegalArgumentException java = assertThrows(IllegalArgumentException.class,
                    () -> ops.embedding(new int[] {1, 4}, table));
            assertTrue(java.getMessage().contains("ids[1] = 4"), java.getMessage());
            // ...and by the kernel for ids already in the backend's memory (the cuda build on the device).
            for (int[] bad : new int[][] {{0, 2, -1, 9}, {5}}) {
                try (Tensor ids = Tensor.ofInts(backend, bad, bad.length)) {
                    NativeCallException e = assertThrows(NativeCallException.class, () -> ops.embedding(ids, table));
                    int position = bad.length == 1 ? 0 : 2;
                    assertTrue(e.getMessage().contains("ids[" + position + "] = " + bad[position])
                            && e.getMessage().contains("vocab=4"), e.getMessage());
                }
            }
            // The library works on after the refusal.
            try (Tensor ids = Tensor.ofInts(backend, new int[] {3}, 1)) {
                assertEquals(3, ops.embedding(ids, table).elementCount());
            }
        }
    }

    record AttentionCase(String name, int sq, int sk, int heads, int headDim, boolean bias, String mask,
            float scale) {
        @Override
        public String toString() {
            return name;
        }
    }

    private static final List<AttentionCase> ATTENTION_CASES = List.of(
            new AttentionCase("one token", 1, 1, 1, 1, false, "none", 1f),
            new AttentionCase("T5 head 64, bias", 5, 5, 2, 64, true, "none", 1f),
            new AttentionCase("padding mask", 6, 6, 3, 8, true, "tail", 1f),
            new AttentionCase("q != kv, scaled", 3, 7, 2, 5, true, "none", 0.35f),
            new AttentionCase("head 130, mask holes", 4, 9, 1, 130, true, "holes", 1f),
            new AttentionCase("three key chunks", 3, 300, 2, 4, true, "tail", 1f),
            new AttentionCase("masked first chunk", 2, 260, 1, 3, false, "first chunk", 1f),
            new AttentionCase("no key left", 3, 4, 2, 2, true, "all", 1f));

    static Stream<Arguments> attentionCases() {
        return OpenBackends.onEveryDevice(ATTENTION_CASES);
    }

    private static int[] mask(String kind, int sk) {
        int[] m = new int[sk];
        for (int j = 0; j < sk; j++) {
            m[j] = switch (kind) {
                case "tail" -> j < sk - sk / 3 ? 1 : 0;
                case "holes" -> j % 3 == 1 ? 0 : 1;
                case "first chunk" -> j < 128 ? 0 : 1;
                case "all" -> 0;
                default -> 1;
            };
        }
        return m;
    }

    @ParameterizedTest(name = "{0}: {1}")
    @MethodSource("attentionCases")
    void relativeAttentionMatchesTheReference(Device device, AttentionCase c) {
        Backend backend = BACKENDS.get(device);
        SplittableRandom random = new SplittableRandom(c.name().hashCode());
        int width = c.heads() * c.headDim();
        // Scores of order one whatever the width, so the softmax is neither flat nor one-hot.
        double spread = 1.5 / Math.sqrt(Math.sqrt(c.headDim()) * Math.max(c.scale(), 0.1));
        float[] q = TestData.normal(random, c.sq() * width, spread);
        float[] k = TestData.normal(random, c.sk() * width, spread);
        float[] v = TestData.normal(random, c.sk() * width, 1);
        int positions = c.sq() + c.sk() - 1;
        float[] bias = c.bias() ? TestData.normal(random, c.heads() * positions, 1) : null;
        int[] mask = c.mask().equals("none") ? null : mask(c.mask(), c.sk());
        try (Graph graph = new Graph(backend, false)) {
            Tensor tq = graph.own(Tensor.of(backend, q, c.sq(), width));
            Tensor tk = graph.own(Tensor.of(backend, k, c.sk(), width));
            Tensor tv = graph.own(Tensor.of(backend, v, c.sk(), width));
            Tensor tb = bias == null ? null : graph.own(Tensor.of(backend, bias, c.heads(), positions));
            Tensor tm = mask == null ? null : graph.own(Tensor.ofInts(backend, mask, c.sk()));
            float[] out = new Ops(graph).relativeAttention(tq, tk, tv, tb, tm, c.heads(), c.scale()).toFloatArray();
            double[] expected = TextEncoderReference.relativeAttention(TestData.toDouble(q), TestData.toDouble(k),
                    TestData.toDouble(v), bias == null ? null : TestData.toDouble(bias), mask, c.sq(), c.sk(),
                    c.heads(), c.headDim(), c.scale());
            assertClose(F32, device + " " + c, expected, out);
            if (c.mask().equals("all")) {
                assertArrayEquals(new float[out.length], out, "a query with no key left gets zeros");
            }
        }
    }

    @ParameterizedTest
    @MethodSource("devices")
    void argumentsAreCheckedWithTheirNames(Device device) {
        Backend backend = BACKENDS.get(device);
        try (Graph graph = new Graph(backend, false)) {
            Ops ops = new Ops(graph);
            Tensor q = graph.own(Tensor.of(backend, new float[12], 3, 4));
            Tensor k = graph.own(Tensor.of(backend, new float[8], 2, 4));
            Tensor wrongBias = graph.own(Tensor.of(backend, new float[6], 2, 3));
            Tensor wrongMask = graph.own(Tensor.ofInts(backend, new int[3], 3));
            assertMessage(() -> ops.relativeAttention(q, k, k, wrongBias, null, 2, 1f), "relBias must be");
            assertMessage(() -> ops.relativeAttention(q, k, k, null, wrongMask, 2, 1f), "keyMask must be");
            assertMessage(() -> ops.relativeAttention(q, k, k, null, null, 3, 1f), "heads");
            assertMessage(() -> ops.relativeAttention(q, k, q, null, null, 2, 1f), "v must have the shape of k");
            assertMessage(() -> ops.relativeAttention(q, k, k, null, null, 2, Float.NaN), "scale must be finite");
            assertMessage(() -> ops.mul(q, k), "mul: b must have the shape of a");
            assertMessage(() -> ops.embedding(new int[0], q), "ids must hold at least one id");
            assertMessage(() -> ops.embedding(q, q), "ids must be a non-empty I32 tensor");
            // The native checks name the argument too (called directly, past the Java checks).
            FastVmtH h = backend.library().h();
            NativeCallException e = assertThrows(NativeCallException.class, () -> backend.library().check(
                    h.fvmt_relative_attention_forward(q.segment(), k.segment(), k.segment(), MemorySegment.NULL,
                            MemorySegment.NULL, 3, 2, 2, 0, 1f, q.segment(), backend.stream())));
            assertTrue(e.getMessage().contains("head_dim must be positive"), e.getMessage());
        }
    }

    private static void assertMessage(org.junit.jupiter.api.function.Executable call, String expected) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
        assertTrue(e.getMessage().contains(expected), "expected '" + expected + "' in: " + e.getMessage());
    }

    @ParameterizedTest
    @MethodSource("devices")
    void forwardOnlyOpsRefuseAGraphThatNeedsTheirGradient(Device device) {
        Backend backend = BACKENDS.get(device);
        try (Graph graph = new Graph(backend, true)) {
            Ops ops = new Ops(graph);
            Tensor a = graph.own(Tensor.of(backend, new float[] {1, 2, 3, 4}, 2, 2));
            Tensor b = graph.own(Tensor.of(backend, new float[] {1, 2, 3, 4}, 2, 2));
            // Nothing needs a gradient yet: a recording graph runs them.
            assertEquals(4, ops.mul(a, b).elementCount());
            graph.requireGradient(a);
            for (org.junit.jupiter.api.function.Executable call : List.<org.junit.jupiter.api.function.Executable>of(
                    () -> ops.mul(a, b), () -> ops.embedding(new int[] {1}, a),
                    () -> ops.relativeAttention(a, b, b, null, null, 1, 1f))) {
                IllegalStateException e = assertThrows(IllegalStateException.class, call);
                assertTrue(e.getMessage().contains("forward-only") && e.getMessage().contains("needs a gradient"),
                        e.getMessage());
            }
            assertEquals(0, graph.recordCount());
        }
    }
}
