package org.fastvmt.benchmarks;

import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Locale;

import org.openjdk.jmh.results.RunResult;
import org.openjdk.jmh.results.format.ResultFormatType;
import org.openjdk.jmh.runner.Runner;
import org.openjdk.jmh.runner.RunnerException;
import org.openjdk.jmh.runner.options.ChainedOptionsBuilder;
import org.openjdk.jmh.runner.options.OptionsBuilder;

import org.fastvmt.bench.DitFlops;
import org.fastvmt.model.wan.WanConfig;

/**
 * Runs {@link SgemmBenchmark}, {@link DitBlockBenchmark} and {@link AttentionBenchmark} in one JMH
 * run and prints each result as GFLOP/s and as a percentage of that run's sgemm, by the FLOP
 * accounting of {@link DitFlops}.
 *
 * <pre>
 * java -cp benchmarks/target/benchmarks.jar org.fastvmt.benchmarks.DitRatios
 *      [--tokens N]... [--device cpu|cuda|cudaemu] [--result FILE.json]
 * </pre>
 */
public final class DitRatios {

    private DitRatios() {
    }

    public static void main(String[] args) throws RunnerException {
        ChainedOptionsBuilder options = new OptionsBuilder()
                .include(SgemmBenchmark.class.getName())
                .include(DitBlockBenchmark.class.getName())
                .include(AttentionBenchmark.class.getName());
        List<String> tokens = new ArrayList<>();
        for (int i = 0; i < args.length; i++) {
            String value = i + 1 < args.length ? args[i + 1] : null;
            if (value == null) {
                throw new IllegalArgumentException(args[i] + " needs a value");
            }
            switch (args[i]) {
                case "--tokens" -> tokens.add(value);
                case "--device" -> options.param("device", value);
                case "--result" -> options.resultFormat(ResultFormatType.JSON).result(value);
                default -> throw new IllegalArgumentException("unknown argument '" + args[i]
                        + "'; use [--tokens N]... [--device D] [--result FILE.json]");
            }
            i++;
        }
        if (!tokens.isEmpty()) {
            options.param("tokens", tokens.toArray(String[]::new));
        }
        System.out.print(table(new Runner(options.build()).run()));
    }

    /** The table of one run's results (scores in ms per call). */
    static String table(Collection<RunResult> results) {
        double sgemmGflops = Double.NaN;
        for (RunResult run : results) {
            if (run.getParams().getBenchmark().startsWith(SgemmBenchmark.class.getName())) {
                int n = Integer.parseInt(run.getParams().getParam("size"));
                sgemmGflops = 2.0 * n * n * n / (run.getPrimaryResult().getScore() * 1e6);
            }
        }
        StringBuilder out = new StringBuilder(String.format(Locale.ROOT,
                "%nRatios of this run: sgemm %.1f GFLOP/s%n%-44s %11s %10s %9s%n", sgemmGflops, "", "ms", "GFLOP/s",
                "% sgemm"));
        for (RunResult run : results) {
            String benchmark = run.getParams().getBenchmark();
            String method = benchmark.substring(benchmark.lastIndexOf('.') + 1);
            double ms = run.getPrimaryResult().getScore();
            double flops;
            if (benchmark.startsWith(DitBlockBenchmark.class.getName())) {
                WanConfig config = WanConfig.named(run.getParams().getParam("config"));
                int tokens = Integer.parseInt(run.getParams().getParam("tokens"));
                flops = DitFlops.blockForward(config, tokens, config.textLength());
                if (method.equals("blockForwardBackward")) {
                    flops += DitFlops.blockBackward(config, tokens, config.textLength());
                }
                method = config.name() + " " + method + " @" + tokens;
            } else if (benchmark.startsWith(AttentionBenchmark.class.getName())) {
                int tokens = Integer.parseInt(run.getParams().getParam("tokens"));
                long width = Long.parseLong(run.getParams().getParam("heads"))
                        * Long.parseLong(run.getParams().getParam("headDim"));
                flops = DitFlops.attentionForward(tokens, tokens, width);
                if (method.equals("fusedForwardBackward")) {
                    flops += DitFlops.attentionBackward(tokens, tokens, width);
                }
                method = "attention " + method + " @" + tokens;
            } else {
                continue;
            }
            double gflops = flops / (ms * 1e6);
            out.append(String.format(Locale.ROOT, "%-44s %11.1f %10.1f %8.1f%%%n", method, ms, gflops,
                    100 * gflops / sgemmGflops));
        }
        out.append("(ms: JMH's mean per call; GFLOP/s by the accounting of bench dit --help; %: of the sgemm)\n");
        return out.toString();
    }
}
