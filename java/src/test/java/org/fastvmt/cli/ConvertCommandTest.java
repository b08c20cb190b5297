package org.fastvmt.cli;

import static org.fastvmt.io.pytorch.TorchSaveFixture.contiguous;
import static org.fastvmt.io.pytorch.TorchSaveFixture.strided;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import org.fastvmt.io.pytorch.PickleWriter;
import org.fastvmt.io.pytorch.PthFile;
import org.fastvmt.io.pytorch.PthTensorInfo;
import org.fastvmt.io.pytorch.TorchSaveFixture;
import org.fastvmt.io.safetensors.SafetensorsDType;
import org.fastvmt.io.safetensors.SafetensorsFile;
import org.fastvmt.io.safetensors.SafetensorsWriter;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/**
 * {@code fastvmt convert}: a model folder in the official Wan2.1 layout, built here (two .pth
 * checkpoints, a DiT safetensors file, config and tokenizer files in a subfolder), converts to
 * safetensors with identical tensors and copies the rest; bad folders and bad checkpoints are
 * refused before anything is written.
 */
class ConvertCommandTest {

    @TempDir
    Path dir;

    private record Run(int exitCode, String out, String err) {
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

    private static float[] random(int n, long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        float[] out = new float[n];
        for (int i = 0; i < n; i++) {
            out[i] = (float) (random.nextDouble() * 2 - 1);
        }
        return out;
    }

    /** The official layout in miniature. */
    private Path modelFolder() throws IOException {
        Path model = Files.createDirectories(dir.resolve("Wan2.1-T2V-tiny"));
        Map<String, Object> decoder = new LinkedHashMap<>();
        decoder.put("conv1.weight", contiguous("1", 0, 4, 2, 3));
        decoder.put("conv1.bias", contiguous("2", 0, 4));
        new TorchSaveFixture().archiveName("Wan2.1_VAE")
                .storage("0", SafetensorsDType.F32, random(2 * 3 * 5, 1))
                .storage("1", SafetensorsDType.F32, random(24, 2))
                .storage("2", SafetensorsDType.F32, random(8, 3))
                .put("encoder.conv1.weight", contiguous("0", 0, 2, 3, 5))
                .put("encoder.proj.weight", strided("0", 0, new long[] {5, 6}, new long[] {1, 5})) // a transpose
                .put("decoder", decoder)
                .put("decoder_head.bias", contiguous("2", 4, 4)) // shares storage 2 from element 4
                .write(model.resolve("Wan2.1_VAE.pth"));
        new TorchSaveFixture().archiveName("models_t5_umt5-xxl-enc-bf16")
                .storage("0", SafetensorsDType.BF16, random(6 * 4, 4))
                .storage("1", SafetensorsDType.BF16, random(32 * 2, 5))
                .storage("2", SafetensorsDType.F16, random(3, 6))
                .put("token_embedding.weight", contiguous("0", 0, 6, 4))
                .put("blocks.0.pos_embedding.embedding.weight", contiguous("1", 0, 32, 2))
                .put("norm.weight", contiguous("2", 0, 3))
                .write(model.resolve("models_t5_umt5-xxl-enc-bf16.pth"));
        new SafetensorsWriter().addFloats("patch_embedding.weight", SafetensorsDType.BF16, random(8, 7), 2, 4)
                .write(model.resolve("diffusion_pytorch_model.safetensors"));
        Files.writeString(model.resolve("config.json"), "{\"dim\": 16, \"num_layers\": 2}");
        Path tokenizer = Files.createDirectories(model.resolve("google/umt5-xxl"));
        Files.writeString(tokenizer.resolve("tokenizer.json"), "{\"model\": {\"type\": \"Unigram\"}}");
        Files.write(tokenizer.resolve("spiece.model"), new byte[] {1, 2, 3, 0, (byte) 0xff});
        return model;
    }

