package org.fastvmt.backend;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.SplittableRandom;

import org.fastvmt.nativeabi.FastVmtLibrary;

/**
 * OpenBLAS's {@code cblas_sgemm}, bound through FFM: the GEMM of the cpu backend (every Linear
 * of the DiT) and the CPU roofline that the benchmarks compare the kernels with. The library is the system's
 * {@code libopenblas.so.0} (Debian package {@value #PACKAGE}), found by the dynamic loader or in
 * its multiarch {@code openblas-pthread} folder.
 */
public final class OpenBlas {

    /** The Debian/Ubuntu package that provides the library. */
    public static final String PACKAGE = "libopenblas0-pthread";

    private static final String LIBRARY = "libopenblas.so.0";
    private static final int CBLAS_ROW_MAJOR = 101;
    private static final int CBLAS_NO_TRANS = 111;
    private static final int CBLAS_TRANS = 112;

    private static OpenBlas loaded;

    private final String source;
    private final MethodHandle sgemm;
    private final MethodHandle getConfig;
    private final MethodHandle getThreads;
    private final MethodHandle setThreads;

    private OpenBlas(String source, SymbolLookup lookup) {
        this.source = source;
        Linker linker = Linker.nativeLinker();
        ValueLayout.OfInt i32 = ValueLayout.JAVA_INT;
        ValueLayout.OfFloat f32 = ValueLayout.JAVA_FLOAT;
        // cblas_sgemm(order, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc); enums and
        // blasint are 32-bit in Debian's (LP64) OpenBLAS.
        this.sgemm = linker.downcallHandle(symbol(lookup, "cblas_sgemm"), FunctionDescriptor.ofVoid(
                i32, i32, i32, i32, i32, i32, f32, ValueLayout.ADDRESS, i32, ValueLayout.ADDRESS, i32, f32,
                ValueLayout.ADDRESS, i32));
        this.getConfig = linker.downcallHandle(symbol(lookup, "openblas_get_config"),
                FunctionDescriptor.of(ValueLayout.ADDRESS));
        this.getThreads = linker.downcallHandle(symbol(lookup, "openblas_get_num_threads"),
                FunctionDescriptor.of(i32));
        this.setThreads = linker.downcallHandle(symbol(lookup, "openblas_set_num_threads"),
                FunctionDescriptor.ofVoid(i32));
    }

    /**
     * The process's OpenBLAS, loaded on first use.
     *
     * @throws IllegalStateException naming the package to install when the library is absent
     */
    public static synchronized OpenBlas load() {
        if (loaded == null) {
            List<String> tried = new ArrayList<>();
            for (String candidate : candidates()) {
                tried.add(candidate);
                Optional<SymbolLookup> lookup = open(candidate);
                if (lookup.isPresent()) {
                    loaded = new OpenBlas(candidate, lookup.get());
                    break;
                }
            }
            if (loaded == null) {
                throw new IllegalStateException("OpenBLAS (" + LIBRARY + ") was not found (tried " + tried
                        + "); the cpu backend computes its GEMMs with it: install the package " + PACKAGE
                        + " (apt-get install " + PACKAGE + ")");
            }
        }
        return loaded;
    }

    /** Why OpenBLAS cannot be loaded here, or empty when it can. */
    public static Optional<String> problem() {
        try {
            load();
            return Optional.empty();
        } catch (IllegalStateException e) {
            return Optional.of(e.getMessage());
        }
    }

    /** The loader's own search first (LD_LIBRARY_PATH, ld.so.cache), then the multiarch pthread build. */
    private static List<String> candidates() {
        String arch = FastVmtLibrary.platform().replaceFirst("^linux-", "");
        return List.of(LIBRARY, "/usr/lib/" + arch + "-linux-gnu/openblas-pthread/" + LIBRARY);
    }

    private static Optional<SymbolLookup> open(String candidate) {
        if (candidate.startsWith("/") && !Files.isRegularFile(Path.of(candidate))) {
            return Optional.empty();
        }
        try {
            return Optional.of(SymbolLookup.libraryLookup(candidate, Arena.global()));
        } catch (IllegalArgumentException notLoadable) {
            return Optional.empty();
        }
    }

    private MemorySegment symbol(SymbolLookup lookup, String name) {
        return lookup.find(name).orElseThrow(() -> new IllegalStateException(source + " has no symbol " + name
                + "; it is not OpenBLAS (install the package " + PACKAGE + ")"));
    }

    /** openblas_get_config(): version, target CPU and build options. */
    public String config() {
        try {
            // A static NUL-terminated string: its length is unknown until read.
            return ((MemorySegment) getConfig.invokeExact()).reinterpret(Long.MAX_VALUE).getString(0);
        } catch (Throwable t) {
            throw new IllegalStateException("openblas_get_config failed", t);
        }
    }

