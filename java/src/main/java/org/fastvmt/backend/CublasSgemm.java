package org.fastvmt.backend;

import java.util.SplittableRandom;

import jcuda.CudaException;
import jcuda.Pointer;
import jcuda.Sizeof;
import jcuda.jcublas.JCublas2;
import jcuda.jcublas.cublasHandle;
import jcuda.jcublas.cublasMath;
import jcuda.jcublas.cublasOperation;
import jcuda.runtime.JCuda;
import jcuda.runtime.cudaDeviceProp;
import jcuda.runtime.cudaMemcpyKind;

/**
 * cuBLAS's {@code cublasSgemm} through JCublas2: the GPU GEMM roofline of the cuda backend. The
 * math mode is CUBLAS_DEFAULT_MATH, so the product is true fp32 (no TF32 tensor cores), like the
 * AMF kernels it is compared with.
 */
public final class CublasSgemm implements SquareSgemm {

    private final int size;
    private String description;
    private final cublasHandle handle = new cublasHandle();
    private boolean handleCreated;
    private final Pointer a = new Pointer();
    private final Pointer b = new Pointer();
    private final Pointer c = new Pointer();
    private final Pointer one = Pointer.to(new float[] {1f});
    private final Pointer zero = Pointer.to(new float[] {0f});
    private boolean closed;

    private CublasSgemm(int size) {
        this.size = size;
    }

    private void prepare(long seed) {
        JCuda.setExceptionsEnabled(true);
        JCublas2.setExceptionsEnabled(true);
        JCublas2.cublasCreate(handle);
        handleCreated = true;
        JCublas2.cublasSetMathMode(handle, cublasMath.CUBLAS_DEFAULT_MATH);
        long bytes = (long) size * size * Sizeof.FLOAT;
        JCuda.cudaMalloc(a, bytes);
        JCuda.cudaMalloc(b, bytes);
        JCuda.cudaMalloc(c, bytes);
        upload(a, seed);
        upload(b, seed + 1);
        int[] version = new int[1];
        JCublas2.cublasGetVersion(handle, version);
        int[] device = new int[1];
        JCuda.cudaGetDevice(device);
        cudaDeviceProp properties = new cudaDeviceProp();
        JCuda.cudaGetDeviceProperties(properties, device[0]);
        this.description = "cuBLAS " + version[0] / 10000 + "." + version[0] / 100 % 100 + "." + version[0] % 100
                + " cublasSgemm (fp32, no TF32) on " + properties.getName();
    }

    /**
     * n × n matrices filled from {@code seed} on the current CUDA device.
     *
     * @throws IllegalStateException when cuBLAS cannot be loaded or fails
     */
    public static CublasSgemm open(int size, long seed) {
        if (size < 1 || (long) size * size > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("size must be in [1, 46340], got " + size);
        }
        CublasSgemm sgemm = new CublasSgemm(size);
        try {
            sgemm.prepare(seed);
            return sgemm;
        } catch (LinkageError e) {
            sgemm.close();
            throw new IllegalStateException("cuBLAS cannot be loaded for the sgemm roofline (JCublas "
                    + "needs the CUDA 12 libcublas.so.12 on the library path): " + e.getMessage(), e);
        } catch (CudaException e) {
            sgemm.close();
            throw new IllegalStateException("cuBLAS failed while preparing the sgemm roofline: " + e.getMessage(), e);
        }
    }

    private void upload(Pointer matrix, long seed) {
        float[] values = new float[size * size];
        SplittableRandom random = new SplittableRandom(seed);
        for (int i = 0; i < values.length; i++) {
            values[i] = (float) random.nextDouble(-1, 1);
        }
        JCuda.cudaMemcpy(matrix, Pointer.to(values), (long) values.length * Sizeof.FLOAT,
                cudaMemcpyKind.cudaMemcpyHostToDevice);
    }

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
        // Column-major in cuBLAS; for square timing the layout is immaterial.
        JCublas2.cublasSgemm(handle, cublasOperation.CUBLAS_OP_N, cublasOperation.CUBLAS_OP_N, size, size, size,
                one, a, size, b, size, zero, c, size);
        JCuda.cudaDeviceSynchronize();
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            JCuda.cudaFree(a);
            JCuda.cudaFree(b);
            JCuda.cudaFree(c);
            if (handleCreated) {
                JCublas2.cublasDestroy(handle);
            }
        }
    }
}
