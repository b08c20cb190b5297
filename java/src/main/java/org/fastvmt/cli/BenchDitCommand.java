package org.fastvmt.cli;

import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.List;
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
import org.fastvmt.bench.AttentionWorkload;
import org.fastvmt.bench.DitBlockWorkload;
import org.fastvmt.bench.DitFlops;
import org.fastvmt.bench.SgemmRoofline;
import org.fastvmt.bench.Timing;
import org.fastvmt.model.wan.WanConfig;
import org.fastvmt.model.wan.WanDiT;

/** {@code fastvmt bench dit}: one DiT block and the fused attention against the sgemm roofline of the same run. */
@Command(name = "dit", mixinStandardHelpOptions = true, sortOptions = false,
        description = {
            "Time one block of the Wan2.1 DiT (random BF16 weights of --config's widths, seeded) forward "
                    + "and forward+backward (to the block input, as guidance differentiates it), the fused "
                    + "self-attention alone forward and forward+backward, and the naive attention that stores "
                    + "each head's score matrix (OpenBLAS GEMMs and a Java softmax; host backends only), each "
                    + "as the median of --repeats runs after a warm-up and as a percentage of the sgemm "
                    + "roofline measured in the same run. Then the peak memory of the guidance pass: the "
                    + "truncated forward through --peak-blocks blocks to the last one's q and k and the "
                    + "checkpointed backward to the latent.",
            "",
            "FLOP accounting (a multiply-add is 2 flops; L video tokens, T = 512 text tokens, width d, FFN f): "
                    + "block forward 2Ld(6d + 2f) + 4Td^2 + 4L^2d + 4LTd; block backward 2Ld(6d + 2f) + "
                    + "10L^2d + 10LTd; attention forward 4L^2d, backward 10L^2d (the scores are recomputed). "
                    + "Norms, RoPE and elementwise ops are not counted.",
            "",
            "Tokens form whole 30x52 frames (Wan's 480x832 latent) when --tokens is a multiple of 1560. The "
                    + "defaults (1.3b, 1560 tokens, 15 blocks) take about 3 minutes on a 2-core CPU.",
        },
        footer = {"", "Targets (2-core CPU, 1.3b, 1560 tokens): block forward >= 50%% of the sgemm GFLOP/s, "
                + "forward+backward >= 40%%, fused attention forward >= 25%%; a note is printed when a figure "
                + "misses them."})
final class BenchDitCommand implements Callable<Integer> {

    static final double TARGET_FORWARD_PERCENT = 50;
    static final double TARGET_FORWARD_BACKWARD_PERCENT = 40;
    static final double TARGET_ATTENTION_PERCENT = 25;
    private static final long SEED = 1560L;

    @Option(names = "--config", paramLabel = "NAME", defaultValue = "1.3b",
            description = "Model widths: tiny, 1.3b or 14b. Default: ${DEFAULT-VALUE}.")
    private String configName;

    @Option(names = "--tokens", paramLabel = "N", defaultValue = "1560",
            description = "Video tokens of the block. Default: ${DEFAULT-VALUE} (one 480x832 latent frame).")
    private int tokens;

    @Option(names = "--repeats", paramLabel = "R", defaultValue = "3",
            description = "Timed runs after the warm-up; the median is reported. Default: ${DEFAULT-VALUE}.")
    private int repeats;

    @Option(names = "--peak-blocks", paramLabel = "B", defaultValue = "" + (WanDiT.DEFAULT_AMF_BLOCK + 1),
            description = "Blocks of the guidance pass whose peak memory is measured (AMF from the last); "
                    + "0 skips it. Default: ${DEFAULT-VALUE}.")
    private int peakBlocks;

    @Option(names = "--sgemm-size", paramLabel = "N", defaultValue = "" + SgemmRoofline.DEFAULT_SIZE,
            description = "M = N = K of the roofline sgemm. Default: ${DEFAULT-VALUE}.")
    private int sgemmSize;

    @Option(names = "--json", description = "Also print the figures as one JSON object on the last line of "
            + "standard output.")
    private boolean json;

    @Mixin
    private DeviceOptions deviceOptions;

    @Spec
    private CommandSpec spec;

