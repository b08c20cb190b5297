package org.fastvmt.pipeline;

import java.lang.foreign.MemorySegment;

import org.fastvmt.backend.Backend;
import org.fastvmt.backend.DeviceMemory;
import org.fastvmt.nativeabi.FastVmtLibrary;

/**
 * A real backend that also counts its GEMM work (Σ m·n·k over calls): every call goes to the
 * wrapped backend unchanged. The DiT's linear layers are its GEMMs, so the count says how much of
 * the model ran.
 */
final class CountingBackend implements Backend {

    private final Backend delegate;
    private long gemmCalls;
    private long gemmWork;

    CountingBackend(Backend delegate) {
        this.delegate = delegate;
    }

    long gemmCalls() {
        return gemmCalls;
    }

    /** Σ m·n·k of every GEMM so far. */
    long gemmWork() {
        return gemmWork;
    }

    @Override
    public void gemm(boolean transA, boolean transB, int m, int n, int k, float alpha, MemorySegment a,
            MemorySegment b, int bDtype, float beta, MemorySegment c) {
        gemmCalls++;
        gemmWork += (long) m * n * k;
        delegate.gemm(transA, transB, m, n, k, alpha, a, b, bDtype, beta, c);
    }

    @Override
    public String name() {
        return delegate.name();
    }

    @Override
    public String description() {
        return delegate.description() + ", counting GEMMs";
    }

    @Override
    public FastVmtLibrary library() {
        return delegate.library();
    }

    @Override
    public DeviceMemory allocate(long bytes) {
        return delegate.allocate(bytes);
    }

    @Override
    public void upload(MemorySegment src, DeviceMemory dst, long dstOffset, long bytes) {
        delegate.upload(src, dst, dstOffset, bytes);
    }

    @Override
    public void download(DeviceMemory src, long srcOffset, MemorySegment dst, long bytes) {
        delegate.download(src, srcOffset, dst, bytes);
    }

    @Override
    public void copy(DeviceMemory src, long srcOffset, DeviceMemory dst, long dstOffset, long bytes) {
        delegate.copy(src, srcOffset, dst, dstOffset, bytes);
    }

    @Override
    public void zero(DeviceMemory memory, long offset, long bytes) {
        delegate.zero(memory, offset, bytes);
    }

    @Override
    public MemorySegment stream() {
        return delegate.stream();
    }

    @Override
    public void synchronize() {
        delegate.synchronize();
    }

    @Override
    public MemorySegment workspace(long bytes) {
        return delegate.workspace(bytes);
    }

    @Override
    public long allocatedBytes() {
        return delegate.allocatedBytes();
    }

    @Override
    public long peakAllocatedBytes() {
        return delegate.peakAllocatedBytes();
    }

    @Override
    public void resetPeak() {
        delegate.resetPeak();
    }

    /** Closes nothing: the wrapped backend belongs to the test class. */
    @Override
    public void close() {
    }
}
