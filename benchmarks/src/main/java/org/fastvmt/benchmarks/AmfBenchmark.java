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
import org.fastvmt.bench.AmfBenchShape;
import org.fastvmt.bench.AmfWorkload;

/**
 * DiTFlow's full AMF over all F² frame pairs against FastVMT's windowed AMF over the pairs
 * j in [i, i + sf), forward and forward + backward, on random F32 Q and K. One call takes
 * seconds to minutes at Wan shapes, so each is timed as a single shot: one warm-up, three
 * measurements. dQ and dK are zeroed before every call, outside the timed region.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.SingleShotTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 1)
@Measurement(iterations = 3)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow"})
public class AmfBenchmark {

    /** Workload seed: the same Q, K and dΔ in every fork. */
    static final long SEED = 20260205L;

    /** FxHxWxC: Wan2.1-1.3B's 480p latent (the default of bench amf) and a smaller one with Wan's frame. */
    @Param({"21x30x52x1536", "9x30x52x256"})
    public String shape;

    /** FastVMT's frame span. */
    @Param({"4"})
    public int sf;

    /** Search window side l. */
    @Param({"21"})
    public int window;

    /** cpu, cuda, cudaemu or auto. */
    @Param({"cpu"})
    public String device;

    private Backend backend;
    private AmfWorkload workload;

    @Setup(Level.Trial)
    public void openWorkload() {
        AmfBenchShape parsed = AmfBenchShape.parse(shape).withSf(sf).withWindow(window);
        backend = Backends.open(Backends.select(Device.parse(device)).device());
        workload = AmfWorkload.create(backend, parsed, SEED);
    }

    @Setup(Level.Invocation)
    public void zeroGradients() {
        workload.zeroGradients();
    }

    @TearDown(Level.Trial)
    public void close() {
        workload.close();
        backend.close();
    }

    @Benchmark
    public void fullForward() {
        workload.fullForward();
    }

    @Benchmark
    public void windowForward() {
        workload.windowForward();
    }

    @Benchmark
    public void fullForwardBackward() {
        workload.fullForwardBackward();
    }

    @Benchmark
    public void windowForwardBackward() {
        workload.windowForwardBackward();
    }
}
