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
import org.fastvmt.bench.AttentionWorkload;

/**
 * Wan's self-attention at one latent frame of 480×832 (1 560 tokens, 12 heads × 128): the fused
 * kernel forward and forward + backward, and the naive attention that stores each head's
 * 1560×1560 score matrix (OpenBLAS GEMMs and a Java softmax; host backends only).
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow"})
public class AttentionBenchmark {

    static final long SEED = 1560L;

    @Param({"1560"})
    public int tokens;

    @Param({"12"})
    public int heads;

    @Param({"128"})
    public int headDim;

    /** cpu, cuda, cudaemu or auto. */
    @Param({"cpu"})
    public String device;

    private Backend backend;
    private AttentionWorkload workload;

    @Setup(Level.Trial)
    public void open() {
        backend = Backends.open(Backends.select(Device.parse(device)).device());
        workload = new AttentionWorkload(backend, tokens, heads, headDim, SEED);
    }

    @TearDown(Level.Trial)
    public void close() {
        workload.close();
        backend.close();
    }

    @Benchmark
    public void fusedForward() {
        workload.fusedForward();
    }

    @Benchmark
    public void fusedForwardBackward() {
        workload.fusedForwardBackward();
    }

    @Benchmark
    public void naiveForward() {
        workload.naiveForward();
    }
}
