package org.fastvmt.tensor;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import org.fastvmt.backend.Backend;
import org.fastvmt.backend.Device;
import org.fastvmt.nativeabi.NativeCallException;
import org.fastvmt.reference.AutoencoderReference;
import org.fastvmt.reference.AutoencoderReference.Vol;
import org.fastvmt.reference.OpenBackends;
import org.fastvmt.reference.TestData;
import org.fastvmt.reference.Tolerance;
import org.fastvmt.tensor.Ops.ConvGeometry;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The video autoencoder ops of {@link Ops} (fastvmt.h, "Video autoencoder ops") on every backend
 * against {@link AutoencoderReference}: im2col (the causal, downsample and time-stride
 * geometries of Wan's VAE, and blocks of rows), nearest 2× upsampling, the frame interleave, the
 * row softmax, and the two composites built on them (conv3d by im2col + GEMM in blocks, and a
 * 384-wide single attention head by GEMM + softmax + GEMM in blocks of queries).
 */
class OpsAutoencoderTest {

    /** Copies are exact. */
    private static final Tolerance EXACT = new Tolerance(0, 0);
    /** fp32 sums of at most ~1000 products (GEMM, softmax). */
    private static final Tolerance F32 = new Tolerance(2e-5, 2e-4);

    private static final OpenBackends BACKENDS = new OpenBackends();

    @AfterAll
    static void closeBackends() {
        BACKENDS.close();
    }

    /** x [frames, height, width, channels], kernel, stride and {front, back, top, bottom, left, right} padding. */
    record ConvCase(String name, int frames, int height, int width, int channels, int[] k, int[] s, int[] pad) {
        ConvGeometry geometry() {
            return new ConvGeometry(k[0], k[1], k[2], s[0], s[1], s[2], pad[0], pad[1], pad[2], pad[3], pad[4],
                    pad[5]);
        }

        @Override
        public String toString() {
            return name + " [" + frames + ", " + height + ", " + width + ", " + channels + "]";
        }
    }

    private static final List<ConvCase> CONVS = List.of(
            new ConvCase("causal 3x3x3", 3, 5, 6, 4, new int[] {3, 3, 3}, new int[] {1, 1, 1},
                    new int[] {2, 0, 1, 1, 1, 1}),
            new ConvCase("causal 3x3x3 after a 1-frame cache", 3, 4, 3, 5, new int[] {3, 3, 3}, new int[] {1, 1, 1},
                    new int[] {1, 0, 1, 1, 1, 1}),
            new ConvCase("downsample 3x3 stride 2", 2, 6, 8, 3, new int[] {1, 3, 3}, new int[] {1, 2, 2},
                    new int[] {0, 0, 0, 1, 0, 1}),
            new ConvCase("time conv stride 2", 5, 2, 3, 6, new int[] {3, 1, 1}, new int[] {2, 1, 1}, new int[6]),
            new ConvCase("upsample conv 3x3", 2, 4, 4, 7, new int[] {1, 3, 3}, new int[] {1, 1, 1},
                    new int[] {0, 0, 1, 1, 1, 1}),
            new ConvCase("pointwise", 2, 3, 3, 9, new int[] {1, 1, 1}, new int[] {1, 1, 1}, new int[6]));

    static Stream<Arguments> convCases() {
        return OpenBackends.onEveryDevice(CONVS);
    }

    private static double[] channelLast(Vol v) {
        double[] out = new double[v.data().length];
        for (int ch = 0; ch < v.c(); ch++) {
            for (int f = 0; f < v.t(); f++) {
                for (int r = 0; r < v.h(); r++) {
                    for (int c = 0; c < v.w(); c++) {
                        out[((f * v.h() + r) * v.w() + c) * v.c() + ch] = v.data()[((ch * v.t() + f) * v.h() + r)
                                * v.w() + c];
                    }
                }
            }
        }
        return out;
    }

    @ParameterizedTest(name = "{0}: {1}")
    @MethodSource("convCases")
    void im2colMatchesTheReference(Device device, ConvCase c) {
        Backend backend = BACKENDS.get(device);
        SplittableRandom random = new SplittableRandom(c.name().hashCode());
        float[] x = TestData.normal(random, c.frames() * c.height() * c.width() * c.channels(), 1);
        int[] out = c.geometry().outputSize(c.frames(), c.height(), c.width());
        int positions = out[0] * out[1] * out[2];
        try (Graph graph = new Graph(backend, false)) {
            Ops ops = new Ops(graph);
            Tensor input = graph.own(Tensor.of(backend, x, c.frames(), c.height(), c.width(), c.channels()));
            // All rows, then a block in the middle (row_begin > 0).
            int begin = positions / 3, count = Math.max(1, positions / 2);
            for (int[] range : new int[][] {{0, positions}, {begin, count}}) {
                Tensor rows = ops.im2col3d(input, c.geometry(), range[0], range[1]);
                double[] expected = AutoencoderReference.im2col3d(TestData.toDouble(x), c.frames(), c.height(),
                        c.width(), c.channels(), c.k(), c.s(), c.pad(), range[0], range[1]);
                EXACT.assertClose(device + " im2col " + c + " rows " + range[0] + "+" + range[1], expected,
                        rows.toFloatArray());
            }
        }
    }

    @ParameterizedTest(name = "{0}: {1}")
    @MethodSource("convCases")
    void conv3dMatchesTheReference(Device device, ConvCase c) {
        Backend backend = BACKENDS.get(device);
        SplittableRandom random = new SplittableRandom(c.name().hashCode() + 1);
        int cOut = 5;
        int taps = c.k()[0] * c.k()[1] * c.k()[2];
        float[] x = TestData.normal(random, c.channels() * c.frames() * c.height() * c.width(), 1);
        float[] w = TestData.normal(random, cOut * c.channels() * taps, 0.3);
        float[] b = TestData.normal(random, cOut, 0.3);
        Vol vol = new Vol(c.channels(), c.frames(), c.height(), c.width(), TestData.toDouble(x));
        Vol expected = AutoencoderReference.conv3d(vol, w, b, cOut, c.k()[0], c.k()[1], c.k()[2], c.s()[0], c.s()[1],
                c.s()[2], c.pad());
        // The kernels' weight order [cOut, taps, cIn].
        float[] wLast = new float[w.length];
        for (int o = 0; o < cOut; o++) {
            for (int i = 0; i < c.channels(); i++) {
                for (int t = 0; t < taps; t++) {
                    wLast[(o * taps + t) * c.channels() + i] = w[(o * c.channels() + i) * taps + t];
                }
            }
        }
        float[] xLast = toFloat(channelLast(vol));
        try (Graph graph = new Graph(backend, false)) {
            Ops ops = new Ops(graph);
            Tensor input = graph.own(Tensor.of(backend, xLast, c.frames(), c.height(), c.width(), c.channels()));
            Tensor weight = graph.own(Tensor.of(backend, wLast, cOut, (long) taps * c.channels()));
            Tensor bias = graph.own(Tensor.of(backend, b, cOut));
            // One block, then blocks of 3 rows (the last one partial).
            for (long block : new long[] {Ops.CONV_BLOCK_ELEMENTS, 3L * taps * c.channels()}) {
                Tensor y = ops.conv3d(input, weight, bias, c.geometry(), block);
                assertEquals(List.of(expected.t(), expected.h(), expected.w(), cOut),
                        List.of((int) y.dim(0), (int) y.dim(1), (int) y.dim(2), (int) y.dim(3)));
                F32.assertClose(device + " conv3d " + c + " block " + block, channelLast(expected),
                        y.toFloatArray());
            }
        }
    }

    static Stream<Device> devices() {
        return OpenBackends.devices();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("devices")
    void upsampleAndInterleaveMatchTheReference(Device device) {
        Backend backend = BACKENDS.get(device);
        SplittableRandom random = new SplittableRandom(5);
        try (Graph graph = new Graph(backend, false)) {
            Ops ops = new Ops(graph);
            int[][] shapes = {{1, 1, 1, 1}, {3, 2, 5, 7}, {2, 4, 3, 40}};
            for (int[] s : shapes) {
                float[] x = TestData.normal(random, s[0] * s[1] * s[2] * s[3], 1);
                Tensor in = graph.own(Tensor.of(backend, x, s[0], s[1], s[2], s[3]));
                EXACT.assertClose(device + " upsample " + java.util.Arrays.toString(s),
                        AutoencoderReference.upsampleNearest2x(TestData.toDouble(x), s[0], s[1], s[2], s[3]),
                        ops.upsampleNearest2x(in).toFloatArray());
                float[] y = TestData.normal(random, s[0] * s[1] * s[2] * 2 * s[3], 1);
                Tensor doubled = graph.own(Tensor.of(backend, y, s[0], s[1], s[2], 2L * s[3]));
                Tensor interleaved = ops.frameInterleave(doubled);
                assertEquals(2L * s[0], interleaved.dim(0));
                EXACT.assertClose(device + " interleave " + java.util.Arrays.toString(s),
                        AutoencoderReference.frameInterleave(TestData.toDouble(y), s[0], s[1] * s[2], s[3]),
                        interleaved.toFloatArray());
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("devices")
    void softmaxRowsMatchesTheReference(Device device) {
        Backend backend = BACKENDS.get(device);
        SplittableRandom random = new SplittableRandom(6);
        try (Graph graph = new Graph(backend, false)) {
            Ops ops = new Ops(graph);
            // One column; fewer columns than a CUDA block's threads; more (and a large scale).
            int[][] shapes = {{3, 1}, {5, 37}, {4, 700}};
            for (int[] s : shapes) {
                float[] x = TestData.normal(random, s[0] * s[1], 4);
                float scale = s[1] == 700 ? 3f : 0.25f;
                Tensor in = graph.own(Tensor.of(backend, x, s[0], s[1]));
                F32.assertClose(device + " softmax " + s[0] + "x" + s[1],
                        AutoencoderReference.softmaxRows(TestData.toDouble(x), s[0], s[1], scale),
                        ops.softmaxRows(in, scale).toFloatArray());
            }
        }
    }

    /** The VAE's middle attention width (384 > the 256 of the fused kernel), in blocks of queries. */
    @ParameterizedTest(name = "{0}")
    @MethodSource("devices")
    void singleHeadAttentionMatchesTheReference(Device device) {
        Backend backend = BACKENDS.get(device);
        SplittableRandom random = new SplittableRandom(7);
        int sq = 7, sk = 9, d = 384;
        float[] q = TestData.normal(random, sq * d, 0.1);
        float[] k = TestData.normal(random, sk * d, 0.1);
        float[] v = TestData.normal(random, sk * d, 1);
        double[] expected = new double[sq * d];
        for (int i = 0; i < sq; i++) {
            double[] scores = new double[sk];
            for (int j = 0; j < sk; j++) {
                for (int c = 0; c < d; c++) {
                    scores[j] += (double) q[i * d + c] * k[j * d + c] / Math.sqrt(d);
                }
            }
            double[] p = AutoencoderReference.softmaxRows(scores, 1, sk, 1);
            for (int c = 0; c < d; c++) {
                for (int j = 0; j < sk; j++) {
                    expected[i * d + c] += p[j] * v[j * d + c];
                }
            }
        }
        try (Graph graph = new Graph(backend, false)) {
            Ops ops = new Ops(graph);
            Tensor tq = graph.own(Tensor.of(backend, q, sq, d));
            Tensor tk = graph.own(Tensor.of(backend, k, sk, d));
            Tensor tv = graph.own(Tensor.of(backend, v, sk, d));
            for (long block : new long[] {Ops.ATTENTION_BLOCK_ELEMENTS, 2L * sk}) {
                F32.assertClose(device + " singleHeadAttention block " + block, expected,
                        ops.singleHeadAttention(tq, tk, tv, block).toFloatArray());
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("devices")
    void badArgumentsAreRefusedWithTheirNames(Device device) {
        Backend backend = BACKENDS.get(device);
        try (Graph graph = new Graph(backend, false)) {
            Ops ops = new Ops(graph);
            Tensor x = graph.own(Tensor.zeros(backend, DType.F32, 2, 4, 4, 3));
            ConvGeometry causal = new ConvGeometry(3, 3, 3, 1, 1, 1, 2, 0, 1, 1, 1, 1);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> new ConvGeometry(3, 3, 3, 1, 1, 1, 3, 0, 1, 1, 1, 1));
            assertTrue(e.getMessage().contains("time paddings"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> ops.im2col3d(x, causal, 30, 3));
            assertTrue(e.getMessage().contains("rowBegin"), e.getMessage());
            Tensor wrongWeight = graph.own(Tensor.zeros(backend, DType.F32, 4, 80));
            e = assertThrows(IllegalArgumentException.class, () -> ops.conv3d(x, wrongWeight, null, causal));
            assertTrue(e.getMessage().contains("weight must be"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class,
                    () -> ops.frameInterleave(graph.own(Tensor.zeros(backend, DType.F32, 1, 2, 2, 3))));
            assertTrue(e.getMessage().contains("even channel count"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class,
                    () -> ops.upsampleNearest2x(graph.own(Tensor.zeros(backend, DType.F32, 4, 3))));
            assertTrue(e.getMessage().contains("x must be a non-empty [frames, height, width, channels]"),
                    e.getMessage());
            // The native checks, reached past the Java ones: the same sentence on every build.
            var h = backend.library().h();
            NativeCallException n = assertThrows(NativeCallException.class, () -> backend.library().check(
                    h.fvmt_im2col3d(x.segment(), 2, 4, 4, 3, 3, 3, 3, 1, 1, 1, 3, 0, 1, 1, 1, 1, 0, 1, x.segment(),
                            backend.stream())));
            assertTrue(n.getMessage().contains("fvmt_im2col3d: the time paddings must be in [0, 3)"), n.getMessage());
            n = assertThrows(NativeCallException.class, () -> backend.library().check(
                    h.fvmt_softmax_rows_forward(x.segment(), 2, 3, 0f, x.segment(), backend.stream())));
            assertTrue(n.getMessage().contains("fvmt_softmax_rows_forward: scale must be finite and positive"),
                    n.getMessage());
            n = assertThrows(NativeCallException.class, () -> backend.library().check(
                    h.fvmt_frame_interleave(x.segment(), 0, 4, 3, x.segment(), backend.stream())));
            assertTrue(n.getMessage().contains("fvmt_frame_interleave: frames must be positive"), n.getMessage());
            // Forward only: an input that needs a gradient is refused.
            try (Graph recording = new Graph(backend, true)) {
                Tensor leaf = recording.own(Tensor.zeros(backend, DType.F32, 1, 2, 2, 2));
                recording.requireGradient(leaf);
                IllegalStateException s = assertThrows(IllegalStateException.class,
                        () -> new Ops(recording).upsampleNearest2x(leaf));
                assertTrue(s.getMessage().contains("forward only"), s.getMessage());
            }
        }
    }

    private static float[] toFloat(double[] x) {
        float[] out = new float[x.length];
        for (int n = 0; n < x.length; n++) {
            out[n] = (float) x[n];
        }
        return out;
    }
}
