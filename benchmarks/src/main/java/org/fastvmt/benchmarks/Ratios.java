package org.fastvmt.benchmarks;

import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

import org.openjdk.jmh.results.RunResult;
import org.openjdk.jmh.results.format.ResultFormatType;
import org.openjdk.jmh.runner.Runner;
import org.openjdk.jmh.runner.RunnerException;
import org.openjdk.jmh.runner.options.ChainedOptionsBuilder;
import org.openjdk.jmh.runner.options.OptionsBuilder;

import org.fastvmt.bench.AmfBenchShape;
import org.fastvmt.bench.AmfFlops;
import org.fastvmt.motion.AmfParams;

/**
 * Runs {@link SgemmBenchmark} and {@link AmfBenchmark} in one JMH run and prints the ratios of
 * that run: windowed vs full AMF (forward, forward + backward) and the kernels' GFLOP/s vs the
 * sgemm's, by the FLOP accounting of {@link AmfFlops}.
 *
 * <pre>
 * java -cp benchmarks/target/benchmarks.jar org.fastvmt.benchmarks.Ratios
 *      [--shape FxHxWxC]... [--device cpu|cuda|cudaemu] [--sf N] [--window L] [--result FILE.json]
 * </pre>
 * Without --shape the shapes are AmfBenchmark's @Param values (Wan2.1-1.3B's first).
 */
public final class Ratios {

    private static final String[] RUNS = {"Forward", "ForwardBackward"};

    private Ratios() {
    }

    public static void main(String[] args) throws RunnerException {
        List<String> shapes = new ArrayList<>();
        String device = "cpu";
        int sf = AmfBenchShape.DEFAULT_SF;
        int window = AmfParams.DEFAULT_WINDOW;
        String result = null;
        for (int i = 0; i < args.length; i++) {
            String value = i + 1 < args.length ? args[i + 1] : null;
            switch (args[i]) {
                case "--shape" -> shapes.add(require(args[i], value));
                case "--device" -> device = require(args[i], value);
                case "--sf" -> sf = Integer.parseInt(require(args[i], value));
                case "--window" -> window = Integer.parseInt(require(args[i], value));
                case "--result" -> result = require(args[i], value);
                default -> throw new IllegalArgumentException("unknown argument '" + args[i]
                        + "'; use [--shape FxHxWxC]... [--device D] [--sf N] [--window L] [--result FILE.json]");
            }
            i++;
        }
        ChainedOptionsBuilder options = new OptionsBuilder()
                .include(SgemmBenchmark.class.getName())
                .include(AmfBenchmark.class.getName())
                .param("device", device)
                .param("sf", "" + sf)
                .param("window", "" + window);
        if (!shapes.isEmpty()) {
            options.param("shape", shapes.toArray(String[]::new));
        }
        if (result != null) {
            options.resultFormat(ResultFormatType.JSON).result(result);
        }
        Collection<RunResult> results = new Runner(options.build()).run();
        System.out.print(table(results, sf, window));
    }

    private static String require(String option, String value) {
        if (value == null) {
            throw new IllegalArgumentException(option + " needs a value");
        }
        return value;
    }

    /** The ratio table of one run's results (scores in ms per call). */
    static String table(Collection<RunResult> results, int sf, int window) {
        double sgemmMs = Double.NaN;
        int sgemmSize = 0;
        Map<String, Map<String, Double>> amfMs = new LinkedHashMap<>();
        for (RunResult run : results) {
            String benchmark = run.getParams().getBenchmark();
            String method = benchmark.substring(benchmark.lastIndexOf('.') + 1);
            double ms = run.getPrimaryResult().getScore();
            if (benchmark.startsWith(SgemmBenchmark.class.getName())) {
                sgemmMs = ms;
                sgemmSize = Integer.parseInt(run.getParams().getParam("size"));
            } else {
                amfMs.computeIfAbsent(run.getParams().getParam("shape"), s -> new LinkedHashMap<>()).put(method, ms);
            }
        }
        double sgemmGflops = 2.0 * sgemmSize * sgemmSize * sgemmSize / (sgemmMs * 1e6);
        StringBuilder out = new StringBuilder();
        out.append(String.format(Locale.ROOT, "%nRatios of this run (sf %d, l %d): sgemm %d^3 %.2f ms = %.1f GFLOP/s%n",
                sf, window, sgemmSize, sgemmMs, sgemmGflops));
        out.append(String.format(Locale.ROOT, "%-15s %-17s %11s %11s %8s %10s %10s %11s %9s %9s%n", "shape", "",
                "full ms", "window ms", "speedup", "flop ratio", "full GF/s", "window GF/s", "full %", "window %"));
        for (Map.Entry<String, Map<String, Double>> entry : amfMs.entrySet()) {
            AmfBenchShape shape = AmfBenchShape.parse(entry.getKey()).withSf(sf).withWindow(window);
            for (String run : RUNS) {
                Double fullMs = entry.getValue().get("full" + run);
                Double windowMs = entry.getValue().get("window" + run);
                if (fullMs == null || windowMs == null) {
                    continue;
                }
                boolean backward = run.equals("ForwardBackward");
                double fullFlops = AmfFlops.fullForward(shape, shape.fullPairs())
                        + (backward ? AmfFlops.fullBackward(shape, shape.fullPairs()) : 0);
                double windowFlops = AmfFlops.windowForward(shape, shape.windowPairs())
                        + (backward ? AmfFlops.windowBackward(shape, shape.windowPairs()) : 0);
                double fullGflops = fullFlops / (fullMs * 1e6);
                double windowGflops = windowFlops / (windowMs * 1e6);
                out.append(String.format(Locale.ROOT, "%-15s %-17s %11.1f %11.1f %7.2fx %9.2fx %10.1f %11.1f %8.1f%% %8.1f%%%n",
                        entry.getKey(), backward ? "forward+backward" : "forward", fullMs, windowMs, fullMs / windowMs,
                        fullFlops / windowFlops, fullGflops, windowGflops, 100 * fullGflops / sgemmGflops,
                        100 * windowGflops / sgemmGflops));
            }
        }
        out.append("(ms: JMH's mean per call; GF/s: GFLOP/s by the FLOP accounting of bench amf; %: of the sgemm)\n");
        return out.toString();
    }
}
