package org.fastvmt.backend;

import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import org.fastvmt.nativeabi.FastVmtH;
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
 * {@link Backend#gemm} on every backend against a plain double-precision product: the four
 * transpose combinations, odd sizes, alpha and a beta that accumulates into C, and bf16 B (whose
 * reference is the product with B rounded to bf16, since the backend widens it exactly).
 */
class GemmTest {

    /** fp32 sums of at most 67 products of terms ~1: well inside 1e-5 absolute + 1e-4 relative. */
    private static final Tolerance FP32 = new Tolerance(1e-5, 1e-4);

    private static final OpenBackends BACKENDS = new OpenBackends();

    @AfterAll
    static void closeBackends() {
        BACKENDS.close();
    }

    static Stream<Arguments> cases() {
        List<Arguments> cases = new ArrayList<>();
        int[][] sizes = {{37, 23, 19}, {1, 1, 1}, {5, 67, 3}, {64, 1, 33}};
        OpenBackends.devices().forEach(device -> {
            for (int[] size : sizes) {
                for (boolean transA : new boolean[] {false, true}) {
                    for (boolean transB : new boolean[] {false, true}) {
                        for (DType bType : new DType[] {DType.F32, DType.BF16}) {
                            cases.add(Arguments.of(device, size[0], size[1], size[2], transA, transB, bType));
                        }
                    }
                }
            }
        });
        return cases.stream();
    }

    @ParameterizedTest(name = "{0}: m={1} n={2} k={3} transA={4} transB={5} B {6}")
    @MethodSource("cases")
    void gemmEqualsTheDoubleProduct(Device device, int m, int n, int k, boolean transA, boolean transB,
            DType bType) {
        Backend backend = BACKENDS.get(device);
        SplittableRandom random = new SplittableRandom(31L * m + 7L * n + k + (transA ? 1000 : 0) + (transB ? 2000 : 0));
        float[] a = TestData.normal(random, m * k, 1);
        float[] b = TestData.normal(random, k * n, 1);
        float[] c = TestData.normal(random, m * n, 1);
        float alpha = 1.5f;
        float beta = -0.75f;
        float[] bHeld = bType == DType.BF16 ? TestData.roundToBf16(b) : b;
        double[] expected = new double[m * n];
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                double sum = 0;
                for (int p = 0; p < k; p++) {
                    double aip = transA ? a[p * m + i] : a[i * k + p];
                    double bpj = transB ? bHeld[j * k + p] : bHeld[p * n + j];
                    sum += aip * bpj;
                }
                expected[i * n + j] = alpha * sum + beta * (double) c[i * n + j];
            }
        }
        long[] aShape = transA ? new long[] {k, m} : new long[] {m, k};
        long[] bShape = transB ? new long[] {n, k} : new long[] {k, n};
        try (Tensor at = Tensor.of(backend, a, aShape); Tensor bt = Tensor.of(backend, bType, b, bShape);
                Tensor ct = Tensor.of(backend, c, m, n)) {
            backend.gemm(transA, transB, m, n, k, alpha, at.segment(), bt.segment(), bType.nativeCode(), beta,
                    ct.segment());
            FP32.assertClose("C", expected, ct.toFloatArray());
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("org.fastvmt.reference.OpenBackends#devices")
    void anUnknownDtypeOfBIsRefused(Device device) {
        Backend backend = BACKENDS.get(device);
        try (Tensor a = Tensor.zeros(backend, DType.F32, 2, 2); Tensor c = Tensor.zeros(backend, DType.F32, 2, 2)) {
            assertThrows(IllegalArgumentException.class,
                    () -> backend.gemm(false, false, 2, 2, 2, 1f, a.segment(), a.segment(), 7, 0f, c.segment()));
            assertThrows(IllegalArgumentException.class, () -> backend.gemm(false, false, 0, 2, 2, 1f, a.segment(),
                    a.segment(), FastVmtH.FVMT_DTYPE_F32, 0f, c.segment()));
        }
    }
}
