package org.fastvmt.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;

import org.junit.jupiter.api.Test;

/** {@code fastvmt bench guidance --config tiny --json}: the fields, the phase counts of both modes, the ratios. */
class BenchGuidanceCommandTest {

    @Test
    void jsonFieldsCountsAndRatios() {
        InitModelCommandTest.Run run = InitModelCommandTest.run("bench", "guidance", "--config", "tiny",
                "--guided-steps", "2", "--iterations", "4", "--repeats", "1", "--json", "--device", "cpu");
        assertEquals(0, run.exitCode(), run.err());
        String[] lines = run.out().strip().split("\\R");
        String last = lines[lines.length - 1];
        assertTrue(last.startsWith("{") && last.endsWith("}"), run.out());
        JsonObject json = JsonParser.parseString(last).getAsJsonObject();
        for (String field : List.of("fastvmt_ms", "ditflow_ms", "speedup", "fastvmt_total_ms", "ditflow_total_ms",
                "speedup_total", "fastvmt_gflop", "ditflow_gflop", "flop_ratio", "flop_ratio_total",
                "fresh_gradient_ratio", "fastvmt_total_cpu_ms", "ditflow_total_cpu_ms", "speedup_total_cpu_time")) {
            assertTrue(json.has(field) && json.get(field).getAsDouble() > 0, field + ": " + json);
        }
        assertEquals("tiny", json.get("config").getAsString());
        assertEquals("cpu", json.get("device").getAsString());
        assertEquals(json.get("ditflow_ms").getAsDouble() / json.get("fastvmt_ms").getAsDouble(),
                json.get("speedup").getAsDouble(), 1e-9);
        assertEquals(json.get("ditflow_total_ms").getAsDouble() / json.get("fastvmt_total_ms").getAsDouble(),
                json.get("speedup_total").getAsDouble(), 1e-9);
        // fastvmt_ms is the guidance alone: reference AMF + fresh + reused iterations.
        assertEquals(json.get("fastvmt_reference_amf_ms").getAsDouble() + json.get("fastvmt_fresh_guidance_ms")
                .getAsDouble() + json.get("fastvmt_reused_iterations_ms").getAsDouble(),
                json.get("fastvmt_ms").getAsDouble(), 1e-6);
        assertTrue(json.get("fastvmt_total_ms").getAsDouble() > json.get("fastvmt_ms").getAsDouble());
        // 2 steps x 4 iterations: fastvmt fresh at i = 0 and 3 (interval 3), ditflow at every i.
        assertEquals(2, json.get("fastvmt_reference_amf_count").getAsInt());
        assertEquals(4, json.get("fastvmt_fresh_guidance_count").getAsInt());
        assertEquals(4, json.get("fastvmt_reused_iterations_count").getAsInt());
        assertEquals(8, json.get("ditflow_fresh_guidance_count").getAsInt());
        assertEquals(0, json.get("ditflow_reused_iterations_count").getAsInt());
        assertEquals(2, json.get("ditflow_denoising_count").getAsInt());
        assertEquals(2.0, json.get("fresh_gradient_ratio").getAsDouble());
        assertTrue(json.get("flop_ratio").getAsDouble() > 1, json.toString());
    }

    @Test
    void badOptionsAreUsageErrors() {
        InitModelCommandTest.Run config = InitModelCommandTest.run("bench", "guidance", "--config", "huge");
        assertEquals(2, config.exitCode());
        assertTrue(config.err().contains("--config"), config.err());
        InitModelCommandTest.Run steps = InitModelCommandTest.run("bench", "guidance", "--config", "tiny",
                "--guided-steps", "0");
        assertEquals(2, steps.exitCode());
        assertTrue(steps.err().contains("--guided-steps"), steps.err());
    }
}
