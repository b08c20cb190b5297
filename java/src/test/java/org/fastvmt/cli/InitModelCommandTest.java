package org.fastvmt.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import picocli.CommandLine;

import org.fastvmt.backend.Backend;
import org.fastvmt.backend.Backends;
import org.fastvmt.backend.Device;
import org.fastvmt.io.safetensors.SafetensorsDType;
import org.fastvmt.io.safetensors.SafetensorsFile;
import org.fastvmt.model.wan.WanCheckpoint;
import org.fastvmt.model.wan.WanConfig;
import org.fastvmt.model.wan.WanWeights;
import org.fastvmt.tensor.DType;
import org.fastvmt.tensor.Tensor;

/** {@code fastvmt init-model}: the checkpoint it writes loads back as WanWeights.random, in both layouts. */
class InitModelCommandTest {

    @TempDir
    Path dir;

    record Run(int exitCode, String out, String err) {
    }

    static Run run(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        CommandLine commandLine = Main.commandLine();
        commandLine.setOut(new PrintWriter(out, true));
        commandLine.setErr(new PrintWriter(err, true));
        int exitCode = commandLine.execute(args);
        return new Run(exitCode, out.toString(), err.toString());
    }

    @ParameterizedTest
    @ValueSource(strings = {"original", "diffusers"})
    void writesTheRandomWeightsInTheLayout(String layout) throws IOException {
        Path model = dir.resolve("model");
        Run run = run("init-model", "--config", "tiny", "--seed", "7", "--out", model.toString(), "--layout", layout);
        assertEquals(0, run.exitCode(), run.err());
        assertTrue(run.out().contains("wrote " + model.toAbsolutePath()), run.out());
        assertEquals(InitModelCommand.parseLayout(layout), WanCheckpoint.detectLayout(model));
        assertEquals(WanConfig.TINY, WanCheckpoint.readConfig(model));
        try (Backend backend = Backends.open(Device.CPU);
                WanWeights loaded = WanCheckpoint.load(model, backend);
                WanWeights expected = WanWeights.random(WanConfig.TINY, backend, 7, DType.F32)) {
            assertEquals(expected.tensors().keySet(), loaded.tensors().keySet());
            for (Map.Entry<String, Tensor> entry : expected.tensors().entrySet()) {
                Tensor got = loaded.get(entry.getKey());
                assertEquals(DType.F32, got.dtype(), entry.getKey());
                assertArrayEquals(entry.getValue().toFloatArray(), got.toFloatArray(), 0f, entry.getKey());
            }
        }
        try (Stream<Path> left = Files.list(dir)) {
            assertEquals(List.of(model), left.toList(), "no temporary folder is left beside the model");
        }
    }

    @Test
    void sameSeedGivesTheSameBytesAndBf16StoresMatricesAsBf16() throws IOException {
        Path a = dir.resolve("a");
        Path b = dir.resolve("b");
        Path c = dir.resolve("c");
        assertEquals(0, run("init-model", "--config", "tiny", "--seed", "3", "--out", a.toString(), "--dtype", "bf16").exitCode());
        assertEquals(0, run("init-model", "--config", "tiny", "--seed", "3", "--out", b.toString(), "--dtype", "bf16").exitCode());
        assertEquals(0, run("init-model", "--config", "tiny", "--seed", "4", "--out", c.toString(), "--dtype", "bf16").exitCode());
        byte[] bytesA = Files.readAllBytes(a.resolve(WanCheckpoint.WEIGHTS_FILE));
        assertArrayEquals(bytesA, Files.readAllBytes(b.resolve(WanCheckpoint.WEIGHTS_FILE)));
        assertFalse(java.util.Arrays.equals(bytesA, Files.readAllBytes(c.resolve(WanCheckpoint.WEIGHTS_FILE))));
        try (SafetensorsFile file = SafetensorsFile.open(a.resolve(WanCheckpoint.WEIGHTS_FILE))) {
            assertEquals(SafetensorsDType.BF16, file.info("blocks.0.self_attn.q.weight").dtype());
            assertEquals(SafetensorsDType.F32, file.info("blocks.0.self_attn.q.bias").dtype());
        }
        assertEquals(InitModelCommand.weightBytes(WanConfig.TINY, DType.BF16),
                Files.size(a.resolve(WanCheckpoint.WEIGHTS_FILE)) - headerBytes(a.resolve(WanCheckpoint.WEIGHTS_FILE)));
    }

    private static long headerBytes(Path file) throws IOException {
        try (SafetensorsFile safetensors = SafetensorsFile.open(file)) {
            return 8 + safetensors.headerBytes();
        }
    }

    @Test
    void refusesANonEmptyFolderAndTouchesNothing() throws IOException {
        Path model = dir.resolve("model");
        Files.createDirectories(model);
        Files.writeString(model.resolve("notes.txt"), "mine");
        Run run = run("init-model", "--config", "tiny", "--out", model.toString());
        assertEquals(2, run.exitCode());
        assertTrue(run.err().contains("--out") && run.err().contains("not empty"), run.err());
        try (Stream<Path> files = Files.list(model)) {
            assertEquals(List.of(model.resolve("notes.txt")), files.toList());
        }
        try (Stream<Path> files = Files.list(dir)) {
            assertEquals(List.of(model), files.toList());
        }
    }

    @Test
    void anEmptyFolderIsFilled() throws IOException {
        Path model = Files.createDirectories(dir.resolve("empty"));
        assertEquals(0, run("init-model", "--config", "tiny", "--out", model.toString()).exitCode());
        assertTrue(Files.isRegularFile(model.resolve(WanCheckpoint.CONFIG_FILE)));
    }

    @Test
    void badOptionsAreUsageErrorsNamingTheOption() {
        Path model = dir.resolve("model");
        Run config = run("init-model", "--config", "7b", "--out", model.toString());
        assertEquals(2, config.exitCode());
        assertTrue(config.err().contains("--config"), config.err());
        Run layout = run("init-model", "--config", "tiny", "--out", model.toString(), "--layout", "gguf");
        assertEquals(2, layout.exitCode());
        assertTrue(layout.err().contains("--layout"), layout.err());
        Run dtype = run("init-model", "--config", "tiny", "--out", model.toString(), "--dtype", "f16");
        assertEquals(2, dtype.exitCode());
        assertTrue(dtype.err().contains("--dtype"), dtype.err());
        Run file = run("init-model", "--config", "tiny", "--out", dir.resolve("x").resolve("y").toString());
        assertEquals(0, file.exitCode(), "missing parent folders are created: " + file.err());
        assertFalse(Files.exists(model));
    }

    @Test
    void theSizeAccountingMatchesThePublishedModel() {
        // Wan-AI/Wan2.1-T2V-1.3B's diffusion_pytorch_model.safetensors (F32) is listed as 5.68 GB.
        long bytes = InitModelCommand.weightBytes(WanConfig.WAN_1_3B, DType.F32);
        assertTrue(bytes > 5.675e9 && bytes < 5.685e9, "" + bytes);
        assertEquals(4 * InitModelCommand.parameterCount(WanConfig.WAN_1_3B), bytes);
        assertTrue(InitModelCommand.weightBytes(WanConfig.WAN_1_3B, DType.BF16) < bytes * 0.51);
    }
}
