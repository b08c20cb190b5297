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
import org.fastvmt.bench.GuidanceBenchShape;
import org.fastvmt.bench.GuidanceWorkload;
import org.fastvmt.pipeline.GuidanceMode;
import org.fastvmt.pipeline.PhaseTimings;

/**
 * FastVMT's guided denoising steps against DiTFlow's on the same random DiT and latents: G steps,
 * each with the reference AMF, N AdamW iterations (fastvmt: windowed AMF, a fresh gradient every
 * 3rd iteration; ditflow: full AMF, a fresh gradient every iteration) and the step's two CFG
 * forwards, through {@link GuidanceWorkload} (the code {@code fastvmt bench guidance} times). A
 * call includes the denoising forwards, which are the same in both modes, so the ratio of the two
 * scores is {@code bench guidance}'s speedup_total; {@code bench guidance} also reports the
 * guidance alone from the pipeline's phase timings. A call takes seconds (tiny) to tens of
 * minutes (small on a CPU), so each is a single shot: one warm-up, three measurements.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.SingleShotTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 1)
@Measurement(iterations = 3)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow"})
public class GuidanceBenchmark {

    /** Workload seed: the same model, latents and noise in every fork. */
    static final long SEED = 20260205L;

    /** tiny (seconds) or small (4 blocks, dim 256, 9 frames of 30x52 tokens: the DiT dominates). */
    @Param({"tiny", "small"})
    public String config;

    /** fastvmt or ditflow. */
    @Param({"fastvmt", "ditflow"})
    public String mode;

    /** Guided denoising steps per call. */
    @Param({"1"})
    public int guidedSteps;

    /** AdamW iterations per guided step. */
    @Param({"10"})
    public int iterations;

    /** cpu, cuda, cudaemu or auto. */
    @Param({"cpu"})
    public String device;

    private Backend backend;
    private GuidanceWorkload workload;
    private GuidanceMode guidance;

    @Setup(Level.Trial)
    public void openWorkload() {
        guidance = GuidanceMode.parse(mode);
        backend = Backends.open(Backends.select(Device.parse(device)).device());
        workload = GuidanceWorkload.create(backend, GuidanceBenchShape.named(config), SEED);
    }

    @TearDown(Level.Trial)
    public void close() {
        workload.close();
        backend.close();
    }

    @Benchmark
    public double guidedSteps() {
        return workload.run(guidance, guidedSteps, iterations).ms(PhaseTimings.TOTAL);
    }
}
