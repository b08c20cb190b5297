package org.fastvmt.backend;

import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;

import jcuda.Pointer;
import jcuda.runtime.JCuda;
import jcuda.runtime.cudaDeviceProp;
import jcuda.runtime.cudaMemcpyKind;

import org.fastvmt.nativeabi.FastVmtLibrary;

/**
 * A GPU: JCuda owns device memory and copies, libfastvmt_cuda runs the kernels on the legacy
 * default stream (so copies and kernels of both CUDA runtimes in the process stay ordered).
 * Only constructed after {@link CudaProbe} found a working device.
 */
final class CudaBackend implements Backend {

    private final FastVmtLibrary library;
    private final String description;
    private final Scratch workspace = new Scratch(this::allocate);

    CudaBackend(FastVmtLibrary library) {
        this.library = library;
        JCuda.setExceptionsEnabled(true);
        int[] device = new int[1];
        JCuda.cudaGetDevice(device);
        cudaDeviceProp properties = new cudaDeviceProp();
        JCuda.cudaGetDeviceProperties(properties, device[0]);
        this.description = "cuda (libfastvmt_cuda on device " + device[0] + ": " + properties.getName()
                + ", sm_" + properties.major + properties.minor + ", "
                + properties.totalGlobalMem / (1L << 20) + " MiB)";
    }

    @Override
    public String name() {
        return "cuda";
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
        DevicePointer pointer = new DevicePointer();
        JCuda.cudaMalloc(pointer, Math.max(bytes, 1));
        JCuda.cudaMemset(pointer, 0, Math.max(bytes, 1));
        return new DeviceBlock(pointer, bytes);
    }

    @Override
    public void upload(MemorySegment src, DeviceMemory dst, long dstOffset, long bytes) {
        forEachChunk(bytes, (offset, length) -> JCuda.cudaMemcpy(
                device(dst).pointer.withByteOffset(dstOffset + offset),
                Pointer.to(hostBuffer(src, offset, length)), length, cudaMemcpyKind.cudaMemcpyHostToDevice));
    }

    @Override
    public void download(DeviceMemory src, long srcOffset, MemorySegment dst, long bytes) {
        forEachChunk(bytes, (offset, length) -> JCuda.cudaMemcpy(
                Pointer.to(hostBuffer(dst, offset, length)),
                device(src).pointer.withByteOffset(srcOffset + offset), length,
                cudaMemcpyKind.cudaMemcpyDeviceToHost));
    }

    @Override
    public void copy(DeviceMemory src, DeviceMemory dst, long bytes) {
        JCuda.cudaMemcpy(device(dst).pointer, device(src).pointer, bytes, cudaMemcpyKind.cudaMemcpyDeviceToDevice);
    }

    @Override
    public void zero(DeviceMemory memory) {
        JCuda.cudaMemset(device(memory).pointer, 0, memory.byteSize());
    }

    @Override
    public MemorySegment stream() {
        return MemorySegment.NULL;
    }

    @Override
    public void synchronize() {
        JCuda.cudaDeviceSynchronize();
    }

    @Override
    public MemorySegment workspace(long bytes) {
        return workspace.get(bytes);
    }

    @Override
    public void close() {
        workspace.close();
    }

    private DeviceBlock device(DeviceMemory memory) {
        if (memory instanceof DeviceBlock block) {
            return block;
        }
        throw new IllegalArgumentException("memory of another backend passed to cuda");
    }

    /** A ByteBuffer over host memory, which JCuda copies from or into directly. */
    private static ByteBuffer hostBuffer(MemorySegment host, long offset, long length) {
        return host.asSlice(offset, length).asByteBuffer();
    }

    private interface ChunkCopy {
        void copy(long offset, long length);
    }

    /** ByteBuffers hold at most 2 GiB, so large copies go in chunks. */
    private static void forEachChunk(long bytes, ChunkCopy copy) {
        final long chunk = 1L << 30;
        for (long offset = 0; offset < bytes; offset += chunk) {
            copy.copy(offset, Math.min(chunk, bytes - offset));
        }
    }

    /** Exposes the raw device address JCuda holds, for the FFM calls. */
    private static final class DevicePointer extends Pointer {
        long address() {
            return getNativePointer() + getByteOffset();
        }
    }

    private static final class DeviceBlock implements DeviceMemory {
        private final DevicePointer pointer;
        private final long bytes;
        private boolean freed;

        DeviceBlock(DevicePointer pointer, long bytes) {
            this.pointer = pointer;
            this.bytes = bytes;
        }

        @Override
        public MemorySegment segment() {
            return MemorySegment.ofAddress(pointer.address());
        }

        @Override
        public MemorySegment segment(long offset) {
            return MemorySegment.ofAddress(pointer.address() + offset);
        }

        @Override
        public long byteSize() {
            return bytes;
        }

        @Override
        public void close() {
            if (!freed) {
                freed = true;
                JCuda.cudaFree(pointer);
            }
        }
    }
}
