package org.fastvmt.cli;

import java.io.PrintWriter;
import java.lang.management.ManagementFactory;
import java.util.Arrays;
import java.util.Locale;
import java.util.concurrent.Callable;

import com.google.gson.GsonBuilder;
import com.google.gson.JsonObject;

import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import org.fastvmt.backend.Backend;
import org.fastvmt.bench.GuidanceBenchShape;
import org.fastvmt.bench.GuidanceFlops;
import org.fastvmt.bench.GuidanceWorkload;
import org.fastvmt.pipeline.GuidanceMode;
import org.fastvmt.pipeline.PhaseTimings;
import org.fastvmt.pipeline.TransferSettings;

/** {@code fastvmt bench guidance}: FastVMT's guided steps against DiTFlow's on the same model and latents. */
@Command(name = "guidance", mixinStandardHelpOptions = true, sortOptions = false,
        description = {
            "Time G guided denoising steps of motion transfer in fastvmt mode (windowed AMF over the pairs "
                    + "j in [i, i+4), a fresh gradient every 3rd iteration, the kept one in between) and in "
                    + "ditflow mode (full AMF over all frame pairs, a fresh gradient every iteration), on the "
                    + "same random DiT (F32) and the same random latents and prompt.",
            "",
            "fastvmt_ms and ditflow_ms are the guidance of the G steps: the reference AMF and the N AdamW "
                    + "iterations of each step. The denoising forwards (two per step, for classifier-free "
                    + "guidance) are the same in both modes and are reported apart: *_total_ms and "
                    + "speedup_total include them. Each mode runs --repeats times (alternating, after one "
                    + "untimed warm-up step); the median is reported. *_total_cpu_ms is the process CPU time "
                    + "of a whole run (all threads): on a CPU shared with other work it is disturbed less "
                    + "than wall time (run with OMP_WAIT_POLICY=passive so that idle threads do not spin).",
            "",
            "Configs: small (the default) = 4 blocks, dim 256 (2 heads x 128), FFN 1024, latents "
                    + "[16, 9, 60, 104] = 9 frames of 30x52 tokens, AMF from block 3: a model where the DiT "
                    + "dominates. tiny = the 2-block test model on latents [4, 5, 12, 16]: seconds, for tests.",
            "",
            "Expectation by FLOPs (printed with the figures): with --iterations 10 and interval 3, fastvmt "
                    + "computes 4 of the 10 fresh gradients, so its DiT work is at most 2.5x less than "
                    + "ditflow's; the rest of the speedup comes from the windowed AMF against the full AMF, "
                    + "which matters as far as the AMF's share of the work does. On a CPU a small run "
                    + "with the defaults takes hours (100 fresh gradients for ditflow); use a GPU, or fewer "
                    + "--guided-steps.",
        })
final class BenchGuidanceCommand implements Callable<Integer> {

    private static final long SEED = 20260205L;

    @Option(names = "--config", paramLabel = "tiny|small", defaultValue = "small",
            description = "Model and latents. Default: ${DEFAULT-VALUE}.")
    private String config;

    @Option(names = "--guided-steps", paramLabel = "G", defaultValue = "10",
            description = "Guided denoising steps per run. Default: ${DEFAULT-VALUE}.")
    private int guidedSteps;

    @Option(names = "--iterations", paramLabel = "N", defaultValue = "10",
            description = "AdamW iterations per guided step. Default: ${DEFAULT-VALUE}.")
    private int iterations;

    @Option(names = "--repeats", paramLabel = "R", defaultValue = "1",
            description = "Timed runs per mode; the median is reported. Default: ${DEFAULT-VALUE}.")
    private int repeats;

    @Option(names = "--json", description = "Also print the figures as one JSON object on the last line of "
            + "standard output.")
    private boolean json;

    @Mixin
    private DeviceOptions deviceOptions;

    @Spec
    private CommandSpec spec;