    private static List<Path> files(Path root) throws IOException {
        try (Stream<Path> walk = Files.walk(root)) {
            return walk.filter(Files::isRegularFile).map(root::relativize).sorted().toList();
        }
    }

    private List<Path> leftovers() throws IOException {
        try (Stream<Path> list = Files.list(dir)) {
            return list.filter(p -> p.getFileName().toString().startsWith(".")).toList();
        }
    }

    @Test
    void convertsEveryCheckpointWithIdenticalTensorsAndLinksTheRest() throws IOException {
        Path model = modelFolder();
        Path out = dir.resolve("converted");
        Run run = run("convert", model.toString(), "--out", out.toString());
        assertEquals(0, run.exitCode(), run.err());
        assertTrue(run.out().contains("converted 2 checkpoints (8 tensors"), run.out());

        assertEquals(List.of(Path.of("Wan2.1_VAE.safetensors"), Path.of("config.json"),
                Path.of("diffusion_pytorch_model.safetensors"), Path.of("google/umt5-xxl/spiece.model"),
                Path.of("google/umt5-xxl/tokenizer.json"), Path.of("models_t5_umt5-xxl-enc-bf16.safetensors")),
                files(out));
        for (String name : List.of("Wan2.1_VAE", "models_t5_umt5-xxl-enc-bf16")) {
            try (PthFile pth = PthFile.open(model.resolve(name + ".pth"));
                    SafetensorsFile converted = SafetensorsFile.open(out.resolve(name + ".safetensors"))) {
                assertEquals(pth.tensors().keySet(), converted.tensors().keySet(), name);
                assertEquals("pt", converted.metadata().get("format"));
                for (PthTensorInfo info : pth.tensors().values()) {
                    assertEquals(info.dtype(), converted.info(info.name()).dtype(), info.name());
                    assertArrayEquals(info.shape(), converted.info(info.name()).shape(), info.name());
                    MemorySegment expected = pth.bytes(info.name());
                    MemorySegment got = converted.bytes(info.name());
                    assertEquals(-1, expected.mismatch(got), info.name() + " differs");
                }
            }
        }
        // the strided tensor was written in row-major order: element (i, j) is storage element i + 5 j
        try (PthFile pth = PthFile.open(model.resolve("Wan2.1_VAE.pth"));
                SafetensorsFile converted = SafetensorsFile.open(out.resolve("Wan2.1_VAE.safetensors"))) {
            float[] storage = pth.readF32("encoder.conv1.weight");
            float[] transposed = converted.readF32("encoder.proj.weight");
            assertEquals(storage[1 + 5 * 2], transposed[1 * 6 + 2]);
            assertEquals(storage[4 + 5 * 5], transposed[4 * 6 + 5]);
            assertEquals(random(8, 3)[4],
                    converted.bytes("decoder_head.bias").get(ValueLayout.JAVA_FLOAT_UNALIGNED, 0));
        }
        for (Path other : List.of(Path.of("config.json"), Path.of("diffusion_pytorch_model.safetensors"),
                Path.of("google/umt5-xxl/spiece.model"), Path.of("google/umt5-xxl/tokenizer.json"))) {
            assertEquals(-1, Files.mismatch(model.resolve(other), out.resolve(other)), other.toString());
            assertTrue(Files.isSameFile(model.resolve(other), out.resolve(other)), other + " is not hard-linked");
        }
        assertEquals(List.of(), leftovers());
    }

    @Test
    void copyCopiesInsteadOfLinkingAndLinksAreFollowed() throws IOException {
        Path model = modelFolder();
        Path shared = Files.writeString(dir.resolve("shared-config.json"), "{\"shared\": true}");
        Files.createSymbolicLink(model.resolve("extra.json"), shared);
        Path out = dir.resolve("copied");
        Run run = run("convert", model.toString(), "--out", out.toString(), "--copy");
        assertEquals(0, run.exitCode(), run.err());
        assertFalse(Files.isSameFile(model.resolve("config.json"), out.resolve("config.json")));
        assertFalse(Files.isSymbolicLink(out.resolve("extra.json")));
        assertEquals("{\"shared\": true}", Files.readString(out.resolve("extra.json")));
    }

