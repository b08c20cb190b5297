package org.fastvmt.backend;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

import org.fastvmt.nativeabi.FastVmtLibrary;

/**
 * A backend whose memory is host memory: {@code cpu} (libfastvmt_cpu) and {@code cudaemu}
 * (the CUDA sources run on CPU threads, for tests).
 */
final class HostBackend implements Backend {

    private static final long ALIGNMENT = 64;

    private final FastVmtLibrary library;
    private final String description;
    private final MemoryMeter meter = new MemoryMeter();
    private final Scratch workspace = new Scratch(this::allocate);

    HostBackend(FastVmtLibrary library, String description) {
        this.library = library;
        this.description = description;
    }

    @Override
    public String name() {
        return library.build();
    }

    @Override
    public String description() {
        return description;
    }

    @Override
    public FastVmtLibrary library() {
        return library;
    }

    @Override
    public DeviceMemory allocate(long bytes) {
        if (bytes < 0) {
            throw new IllegalArgumentException("bytes must be >= 0, got " + bytes);
        }
        Arena arena = Arena.ofShared();
        try {
            // Arena memory is zero-filled.
            HostMemory memory = new HostMemory(arena, arena.allocate(Math.max(bytes, 1), ALIGNMENT), bytes, meter);
            meter.allocated(bytes);
            return memory;
        } catch (OutOfMemoryError e) {
            arena.close();
            throw new OutOfMemoryError("cannot allocate " + bytes + " bytes of host memory for " + name());
        }
    }

    @Override
    public void upload(MemorySegment src, DeviceMemory dst, long dstOffset, long bytes) {
        MemorySegment.copy(src, 0, host(dst).segment(), dstOffset, bytes);
    }

    @Override
    public void download(DeviceMemory src, long srcOffset, MemorySegment dst, long bytes) {
        MemorySegment.copy(host(src).segment(), srcOffset, dst, 0, bytes);
    }

    @Override
    public void copy(DeviceMemory src, long srcOffset, DeviceMemory dst, long dstOffset, long bytes) {
        MemorySegment.copy(host(src).segment(), srcOffset, host(dst).segment(), dstOffset, bytes);
    }

    @Override
    public void zero(DeviceMemory memory, long offset, long bytes) {
        host(memory).segment().asSlice(offset, bytes).fill((byte) 0);
    }

    @Override
    public MemorySegment stream() {
        return MemorySegment.NULL;
    }

    @Override
    public void synchronize() {
        // Host kernels return when they are done.
    }

    @Override
    public MemorySegment workspace(long bytes) {
        return workspace.get(bytes);
    }

    /**
     * OpenBLAS cblas_sgemm on both host backends (cudaemu emulates the CUDA kernels, not cuBLAS).
     * A bf16 B is widened by the library's fvmt_bf16_to_f32 into the workspace first: Debian's
     * OpenBLAS 0.3.21 and bytedeco's build export no cblas_sbgemm (checked with nm -D).
     */
    @Override
    public void gemm(boolean transA, boolean transB, int m, int n, int k, float alpha, MemorySegment a,
            MemorySegment b, int bDtype, float beta, MemorySegment c) {
        MemorySegment bF32 = GemmOperands.f32B(m, n, k, b, bDtype, count -> widen(b, count));
        OpenBlas.load().sgemm(transA, transB, m, n, k, alpha, a, transA ? m : k, bF32, transB ? k : n, beta, c, n);
    }

    private MemorySegment widen(MemorySegment bf16, long count) {
        if (bf16.byteSize() < count * Short.BYTES) {
            throw new IllegalArgumentException("b holds " + bf16.byteSize() / Short.BYTES + " bf16 values, needs "
                    + count);
        }
        MemorySegment f32 = workspace(count * Float.BYTES);
        library.check(library.h().fvmt_bf16_to_f32(bf16, f32, count, stream()));
        return f32;
    }

    @Override
    public long allocatedBytes() {
        return meter.current();
    }

    @Override
    public long peakAllocatedBytes() {
        return meter.peak();
    }

    @Override
    public void resetPeak() {
        meter.resetPeak();
    }

    @Override
    public void close() {
        workspace.close();
    }

    private HostMemory host(DeviceMemory memory) {
        if (memory instanceof HostMemory hostMemory) {
            return hostMemory;
        }
        throw new IllegalArgumentException("memory of another backend passed to " + name());
    }

    private static final class HostMemory implements DeviceMemory {
        private final Arena arena;
        private final MemorySegment segment;
        private final MemoryMeter meter;

        HostMemory(Arena arena, MemorySegment allocated, long bytes, MemoryMeter meter) {
            this.arena = arena;
            this.segment = allocated.asSlice(0, bytes);
            this.meter = meter;
        }

        @Override
        public MemorySegment segment() {
            return segment;
        }

        @Override
        public MemorySegment segment(long offset) {
            return segment.asSlice(offset);
        }

        @Override
        public long byteSize() {
            return segment.byteSize();
        }

        @Override
        public void close() {
            if (arena.scope().isAlive()) {
                arena.close();
                meter.freed(segment.byteSize());
            }
        }
    }
}