    /** The threads a GEMM runs on. */
    public int threads() {
        try {
            return (int) getThreads.invokeExact();
        } catch (Throwable t) {
            throw new IllegalStateException("openblas_get_num_threads failed", t);
        }
    }

    /** Sets the threads of later GEMMs (process-wide). */
    public void setThreads(int threads) {
        if (threads < 1) {
            throw new IllegalArgumentException("threads must be >= 1, got " + threads);
        }
        try {
            setThreads.invokeExact(threads);
        } catch (Throwable t) {
            throw new IllegalStateException("openblas_set_num_threads failed", t);
        }
    }

    /**
     * C = alpha·A·B + beta·C for row-major, contiguous fp32 matrices A [m, k], B [k, n], C [m, n]
     * in native memory.
     */
    public void sgemm(int m, int n, int k, float alpha, MemorySegment a, MemorySegment b, float beta,
            MemorySegment c) {
        sgemm(false, false, m, n, k, alpha, a, k, b, n, beta, c, n);
    }

    /**
     * cblas_sgemm in row-major order: C[m, n] = alpha·op(A)·op(B) + beta·C with op(A) [m, k] and
     * op(B) [k, n]. A is stored as [m, k] rows of stride {@code lda}, or [k, m] when
     * {@code transA}; B as [k, n] of stride {@code ldb}, or [n, k] when {@code transB}; C as
     * [m, n] of stride {@code ldc}. All in native memory.
     */
    public void sgemm(boolean transA, boolean transB, int m, int n, int k, float alpha, MemorySegment a,
            int lda, MemorySegment b, int ldb, float beta, MemorySegment c, int ldc) {
        if (m < 1 || n < 1 || k < 1) {
            throw new IllegalArgumentException("m, n and k must be >= 1, got " + m + ", " + n + ", " + k);
        }
        requireMatrix(a, "a", transA ? k : m, transA ? m : k, lda);
        requireMatrix(b, "b", transB ? n : k, transB ? k : n, ldb);
        requireMatrix(c, "c", m, n, ldc);
        try {
            sgemm.invokeExact(CBLAS_ROW_MAJOR, transA ? CBLAS_TRANS : CBLAS_NO_TRANS,
                    transB ? CBLAS_TRANS : CBLAS_NO_TRANS, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        } catch (Throwable t) {
            throw new IllegalStateException("cblas_sgemm failed", t);
        }
    }

    /** A row-major [rows, cols] matrix with rows {@code stride} floats apart must fit in {@code segment}. */
    private static void requireMatrix(MemorySegment segment, String name, int rows, int cols, int stride) {
        if (stride < cols) {
            throw new IllegalArgumentException("the leading dimension of " + name + " must be >= " + cols
                    + ", got " + stride);
        }
        requireFloats(segment, name, (long) (rows - 1) * stride + cols);
    }

    private static void requireFloats(MemorySegment segment, String name, long count) {
        if (!segment.isNative()) {
            throw new IllegalArgumentException(name + " must be native memory");
        }
        if (segment.byteSize() < count * Float.BYTES) {
            throw new IllegalArgumentException(name + " holds " + segment.byteSize() / Float.BYTES
                    + " floats, needs " + count);
        }
    }

    /**
     * A {@link SquareSgemm} of n × n matrices filled from {@code seed}, on every hardware thread
     * the JVM may use (the roofline is the whole machine's).
     */
    public SquareSgemm square(int size, long seed) {
        if (size < 1) {
            throw new IllegalArgumentException("size must be >= 1, got " + size);
        }
        setThreads(Runtime.getRuntime().availableProcessors());
        Arena arena = Arena.ofShared();
        long elements = (long) size * size;
        MemorySegment a = arena.allocate(elements * Float.BYTES, 64);
        MemorySegment b = arena.allocate(elements * Float.BYTES, 64);
        MemorySegment c = arena.allocate(elements * Float.BYTES, 64);
        SplittableRandom random = new SplittableRandom(seed);
        for (long i = 0; i < elements; i++) {
            a.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) random.nextDouble(-1, 1));
            b.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) random.nextDouble(-1, 1));
        }
        String description = config().strip() + ", cblas_sgemm, " + threads() + " threads";
        return new SquareSgemm() {
            @Override
            public String description() {
                return description;
            }

            @Override
            public int size() {
                return size;
            }

            @Override
            public void run() {
                sgemm(size, size, size, 1f, a, b, 0f, c);
            }

            @Override
            public void close() {
                arena.close();
            }
        };
    }
}