    @Override
    public Integer call() {
        GuidanceBenchShape shape = GuidanceBenchShape.named(config);
        BenchCommand.requireAtLeastOne("--guided-steps", guidedSteps);
        BenchCommand.requireAtLeastOne("--iterations", iterations);
        BenchCommand.requireAtLeastOne("--repeats", repeats);
        PrintWriter err = spec.commandLine().getErr();
        try (Backend backend = deviceOptions.open(err);
                GuidanceWorkload workload = GuidanceWorkload.create(backend, shape, SEED)) {
            TransferSettings fastvmt = workload.settings(GuidanceMode.FASTVMT, guidedSteps, iterations);
            TransferSettings ditflow = workload.settings(GuidanceMode.DITFLOW, guidedSteps, iterations);
            double fastvmtFlops = guidedSteps * GuidanceFlops.guidanceStep(shape, true, iterations, fastvmt.interval());
            double ditflowFlops = guidedSteps * GuidanceFlops.guidanceStep(shape, false, iterations, ditflow.interval());
            double denoisingFlops = guidedSteps * GuidanceFlops.denoisingStep(shape);
            err.printf(Locale.ROOT, "fastvmt: %s%n", shape);
            err.printf(Locale.ROOT, "fastvmt: %d guided steps x %d iterations per mode, %d repeat(s); guidance work "
                    + "%.1f GFLOP (fastvmt) and %.1f GFLOP (ditflow), denoising %.1f GFLOP per run%n", guidedSteps,
                    iterations, repeats, fastvmtFlops / 1e9, ditflowFlops / 1e9, denoisingFlops / 1e9);
            err.flush();

            long warmStart = System.nanoTime();
            workload.run(GuidanceMode.FASTVMT, 1, 1);
            double warmMs = (System.nanoTime() - warmStart) / 1e6;
            double warmFlops = GuidanceFlops.guidanceStep(shape, true, 1, fastvmt.interval())
                    + GuidanceFlops.denoisingStep(shape);
            double estimateMs = warmMs / warmFlops * repeats * (fastvmtFlops + ditflowFlops + 2 * denoisingFlops);
            err.printf(Locale.ROOT, "fastvmt: warm-up step %.1f s; the measurement takes about %s%n", warmMs / 1e3,
                    duration(estimateMs));
            err.flush();

            PhaseTimings[] fast = new PhaseTimings[repeats];
            PhaseTimings[] dit = new PhaseTimings[repeats];
            double[] fastCpu = new double[repeats];
            double[] ditCpu = new double[repeats];
            try (Progress bar = Progress.start("bench guidance", 2L * repeats)) {
                for (int r = 0; r < repeats; r++) {
                    bar.message("fastvmt " + (r + 1) + "/" + repeats);
                    long cpu = processCpuNanos();
                    fast[r] = workload.run(GuidanceMode.FASTVMT, guidedSteps, iterations);
                    fastCpu[r] = (processCpuNanos() - cpu) / 1e6;
                    bar.step();
                    bar.message("ditflow " + (r + 1) + "/" + repeats);
                    cpu = processCpuNanos();
                    dit[r] = workload.run(GuidanceMode.DITFLOW, guidedSteps, iterations);
                    ditCpu[r] = (processCpuNanos() - cpu) / 1e6;
                    bar.step();
                    if (!bar.visible()) {
                        err.printf(Locale.ROOT, "fastvmt: repeat %d/%d: fastvmt %.1f s, ditflow %.1f s (guidance)%n",
                                r + 1, repeats, GuidanceWorkload.guidanceMs(fast[r]) / 1e3,
                                GuidanceWorkload.guidanceMs(dit[r]) / 1e3);
                        err.flush();
                    }
                }
            }
            JsonObject f = figures(backend, shape, fastvmt, fast, dit, fastvmtFlops, ditflowFlops, denoisingFlops);
            f.addProperty("fastvmt_total_cpu_ms", median(fastCpu));
            f.addProperty("ditflow_total_cpu_ms", median(ditCpu));
            f.addProperty("speedup_total_cpu_time", median(ditCpu) / median(fastCpu));
            report(f);
        }
        return 0;
    }

