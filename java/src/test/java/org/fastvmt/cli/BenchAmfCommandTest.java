package org.fastvmt.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.List;
import java.util.stream.Stream;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;

import org.fastvmt.backend.Backends;
import org.fastvmt.backend.Device;
import org.fastvmt.backend.OpenBlas;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import picocli.CommandLine;

/** {@code fastvmt bench amf} on tiny shapes: the JSON fields, their consistency and the FLOP accounting. */
class BenchAmfCommandTest {

    private static final int F = 4;
    private static final int H = 8;
    private static final int W = 12;
    private static final int C = 64;
    private static final int SF = 2;
    private static final int L = 5;

    private record Run(int exitCode, String out, String err) {

        String lastLine() {
            String[] lines = out.strip().split("\\R");
            return lines[lines.length - 1];
        }
    }

    private static Run run(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        CommandLine commandLine = Main.commandLine();
        commandLine.setOut(new PrintWriter(out, true));
        commandLine.setErr(new PrintWriter(err, true));
        int exitCode = commandLine.execute(args);
        return new Run(exitCode, out.toString(), err.toString());
    }

    @BeforeAll
    static void openBlasIsInstalled() {
        Assumptions.assumeTrue(OpenBlas.problem().isEmpty(), () -> "skipped: " + OpenBlas.problem().orElse(""));
    }

    /** cpu, and cudaemu when it was built (cuda too on a machine with a GPU). */
    static Stream<Device> devices() {
        return Backends.available().stream();
    }

    @ParameterizedTest
    @MethodSource("devices")
    void jsonFieldsArePresentPositiveAndConsistent(Device device) {
        Run run = run("bench", "amf", "--device", device.label(), "--frames", "" + F, "--height", "" + H,
                "--width", "" + W, "--channels", "" + C, "--sf", "" + SF, "--window", "" + L, "--repeats", "1",
                "--sgemm-size", "128", "--json");
        assertEquals(0, run.exitCode(), run.err());
        assertTrue(run.lastLine().startsWith("{") && run.lastLine().endsWith("}"), run.out());
        JsonObject json = JsonParser.parseString(run.lastLine()).getAsJsonObject();

        for (String field : List.of("full_ms", "window_ms", "speedup", "full_fwd_bwd_ms", "window_fwd_bwd_ms",
                "fwd_bwd_speedup", "full_gflops", "window_gflops", "full_fwd_bwd_gflops", "window_fwd_bwd_gflops",
                "sgemm_gflops", "sgemm_ms", "window_sgemm_percent", "window_fwd_bwd_sgemm_percent",
                "full_sgemm_percent", "full_fwd_bwd_sgemm_percent")) {
            assertTrue(json.has(field), field + " missing: " + json);
            assertTrue(json.get(field).getAsDouble() > 0, field + " not positive: " + json);
        }
        assertEquals(device.label(), json.get("device").getAsString());
        assertEquals(List.of(F, H, W, C, SF, L, 8, 3, 4), Stream.of("frames", "height", "width", "channels", "sf",
                "window", "heads", "tile_height", "tile_width").map(k -> json.get(k).getAsInt()).toList());
        assertEquals(F * F, json.get("full_pairs").getAsInt());
        assertEquals(7, json.get("window_pairs").getAsInt());

        assertRatio(json, "speedup", "full_ms", "window_ms");
        assertRatio(json, "fwd_bwd_speedup", "full_fwd_bwd_ms", "window_fwd_bwd_ms");
        for (String run1 : List.of("full", "window", "full_fwd_bwd", "window_fwd_bwd")) {
            double gflops = json.get(run1 + "_gflops").getAsDouble();
            assertEquals(json.get(run1 + "_flops").getAsDouble() / (json.get(run1 + "_ms").getAsDouble() * 1e6),
                    gflops, 1e-12 * gflops, run1);
            assertEquals(100 * gflops / json.get("sgemm_gflops").getAsDouble(),
                    json.get(run1 + "_sgemm_percent").getAsDouble(), 1e-9, run1);
        }
        assertEquals(2.0 * 128 * 128 * 128 / (json.get("sgemm_ms").getAsDouble() * 1e6),
                json.get("sgemm_gflops").getAsDouble(), 1e-9 * json.get("sgemm_gflops").getAsDouble());

        assertEquals(fullForwardFlops(), json.get("full_flops").getAsDouble());
        assertEquals(fullForwardFlops() * 3, json.get("full_fwd_bwd_flops").getAsDouble());
        assertEquals(windowFlops(false), json.get("window_flops").getAsDouble());
        assertEquals(windowFlops(true), json.get("window_fwd_bwd_flops").getAsDouble());
        assertEquals(device == Device.CUDAEMU, json.has("sgemm_note"), json.toString());

        assertTrue(run.out().contains("forward+backward"), run.out());
        assertTrue(run.err().contains("about"), "an estimate of the time left: " + run.err());
    }

