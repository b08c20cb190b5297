package org.fastvmt.backend;

import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;

import jcuda.Pointer;
import jcuda.jcublas.JCublas2;
import jcuda.jcublas.cublasHandle;
import jcuda.jcublas.cublasMath;
import jcuda.jcublas.cublasOperation;
import jcuda.runtime.JCuda;
import jcuda.runtime.cudaDeviceProp;
import jcuda.runtime.cudaMemcpyKind;

import org.fastvmt.nativeabi.FastVmtLibrary;

/**
 * A GPU: JCuda owns device memory and copies, libfastvmt_cuda runs the kernels on the legacy
 * default stream (so copies and kernels of both CUDA runtimes in the process stay ordered), and
 * cuBLAS (JCublas2) runs the GEMMs on that stream too.
 * Only constructed after {@link CudaProbe} found a working device.
 */
final class CudaBackend implements Backend {

    private final FastVmtLibrary library;
    private final String description;
    private final MemoryMeter meter = new MemoryMeter();
    private final Scratch workspace = new Scratch(this::allocate);
    private cublasHandle cublas;

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
        meter.allocated(bytes);
        return new DeviceBlock(pointer, bytes, meter);
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
    public void copy(DeviceMemory src, long srcOffset, DeviceMemory dst, long dstOffset, long bytes) {
        JCuda.cudaMemcpy(device(dst).pointer.withByteOffset(dstOffset), device(src).pointer.withByteOffset(srcOffset),
                bytes, cudaMemcpyKind.cudaMemcpyDeviceToDevice);
    }

    @Override
    public void zero(DeviceMemory memory, long offset, long bytes) {
        JCuda.cudaMemset(device(memory).pointer.withByteOffset(offset), 0, bytes);
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

    /**
     * cublasSgemm in CUBLAS_DEFAULT_MATH (true fp32, no TF32). cuBLAS is column-major, and a
     * row-major matrix read column-major is its transpose, so the row-major C = op(A)·op(B) is
     * computed as the column-major C^T = op(B)^T·op(A)^T: the operands swap places, keep their
     * transpose flags and their leading dimensions (the stored row lengths). A bf16 B is widened
     * on the device by fvmt_bf16_to_f32 into the workspace first.
     */
    @Override
    public void gemm(boolean transA, boolean transB, int m, int n, int k, float alpha, MemorySegment a,
            MemorySegment b, int bDtype, float beta, MemorySegment c) {
        MemorySegment bF32 = GemmOperands.f32B(m, n, k, b, bDtype, count -> {
            MemorySegment widened = workspace(count * Float.BYTES);
            library.check(library.h().fvmt_bf16_to_f32(b, widened, count, stream()));
            return widened;
        });
        JCublas2.cublasSgemm(cublas(), transB ? cublasOperation.CUBLAS_OP_T : cublasOperation.CUBLAS_OP_N,
                transA ? cublasOperation.CUBLAS_OP_T : cublasOperation.CUBLAS_OP_N, n, m, k,
                Pointer.to(new float[] {alpha}), new DeviceAddress(bF32.address()), transB ? k : n,
                new DeviceAddress(a.address()), transA ? m : k,
                Pointer.to(new float[] {beta}), new DeviceAddress(c.address()), n);
    }

    /** The cuBLAS handle, created on first use; its stream is the legacy default stream, as the kernels'. */
    private cublasHandle cublas() {
        if (cublas == null) {
            JCublas2.setExceptionsEnabled(true);
            cublasHandle handle = new cublasHandle();
            JCublas2.cublasCreate(handle);
            JCublas2.cublasSetMathMode(handle, cublasMath.CUBLAS_DEFAULT_MATH);
            cublas = handle;
        }
        return cublas;
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
        if (cublas != null) {
            JCublas2.cublasDestroy(cublas);
            cublas = null;
        }
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

    /** A device address received from FFM (a tensor's segment), handed to JCublas. */
    private static final class DeviceAddress extends Pointer {
        DeviceAddress(long address) {
            super(address);
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
        private final MemoryMeter meter;
        private boolean freed;

        DeviceBlock(DevicePointer pointer, long bytes, MemoryMeter meter) {
            this.pointer = pointer;
            this.bytes = bytes;
            this.meter = meter;
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
                meter.freed(bytes);
            }
        }
    }
}
