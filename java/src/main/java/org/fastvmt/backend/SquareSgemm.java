package org.fastvmt.backend;

/**
 * One fp32 matrix product C = A·B of n × n matrices, set up once (random A and B) and run on
 * demand: the probe that measures a machine's GEMM roofline. Each {@link #run} returns when the
 * product is finished, so timing it measures the GEMM alone.
 */
public interface SquareSgemm extends AutoCloseable {

    /** The library and hardware, for users: "OpenBLAS 0.3.21 ... (2 threads)", "cuBLAS ...". */
    String description();

    /** n. */
    int size();

    /** Computes C = A·B once and waits for it. */
    void run();

    /** 2n³: the multiply-adds of one product, counted as two flops each. */
    default double flops() {
        double n = size();
        return 2 * n * n * n;
    }

    @Override
    void close();
}