    private static void assertRatio(JsonObject json, String ratio, String numerator, String denominator) {
        double expected = json.get(numerator).getAsDouble() / json.get(denominator).getAsDouble();
        assertEquals(expected, json.get(ratio).getAsDouble(), 1e-12 * expected, ratio);
    }

    /** 16 pairs of T² multiply-adds over C channels, T = 96. */
    private static double fullForwardFlops() {
        double tokens = H * W;
        return F * F * tokens * tokens * 2 * C;
    }

    /**
     * FastVMT's pairs for F = 4, sf = 2: (0,0) (0,1) (1,1) (1,2) (2,2) (2,3) (3,3). A pair i == j
     * is T² · 2C forward and twice that backward; a pair i != j is 3 · 3 = 9 tile centres against
     * all 96 tokens plus 96 queries against a 5 × 5 window forward, the window part twice backward.
     */
    private static double windowFlops(boolean withBackward) {
        double self = 96.0 * 96 * 2 * C;
        double cross = 9.0 * 96 * 2 * C + 96.0 * 25 * 2 * C;
        double forward = 4 * self + 3 * cross;
        double backward = 4 * 2 * self + 3 * (96.0 * 25 * 4 * C);
        return withBackward ? forward + backward : forward;
    }

    @Test
    void badArgumentsAreUsageErrors() {
        Run evenWindow = run("bench", "amf", "--device", "cpu", "--frames", "2", "--height", "8", "--width", "12",
                "--channels", "64", "--window", "4");
        assertEquals(2, evenWindow.exitCode(), evenWindow.err());
        assertTrue(evenWindow.err().contains("window must be odd"), evenWindow.err());
        Run noRepeats = run("bench", "amf", "--device", "cpu", "--frames", "2", "--repeats", "0");
        assertEquals(2, noRepeats.exitCode(), noRepeats.err());
        assertTrue(noRepeats.err().contains("--repeats"), noRepeats.err());
        Run heads = run("bench", "amf", "--device", "cpu", "--channels", "64", "--heads", "12");
        assertEquals(2, heads.exitCode(), heads.err());
        assertTrue(heads.err().contains("divisible by heads"), heads.err());
    }

    @Test
    void helpDocumentsTheFlopAccounting() {
        Run help = run("bench", "amf", "--help");
        assertEquals(0, help.exitCode());
        String text = help.out().replaceAll("\\s+", " ");
        assertTrue(text.contains("T^2 * 2C"), help.out());
        assertTrue(text.contains("tiles * T * 2C (pass 1) + T * lh * lw * 2C (pass 2)"), help.out());
        assertTrue(text.contains("windowed i != j: T * lh * lw * 4C"), help.out());
    }

    @Test
    void missedTargetsAreNotedAndMetOnesAreNot() {
        JsonObject met = figures(10.2, 9.5, 60, 45);
        assertEquals(List.of(), BenchAmfCommand.notes(met));
        List<String> missed = BenchAmfCommand.notes(figures(8.5, 9.5, 60, 25));
        assertEquals(3, missed.size(), missed.toString());
        assertTrue(missed.get(0).contains("forward speedup") && missed.get(0).contains("8.50x"), missed.get(0));
        assertTrue(missed.get(1).contains("forward+backward reaches 25.0%"), missed.get(1));
        assertTrue(missed.get(2).contains("this run: cpu, 21x30x52x1536, sf 4"), missed.get(2));
    }

    private static JsonObject figures(double speedup, double fwdBwdSpeedup, double percent, double fwdBwdPercent) {
        JsonObject o = new JsonObject();
        o.addProperty("device", "cpu");
        o.addProperty("frames", 21);
        o.addProperty("height", 30);
        o.addProperty("width", 52);
        o.addProperty("channels", 1536);
        o.addProperty("sf", 4);
        o.addProperty("speedup", speedup);
        o.addProperty("fwd_bwd_speedup", fwdBwdSpeedup);
        o.addProperty("flop_ratio", 10.53);
        o.addProperty("fwd_bwd_flop_ratio", 11.40);
        o.addProperty("window_sgemm_percent", percent);
        o.addProperty("window_fwd_bwd_sgemm_percent", fwdBwdPercent);
        return o;
    }
}
