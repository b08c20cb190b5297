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
import org.fastvmt.bench.DitBlockWorkload;
import org.fastvmt.model.wan.WanConfig;

/**
 * One Wan2.1 block (random BF16 weights of the config's widths) forward, and forward + backward to
 * its input, at one and four 480×832 latent frames (1 560 and 6 240 tokens) and 512 text tokens.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 1, time = 5)
@Measurement(iterations = 3, time = 5)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow"})
public class DitBlockBenchmark {

    static final long SEED = 1560L;

    /** tiny, 1.3b or 14b. */
    @Param({"1.3b"})
    public String config;

    @Param({"1560", "6240"})
    public int tokens;

    /** cpu, cuda, cudaemu or auto. */
    @Param({"cpu"})
    public String device;

    private Backend backend;
    private DitBlockWorkload workload;

    @Setup(Level.Trial)
    public void open() {
        backend = Backends.open(Backends.select(Device.parse(device)).device());
        workload = DitBlockWorkload.create(backend, WanConfig.named(config), tokens, SEED);
    }

    @TearDown(Level.Trial)
    public void close() {
        workload.close();
        backend.close();
    }

    @Benchmark
    public void blockForward() {
        workload.forward();
    }

    @Benchmark
    public void blockForwardBackward() {
        workload.forwardBackward();
    }
}