    private JsonObject figures(Backend backend, GuidanceBenchShape shape, TransferSettings fastvmt,
            PhaseTimings[] fast, PhaseTimings[] dit, double fastvmtFlops, double ditflowFlops, double denoisingFlops) {
        JsonObject o = new JsonObject();
        o.addProperty("config", shape.name());
        o.addProperty("device", backend.name());
        o.addProperty("device_description", backend.description());
        o.addProperty("layers", shape.config().layers());
        o.addProperty("dim", shape.config().dim());
        o.addProperty("heads", shape.config().heads());
        o.addProperty("ffn_dim", shape.config().ffnDim());
        o.addProperty("latent_shape", Arrays.toString(shape.latentShape()));
        o.addProperty("tokens", shape.tokens());
        o.addProperty("amf_block", shape.amfBlock());
        o.addProperty("guided_steps", guidedSteps);
        o.addProperty("iterations", iterations);
        o.addProperty("interval", fastvmt.interval());
        o.addProperty("repeats", repeats);
        double fastMs = median(fast, GuidanceWorkload::guidanceMs);
        double ditMs = median(dit, GuidanceWorkload::guidanceMs);
        double fastTotal = median(fast, t -> t.ms(PhaseTimings.TOTAL));
        double ditTotal = median(dit, t -> t.ms(PhaseTimings.TOTAL));
        o.addProperty("fastvmt_ms", fastMs);
        o.addProperty("ditflow_ms", ditMs);
        o.addProperty("speedup", ditMs / fastMs);
        o.addProperty("fastvmt_total_ms", fastTotal);
        o.addProperty("ditflow_total_ms", ditTotal);
        o.addProperty("speedup_total", ditTotal / fastTotal);
        for (String phase : new String[] {"reference_amf", "fresh_guidance", "reused_iterations", "denoising"}) {
            o.addProperty("fastvmt_" + phase + "_ms", median(fast, t -> t.ms(phase)));
            o.addProperty("fastvmt_" + phase + "_count", fast[0].count(phase));
            o.addProperty("ditflow_" + phase + "_ms", median(dit, t -> t.ms(phase)));
            o.addProperty("ditflow_" + phase + "_count", dit[0].count(phase));
        }
        o.addProperty("fastvmt_gflop", fastvmtFlops / 1e9);
        o.addProperty("ditflow_gflop", ditflowFlops / 1e9);
        o.addProperty("denoising_gflop", denoisingFlops / 1e9);
        o.addProperty("flop_ratio", ditflowFlops / fastvmtFlops);
        o.addProperty("flop_ratio_total", (ditflowFlops + denoisingFlops) / (fastvmtFlops + denoisingFlops));
        o.addProperty("fresh_gradient_ratio", (double) iterations
                / GuidanceFlops.freshGradients(iterations, fastvmt.interval()));
        o.addProperty("fastvmt_gflops", fastvmtFlops / (fastMs * 1e6));
        o.addProperty("ditflow_gflops", ditflowFlops / (ditMs * 1e6));
        return o;
    }

    private static double median(PhaseTimings[] runs, java.util.function.ToDoubleFunction<PhaseTimings> figure) {
        double[] values = Arrays.stream(runs).mapToDouble(figure).sorted().toArray();
        int middle = values.length / 2;
        return values.length % 2 == 1 ? values[middle] : (values[middle - 1] + values[middle]) / 2;
    }

