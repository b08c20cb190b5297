package org.fastvmt.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.List;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;

import org.fastvmt.backend.OpenBlas;
import org.fastvmt.bench.DitFlops;
import org.fastvmt.model.wan.WanConfig;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/** {@code fastvmt bench dit} on the tiny config: the JSON line, its fields and their consistency, and bad options. */
class BenchDitCommandTest {

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

    @Test
    void jsonLineHasTheIssuesFields() {
        Run run = run("bench", "dit", "--device", "cpu", "--config", "tiny", "--tokens", "24", "--repeats", "1",
                "--peak-blocks", "2", "--sgemm-size", "128", "--json");
        assertEquals(0, run.exitCode(), run.err());
        JsonObject json = JsonParser.parseString(run.lastLine()).getAsJsonObject();
        for (String field : List.of("block_fwd_ms", "block_fwd_gflops", "sgemm_gflops", "peak_mb", "block_fwd_bwd_ms",
                "attention_fwd_ms", "attention_fwd_bwd_ms", "naive_attention_fwd_ms", "attention_speedup",
                "block_fwd_sgemm_percent", "peak_weights_mb")) {
            assertTrue(json.has(field) && json.get(field).getAsDouble() > 0, field + " missing or not positive: " + json);
        }
        WanConfig tiny = WanConfig.TINY;
        assertEquals(DitFlops.blockForward(tiny, 24, tiny.textLength()), json.get("block_fwd_flops").getAsDouble());
        double gflops = json.get("block_fwd_flops").getAsDouble() / (json.get("block_fwd_ms").getAsDouble() * 1e6);
        assertEquals(gflops, json.get("block_fwd_gflops").getAsDouble(), 1e-9 * gflops);
        assertEquals(100 * gflops / json.get("sgemm_gflops").getAsDouble(),
                json.get("block_fwd_sgemm_percent").getAsDouble(), 1e-6);
        assertTrue(json.get("peak_mb").getAsDouble() > json.get("peak_weights_mb").getAsDouble(),
                "the pass needs more than its weights: " + json);
        assertEquals(2, json.get("peak_blocks").getAsInt());
        assertTrue(run.out().contains("block forward"), run.out());
    }

    @Test
    void badOptionsAreNamed() {
        Run tokens = run("bench", "dit", "--device", "cpu", "--tokens", "0");
        assertEquals(2, tokens.exitCode());
        assertTrue(tokens.err().contains("--tokens"), tokens.err());
        Run config = run("bench", "dit", "--device", "cpu", "--config", "7b");
        assertEquals(2, config.exitCode());
        assertTrue(config.err().contains("unknown model config '7b'"), config.err());
        Run blocks = run("bench", "dit", "--device", "cpu", "--config", "tiny", "--peak-blocks", "3");
        assertEquals(2, blocks.exitCode());
        assertTrue(blocks.err().contains("--peak-blocks"), blocks.err());
    }
}
