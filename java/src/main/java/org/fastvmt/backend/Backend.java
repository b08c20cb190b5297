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

    /** Copies {@code bytes} bytes between two blocks of this backend. */
    void copy(DeviceMemory src, DeviceMemory dst, long bytes);

    /** Sets every byte of {@code memory} to zero. */
    void zero(DeviceMemory memory);

    /** The stream kernels are queued on (NULL: the default stream, or none on host backends). */
    MemorySegment stream();

    /** Waits until queued work is done. */
    void synchronize();

    /**
     * Scratch memory of at least {@code bytes} bytes for one native call, reused by the next
     * call (a kernel's *_workspace_bytes); NULL when {@code bytes} is 0.
     */
    MemorySegment workspace(long bytes);

    @Override
    void close();
}