    /**
     * CPU time of this process (every thread: the OpenMP workers too), or -1 when the JVM cannot
     * tell. On a CPU shared with other work it is disturbed less than wall-clock time (threads
     * waiting for a core are not charged), provided idle OpenMP threads sleep
     * (OMP_WAIT_POLICY=passive) instead of spinning.
     */
    private static long processCpuNanos() {
        if (ManagementFactory.getOperatingSystemMXBean() instanceof com.sun.management.OperatingSystemMXBean os) {
            return os.getProcessCpuTime();
        }
        return -1;
    }

    private static double median(double[] values) {
        double[] sorted = values.clone();
        Arrays.sort(sorted);
        int middle = sorted.length / 2;
        return sorted.length % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
    }

    private static String duration(double ms) {
        if (ms < 120_000) {
            return String.format(Locale.ROOT, "%.1f s", ms / 1000);
        }
        if (ms < 2 * 3_600_000) {
            return String.format(Locale.ROOT, "%.1f min", ms / 60_000);
        }
        return String.format(Locale.ROOT, "%.1f h", ms / 3_600_000);
    }

    private void report(JsonObject f) {
        PrintWriter out = spec.commandLine().getOut();
        out.printf(Locale.ROOT, "Guidance benchmark on %s, config %s (%d blocks, dim %d, %d tokens, latents %s)%n",
                f.get("device_description").getAsString(), f.get("config").getAsString(), f.get("layers").getAsInt(),
                f.get("dim").getAsInt(), f.get("tokens").getAsLong(), f.get("latent_shape").getAsString());
        out.printf(Locale.ROOT, "%d guided steps x %d iterations; fastvmt: fresh gradient every %d; median of %d%n",
                f.get("guided_steps").getAsInt(), f.get("iterations").getAsInt(), f.get("interval").getAsInt(),
                f.get("repeats").getAsInt());
        out.printf(Locale.ROOT, "%-18s %12s %6s %12s %6s%n", "phase", "fastvmt ms", "count", "ditflow ms", "count");
        for (String phase : new String[] {"reference_amf", "fresh_guidance", "reused_iterations", "denoising"}) {
            out.printf(Locale.ROOT, "%-18s %12.1f %6d %12.1f %6d%n", phase, f.get("fastvmt_" + phase + "_ms").getAsDouble(),
                    f.get("fastvmt_" + phase + "_count").getAsInt(), f.get("ditflow_" + phase + "_ms").getAsDouble(),
                    f.get("ditflow_" + phase + "_count").getAsInt());
        }
        out.printf(Locale.ROOT, "guidance:            fastvmt %.1f ms, ditflow %.1f ms: speedup %.2fx (FLOP ratio %.2fx; "
                + "fresh gradients %.2fx)%n", f.get("fastvmt_ms").getAsDouble(), f.get("ditflow_ms").getAsDouble(),
                f.get("speedup").getAsDouble(), f.get("flop_ratio").getAsDouble(),
                f.get("fresh_gradient_ratio").getAsDouble());
        out.printf(Locale.ROOT, "with the denoising:  fastvmt %.1f ms, ditflow %.1f ms: speedup %.2fx (FLOP ratio %.2fx)%n",
                f.get("fastvmt_total_ms").getAsDouble(), f.get("ditflow_total_ms").getAsDouble(),
                f.get("speedup_total").getAsDouble(), f.get("flop_ratio_total").getAsDouble());
        if (f.get("fastvmt_total_cpu_ms").getAsDouble() > 0) {
            out.printf(Locale.ROOT, "process CPU time:    fastvmt %.1f ms, ditflow %.1f ms: ratio %.2fx (with the "
                    + "denoising; less disturbed than wall time by other work on a shared CPU)%n",
                    f.get("fastvmt_total_cpu_ms").getAsDouble(), f.get("ditflow_total_cpu_ms").getAsDouble(),
                    f.get("speedup_total_cpu_time").getAsDouble());
        }
        if (json) {
            out.println(new GsonBuilder().disableHtmlEscaping().create().toJson(f));
        }
        out.flush();
    }
}