    private record Run(String key, String name, double flops, Runnable body) {
    }

    @Override
    public Integer call() {
        WanConfig config = WanConfig.named(configName);
        BenchCommand.requireAtLeastOne("--tokens", tokens);
        BenchCommand.requireAtLeastOne("--repeats", repeats);
        if (peakBlocks < 0 || peakBlocks > config.layers()) {
            throw new IllegalArgumentException("--peak-blocks must be in [0, " + config.layers() + "] for "
                    + config.name() + ", got " + peakBlocks);
        }
        BenchCommand.requireAtLeastOne("--sgemm-size", sgemmSize);
        PrintWriter err = spec.commandLine().getErr();
        JsonObject f = new JsonObject();
        try (Backend backend = deviceOptions.open(err)) {
            err.printf(Locale.ROOT, "fastvmt: measuring the sgemm roofline (%d^3) ...%n", sgemmSize);
            err.flush();
            SgemmRoofline roofline = SgemmRoofline.measure(backend, sgemmSize, repeats);
            f.addProperty("device", backend.name());
            f.addProperty("device_description", backend.description());
            f.addProperty("config", config.name());
            f.addProperty("tokens", tokens);
            f.addProperty("text_tokens", config.textLength());
            f.addProperty("dim", config.dim());
            f.addProperty("heads", config.heads());
            f.addProperty("repeats", repeats);
            try (DitBlockWorkload block = DitBlockWorkload.create(backend, config, tokens, SEED);
                    AttentionWorkload attention = new AttentionWorkload(backend, tokens, config.heads(),
                            config.headDim(), SEED)) {
                f.addProperty("grid", block.grid().toString());
                double blockForward = DitFlops.blockForward(config, tokens, config.textLength());
                double attentionForward = DitFlops.attentionForward(tokens, tokens, config.dim());
                List<Run> runs = new ArrayList<>(List.of(
                        new Run("block_fwd", "block forward", blockForward, block::forward),
                        new Run("block_fwd_bwd", "block forward+backward",
                                blockForward + DitFlops.blockBackward(config, tokens, config.textLength()),
                                block::forwardBackward),
                        new Run("attention_fwd", "fused attention forward", attentionForward,
                                attention::fusedForward),
                        new Run("attention_fwd_bwd", "fused attention forward+backward",
                                attentionForward + DitFlops.attentionBackward(tokens, tokens, config.dim()),
                                attention::fusedForwardBackward)));
                if (attention.hasNaive()) {
                    runs.add(new Run("naive_attention_fwd", "naive attention forward", attentionForward,
                            attention::naiveForward));
                }
                try (Progress bar = Progress.start("bench dit", (long) runs.size() * (repeats + 1))) {
                    for (Run run : runs) {
                        Timing timing = Timing.measure(() -> { }, run.body(), repeats, ms -> bar.step());
                        double gflops = run.flops() / (timing.medianMs() * 1e6);
                        f.addProperty(run.key() + "_ms", timing.medianMs());
                        f.addProperty(run.key() + "_flops", run.flops());
                        f.addProperty(run.key() + "_gflops", gflops);
                        f.addProperty(run.key() + "_sgemm_percent", roofline.percentOf(gflops));
                    }
                }
                if (f.has("naive_attention_fwd_ms")) {
                    f.addProperty("attention_speedup", f.get("naive_attention_fwd_ms").getAsDouble()
                            / f.get("attention_fwd_ms").getAsDouble());
                }
            }
            f.addProperty("sgemm_gflops", roofline.gflops());
            f.addProperty("sgemm_size", roofline.size());
            f.addProperty("sgemm_library", roofline.library());
            if (!roofline.note().isEmpty()) {
                f.addProperty("sgemm_note", roofline.note());
            }
            if (peakBlocks > 0) {
                err.printf(Locale.ROOT, "fastvmt: guidance pass through %d blocks (random weights, %d tokens) ...%n",
                        peakBlocks, tokens);
                err.flush();
                DitBlockWorkload.GuidancePeak peak = DitBlockWorkload.guidancePeak(backend, config, tokens,
                        peakBlocks - 1, SEED);
                f.addProperty("peak_blocks", peak.blocks());
                f.addProperty("peak_mb", peak.peakBytes() / 1048576.0);
                f.addProperty("peak_weights_mb", peak.weightBytes() / 1048576.0);
                f.addProperty("peak_pass_ms", peak.ms());
            }
        }
        report(f);
        return 0;
    }

