package org.fastvmt.bench;

import org.fastvmt.backend.Backend;
import org.fastvmt.backend.CublasSgemm;
import org.fastvmt.backend.OpenBlas;
import org.fastvmt.backend.SquareSgemm;

/**
 * The GEMM roofline of a backend: the GFLOP/s (2·n³ / s) of a square fp32 sgemm, n = 2048 by
 * default: cuBLAS on the cuda backend, OpenBLAS on every core for cpu. The emulated CUDA build
 * has no roofline of its own (its threads emulate a GPU), so cudaemu reports the CPU's OpenBLAS
 * figure and says so in {@link #note()}.
 *
 * @param library       the GEMM that was measured
 * @param size          n
 * @param msPerProduct  the median time of one product
 * @param gflops        2·n³ / msPerProduct, in GFLOP/s
 * @param note          a caveat for users, or "" when the figure is the backend's own roofline
 */
public record SgemmRoofline(String library, int size, double msPerProduct, double gflops, String note) {

    /** M = N = K = 2048: large enough that both BLAS libraries reach their peak. */
    public static final int DEFAULT_SIZE = 2048;
    /** A repetition runs enough products to last about this long, so short GPU products time well. */
    private static final double REPETITION_TARGET_MS = 50;
    private static final long SEED = 2048;

    /** The sgemm of {@code backend}'s roofline, set up and ready to run. */
    public static SquareSgemm open(Backend backend, int size) {
        return "cuda".equals(backend.name()) ? CublasSgemm.open(size, SEED) : OpenBlas.load().square(size, SEED);
    }

    /** Measures the roofline of {@code backend}: a warm-up, then the median of {@code repeats} repetitions. */
    public static SgemmRoofline measure(Backend backend, int size, int repeats) {
        try (SquareSgemm sgemm = open(backend, size)) {
            long start = System.nanoTime();
            sgemm.run();
            double firstMs = (System.nanoTime() - start) / 1e6;
            int products = (int) Math.clamp(Math.ceil(REPETITION_TARGET_MS / Math.max(firstMs, 1e-3)), 1, 10_000);
            Timing timing = Timing.measure(() -> { }, () -> {
                for (int i = 0; i < products; i++) {
                    sgemm.run();
                }
            }, repeats, ms -> { });
            double msPerProduct = timing.medianMs() / products;
            String note = "cudaemu".equals(backend.name())
                    ? "emulated CUDA has no meaningful roofline: this is the cpu OpenBLAS sgemm" : "";
            return new SgemmRoofline(sgemm.description(), size, msPerProduct, sgemm.flops() / (msPerProduct * 1e6),
                    note);
        }
    }

    /** {@code gflops} as a percentage of this roofline. */
    public double percentOf(double gflops) {
        return 100 * gflops / this.gflops;
    }
}
