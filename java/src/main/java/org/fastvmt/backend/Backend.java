package org.fastvmt.backend;

import java.lang.foreign.MemorySegment;

import org.fastvmt.nativeabi.FastVmtLibrary;

/**
 * Where tensors live and kernels run: host memory with libfastvmt_cpu ({@code cpu}), host
 * memory with the emulated CUDA build ({@code cudaemu}), or a GPU through JCuda with
 * libfastvmt_cuda ({@code cuda}). A backend is used from one thread at a time.
 */
public interface Backend extends AutoCloseable {

    /** "cpu", "cuda" or "cudaemu". */
    String name();

    /** A line for users: the build and the hardware it runs on. */
    String description();

    /** The native kernels of this backend. */
    FastVmtLibrary library();

    /** Zero-filled memory of {@code bytes} bytes, 64-byte aligned or better. */
    DeviceMemory allocate(long bytes);

    /** Copies {@code bytes} bytes from host memory into {@code dst} at {@code dstOffset}. */
    void upload(MemorySegment src, DeviceMemory dst, long dstOffset, long bytes);

    /** Copies {@code bytes} bytes from {@code src} at {@code srcOffset} into host memory. */
    void download(DeviceMemory src, long srcOffset, MemorySegment dst, long bytes);

    /** Copies {@code bytes} bytes between two blocks (or two ranges of one block) of this backend. */
    void copy(DeviceMemory src, long srcOffset, DeviceMemory dst, long dstOffset, long bytes);

    /** Sets {@code bytes} bytes of {@code memory} from {@code offset} on to zero. */
    void zero(DeviceMemory memory, long offset, long bytes);

    /** The stream kernels are queued on (NULL: the default stream, or none on host backends). */
    MemorySegment stream();

    /** Waits until queued work is done. */
    void synchronize();

    /**
     * Scratch memory of at least {@code bytes} bytes for one native call, reused by the next
     * call (a kernel's *_workspace_bytes); NULL when {@code bytes} is 0.
     */
    MemorySegment workspace(long bytes);

    /**
     * C[m, n] = alpha · op(A)[m, k] · op(B)[k, n] + beta · C, where op(X) is X or X^T as
     * {@code transA}/{@code transB} say. A and C are fp32; B is fp32 or bf16 ({@code bDtype}
     * FVMT_DTYPE_F32 or FVMT_DTYPE_BF16; bf16 is widened to fp32 in the workspace first, so the
     * product is fp32 either way). Every matrix is row-major and contiguous as stored: A is
     * [m, k] ([k, m] when transposed), B is [k, n] ([n, k] when transposed), C is [m, n].
     * Uses the workspace (for a bf16 B).
     */
    void gemm(boolean transA, boolean transB, int m, int n, int k, float alpha, MemorySegment a,
            MemorySegment b, int bDtype, float beta, MemorySegment c);

    /** Bytes of this backend's memory allocated and not yet freed (tensors and workspace). */
    long allocatedBytes();

    /** The largest {@link #allocatedBytes()} since the backend opened or {@link #resetPeak()}. */
    long peakAllocatedBytes();

    /** Starts a new peak: {@link #peakAllocatedBytes()} becomes the current allocation. */
    void resetPeak();

    @Override
    void close();
}