    private void report(JsonObject f) {
        PrintWriter out = spec.commandLine().getOut();
        out.printf(Locale.ROOT, "DiT benchmark on %s%n", f.get("device_description").getAsString());
        out.printf(Locale.ROOT, "Wan2.1 %s block: dim %d, %d heads, %d video tokens (%s), %d text tokens; "
                + "median of %d runs after a warm-up%n", f.get("config").getAsString(), f.get("dim").getAsInt(),
                f.get("heads").getAsInt(), f.get("tokens").getAsInt(), f.get("grid").getAsString(),
                f.get("text_tokens").getAsInt(), f.get("repeats").getAsInt());
        out.printf(Locale.ROOT, "sgemm roofline: %.1f GFLOP/s (%d^3; %s)%n", f.get("sgemm_gflops").getAsDouble(),
                f.get("sgemm_size").getAsInt(), f.get("sgemm_library").getAsString());
        if (f.has("sgemm_note")) {
            out.println("note: " + f.get("sgemm_note").getAsString());
        }
        out.println();
        out.printf(Locale.ROOT, "%-34s %11s %10s %9s%n", "", "ms", "GFLOP/s", "% sgemm");
        String[][] rows = {{"block_fwd", "block forward"}, {"block_fwd_bwd", "block forward+backward"},
            {"attention_fwd", "fused attention forward"}, {"attention_fwd_bwd", "fused attention forward+backward"},
            {"naive_attention_fwd", "naive attention forward"}};
        for (String[] row : rows) {
            if (f.has(row[0] + "_ms")) {
                out.printf(Locale.ROOT, "%-34s %11.2f %10.1f %8.1f%%%n", row[1], f.get(row[0] + "_ms").getAsDouble(),
                        f.get(row[0] + "_gflops").getAsDouble(), f.get(row[0] + "_sgemm_percent").getAsDouble());
            }
        }
        if (f.has("attention_speedup")) {
            out.printf(Locale.ROOT, "fused attention is %.2fx faster than the naive one%n",
                    f.get("attention_speedup").getAsDouble());
        }
        if (f.has("peak_mb")) {
            out.printf(Locale.ROOT, "guidance pass through %d blocks (forward to q, k and backward to the latent): "
                    + "%.0f ms, peak memory %.1f MiB of which weights %.1f MiB%n", f.get("peak_blocks").getAsInt(),
                    f.get("peak_pass_ms").getAsDouble(), f.get("peak_mb").getAsDouble(),
                    f.get("peak_weights_mb").getAsDouble());
        }
        for (String note : notes(f)) {
            out.println("note: " + note);
        }
        if (json) {
            out.println(new GsonBuilder().disableHtmlEscaping().create().toJson(f));
        }
        out.flush();
    }

    /** The targets this run missed, each as a sentence. */
    static List<String> notes(JsonObject f) {
        List<String> notes = new ArrayList<>();
        Object[][] targets = {{"block_fwd", "block forward", TARGET_FORWARD_PERCENT},
            {"block_fwd_bwd", "block forward+backward", TARGET_FORWARD_BACKWARD_PERCENT},
            {"attention_fwd", "fused attention forward", TARGET_ATTENTION_PERCENT}};
        for (Object[] t : targets) {
            double percent = f.get(t[0] + "_sgemm_percent").getAsDouble();
            if (percent < (double) t[2]) {
                notes.add(String.format(Locale.ROOT, "the %s reaches %.1f%% of the sgemm roofline, below the "
                        + "%.0f%% target", t[1], percent, (double) t[2]));
            }
        }
        if (!notes.isEmpty()) {
            notes.add(String.format(Locale.ROOT, "the targets are for the cpu backend on a 2-core machine with "
                    + "the 1.3b config at 1560 tokens; this run: %s, %s, %d tokens", f.get("device").getAsString(),
                    f.get("config").getAsString(), f.get("tokens").getAsInt()));
        }
        return notes;
    }
}