    @Test
    void aMaliciousCheckpointIsRefusedBeforeAnythingIsWritten() throws IOException {
        Path model = modelFolder();
        Path victim = dir.resolve("pwned");
        byte[] payload = new PickleWriter().proto(2).global("posix", "system")
                .unmemoizedString("touch " + victim).tuple(1).reduce().stop().bytes();
        Path evil = TorchSaveFixture.writePickle(model.resolve("zz_evil.pth"), payload);
        Path out = dir.resolve("out");
        Run run = run("convert", model.toString(), "--out", out.toString());
        assertEquals(2, run.exitCode());
        assertTrue(run.err().contains(evil.toString()) && run.err().contains("global posix.system is not allowed"),
                run.err());
        assertFalse(Files.exists(out));
        assertFalse(Files.exists(victim));
        assertEquals(List.of(), leftovers());
    }

    @Test
    void aBrokenCheckpointLeavesNothingBehind() throws IOException {
        Path model = modelFolder();
        new TorchSaveFixture().storage("0", SafetensorsDType.F32, 1f, 2f).put("w", contiguous("0", 0, 2))
                .omitStorageRecord("0").write(model.resolve("broken.pt"));
        Path out = dir.resolve("out");
        Run run = run("convert", model.toString(), "--out", out.toString());
        assertEquals(2, run.exitCode());
        assertTrue(run.err().contains("broken.pt") && run.err().contains("has no record archive/data/0"), run.err());
        assertFalse(Files.exists(out));
        assertEquals(List.of(), leftovers());
    }

    @Test
    void badFoldersAreRefused() throws IOException {
        Path model = modelFolder();
        Run missing = run("convert", dir.resolve("nowhere").toString(), "--out", dir.resolve("o").toString());
        assertEquals(2, missing.exitCode());
        assertTrue(missing.err().contains("does not exist"), missing.err());

        Path full = Files.createDirectories(dir.resolve("full"));
        Files.writeString(full.resolve("keep.txt"), "mine");
        Run notEmpty = run("convert", model.toString(), "--out", full.toString());
        assertEquals(2, notEmpty.exitCode());
        assertTrue(notEmpty.err().contains("exists and is not empty"), notEmpty.err());
        assertEquals("mine", Files.readString(full.resolve("keep.txt")));

        Run inside = run("convert", model.toString(), "--out", model.resolve("sub").toString());
        assertEquals(2, inside.exitCode());
        assertTrue(inside.err().contains("must lie outside DIR"), inside.err());

        Path plain = Files.createDirectories(dir.resolve("plain"));
        Files.writeString(plain.resolve("config.json"), "{}");
        Run nothing = run("convert", plain.toString(), "--out", dir.resolve("o2").toString());
        assertEquals(2, nothing.exitCode());
        assertTrue(nothing.err().contains("holds no .pth or .pt file"), nothing.err());

        Files.write(model.resolve("Wan2.1_VAE.safetensors"), "x".getBytes(StandardCharsets.US_ASCII));
        Run clash = run("convert", model.toString(), "--out", dir.resolve("o3").toString());
        assertEquals(2, clash.exitCode());
        assertTrue(clash.err().contains("would both become Wan2.1_VAE.safetensors"), clash.err());
        assertFalse(Files.exists(dir.resolve("o3")));
    }

    @Test
    void anEmptyOutFolderIsFilled() throws IOException {
        Path model = modelFolder();
        Path out = Files.createDirectories(dir.resolve("empty-out"));
        Run run = run("convert", model.toString(), "--out", out.toString());
        assertEquals(0, run.exitCode(), run.err());
        assertTrue(Files.isRegularFile(out.resolve("Wan2.1_VAE.safetensors")));
    }
}
