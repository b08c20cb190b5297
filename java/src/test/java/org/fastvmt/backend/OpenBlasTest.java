package org.fastvmt.backend;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** cblas_sgemm through FFM against a naive product in double precision. */
class OpenBlasTest {

    @BeforeAll
    static void openBlasIsInstalled() {
        Assumptions.assumeTrue(OpenBlas.problem().isEmpty(),
                () -> "skipped: " + OpenBlas.problem().orElse(""));
    }

    @Test
    void sgemmEqualsTheNaiveProduct() {
        int m = 37;
        int n = 53;
        int k = 29;
        float alpha = 1.5f;
        float beta = -0.5f;
        SplittableRandom random = new SplittableRandom(7);
        float[] a = randoms(random, m * k);
        float[] b = randoms(random, k * n);
        float[] c = randoms(random, m * n);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment as = arena.allocateFrom(ValueLayout.JAVA_FLOAT, a);
            MemorySegment bs = arena.allocateFrom(ValueLayout.JAVA_FLOAT, b);
            MemorySegment cs = arena.allocateFrom(ValueLayout.JAVA_FLOAT, c);
            OpenBlas.load().sgemm(m, n, k, alpha, as, bs, beta, cs);
            float[] got = cs.toArray(ValueLayout.JAVA_FLOAT);
            for (int i = 0; i < m; i++) {
                for (int j = 0; j < n; j++) {
                    double expected = beta * (double) c[i * n + j];
                    for (int p = 0; p < k; p++) {
                        expected += alpha * (double) a[i * k + p] * b[p * n + j];
                    }
                    // fp32 sums of 29 terms of magnitude <= 1.5: well inside 1e-5 absolute + 1e-4 relative.
                    assertEquals(expected, got[i * n + j], 1e-5 + 1e-4 * Math.abs(expected), "C[" + i + "][" + j + "]");
                }
            }
        }
    }

    @Test
    void undersizedOrHeapMatricesAreRejected() {
        OpenBlas blas = OpenBlas.load();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment four = arena.allocate(4 * Float.BYTES);
            MemorySegment three = arena.allocate(3 * Float.BYTES);
            assertTrue(assertThrows(IllegalArgumentException.class,
                    () -> blas.sgemm(2, 2, 2, 1f, four, four, 0f, three)).getMessage().startsWith("c holds 3"));
            assertThrows(IllegalArgumentException.class,
                    () -> blas.sgemm(2, 2, 2, 1f, MemorySegment.ofArray(new float[4]), four, 0f, four));
            assertThrows(IllegalArgumentException.class, () -> blas.sgemm(0, 2, 2, 1f, four, four, 0f, four));
        }
    }

    /** The roofline probe runs on every core the JVM may use and multiplies what it claims to. */
    @Test
    void theSquareProbeUsesEveryCore() {
        OpenBlas blas = OpenBlas.load();
        try (SquareSgemm square = blas.square(64, 1)) {
            square.run();
            assertEquals(Runtime.getRuntime().availableProcessors(), blas.threads());
            assertEquals(2.0 * 64 * 64 * 64, square.flops());
            assertTrue(square.description().startsWith("OpenBLAS"), square.description());
        }
        assertTrue(blas.config().contains("OpenBLAS"), blas.config());
    }

    private static float[] randoms(SplittableRandom random, int count) {
        float[] values = new float[count];
        for (int i = 0; i < count; i++) {
            values[i] = (float) random.nextDouble(-1, 1);
        }
        return values;
    }
}
