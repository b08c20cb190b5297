package org.fastvmt.backend;

import java.lang.foreign.MemorySegment;
import java.util.function.LongFunction;

import org.fastvmt.nativeabi.FastVmtH;

/** The argument checks and bf16 handling every {@link Backend#gemm} shares; only the widening differs. */
final class GemmOperands {

    private GemmOperands() {
    }

    /**
     * Checks m, n, k and {@code bDtype}, then returns B as fp32: {@code b} itself, or the k·n bf16
     * values of {@code b} widened by {@code widenBf16} (given the element count).
     */
    static MemorySegment f32B(int m, int n, int k, MemorySegment b, int bDtype,
            LongFunction<MemorySegment> widenBf16) {
        if (m < 1 || n < 1 || k < 1) {
            throw new IllegalArgumentException("m, n and k must be >= 1, got " + m + ", " + n + ", " + k);
        }
        return switch (bDtype) {
            case FastVmtH.FVMT_DTYPE_F32 -> b;
            case FastVmtH.FVMT_DTYPE_BF16 -> widenBf16.apply((long) k * n);
            default -> throw new IllegalArgumentException("bDtype must be FVMT_DTYPE_F32 or FVMT_DTYPE_BF16, got "
                    + bDtype);
        };
    }
}
