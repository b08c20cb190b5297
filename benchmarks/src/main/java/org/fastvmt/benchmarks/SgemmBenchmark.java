package org.fastvmt.benchmarks;

import java.util.concurrent.TimeUnit;

import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import org.fastvmt.backend.Backend;
import org.fastvmt.backend.Backends;
import org.fastvmt.backend.Device;
import org.fastvmt.backend.SquareSgemm;
import org.fastvmt.bench.SgemmRoofline;

/**
 * The GEMM roofline: one square fp32 sgemm C = A·B (OpenBLAS on every core for cpu and cudaemu,
 * cuBLAS for cuda), 2·n³ flops per call.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow"})
public class SgemmBenchmark {

    /** M = N = K. */
    @Param({"" + SgemmRoofline.DEFAULT_SIZE})
    public int size;

    /** cpu, cuda, cudaemu or auto: whose roofline. */
    @Param({"cpu"})
    public String device;

    private Backend backend;
    private SquareSgemm sgemm;

    @Setup(Level.Trial)
    public void open() {
        backend = Backends.open(Backends.select(Device.parse(device)).device());
        sgemm = SgemmRoofline.open(backend, size);
    }

    @TearDown(Level.Trial)
    public void close() {
        sgemm.close();
        backend.close();
    }

    @Benchmark
    public void sgemm() {
        sgemm.run();
    }
}
