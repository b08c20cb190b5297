package org.fastvmt.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

import org.fastvmt.io.safetensors.SafetensorsDType;
import org.fastvmt.io.safetensors.SafetensorsFile;
import org.fastvmt.io.safetensors.SafetensorsWriter;
import org.fastvmt.io.safetensors.TensorInfo;
import org.fastvmt.model.wan.WanConfig;

/**
 * {@code fastvmt transfer} on the tiny model (written by init-model in both layouts) and tiny
 * latents, 2 steps of which 1 guided with 2 iterations: outputs, timings, determinism, and every
 * bad input refused before any work, naming the option and the file, writing nothing.
 */
class TransferCommandTest {

    private static final WanConfig TINY = WanConfig.TINY;
    /** [in_dim, F, H, W]: 5 frames of 4 x 6 tokens. */
    private static final long[] LATENTS = {TINY.inDim(), 5, 8, 12};

    @TempDir
    static Path shared;

    private static Path original;
    private static Path diffusers;
    private static Path reference;
    private static Path prompt;
    private static Path negative;
    /** latents, prompt_embeds and negative_embeds in one file. */
    private static Path bundle;

    @BeforeAll
    static void writeModelsAndInputs() throws IOException {
        original = shared.resolve("tiny-original");
        diffusers = shared.resolve("tiny-diffusers");
        assertEquals(0, InitModelCommandTest.run("init-model", "--config", "tiny", "--seed", "11", "--out",
                original.toString()).exitCode());
        assertEquals(0, InitModelCommandTest.run("init-model", "--config", "tiny", "--seed", "11", "--out",
                diffusers.toString(), "--layout", "diffusers").exitCode());
        SplittableRandom random = new SplittableRandom(5);
        float[] latents = gaussian(random, LATENTS);
        float[] promptRows = gaussian(random, 6, TINY.textDim());
        float[] negativeRows = gaussian(random, 3, TINY.textDim());
        reference = shared.resolve("reference.safetensors");
        prompt = shared.resolve("prompt.safetensors");
        negative = shared.resolve("negative.safetensors");
        bundle = shared.resolve("bundle.safetensors");
        new SafetensorsWriter().addFloats("latents", SafetensorsDType.F32, latents, LATENTS).write(reference);
        new SafetensorsWriter().addFloats("prompt_embeds", SafetensorsDType.F32, promptRows, 6, TINY.textDim())
                .write(prompt);
        new SafetensorsWriter().addFloats("negative_embeds", SafetensorsDType.BF16, negativeRows, 3, TINY.textDim())
                .write(negative);
        new SafetensorsWriter().addFloats("latents", SafetensorsDType.F32, latents, LATENTS)
                .addFloats("prompt_embeds", SafetensorsDType.F32, promptRows, 6, TINY.textDim())
                .addFloats("negative_embeds", SafetensorsDType.BF16, negativeRows, 3, TINY.textDim())
                .addFloats("unrelated", SafetensorsDType.F32, new float[] {1, 2}, 2)
                .write(bundle);
    }

    private static float[] gaussian(SplittableRandom random, long... shape) {
        float[] values = new float[(int) Arrays.stream(shape).reduce(1, Math::multiplyExact)];
        for (int i = 0; i < values.length; i++) {
            values[i] = (float) random.nextGaussian();
        }
        return values;
    }

    /** A fast transfer: 2 steps, the first guided with 2 iterations, on the cpu. */
    private static InitModelCommandTest.Run transfer(Path model, Path out, String... extra) {
        List<String> args = new ArrayList<>(List.of("transfer", "--model", model.toString(), "--reference-latents",
                reference.toString(), "--prompt-embeds", prompt.toString(), "--negative-embeds", negative.toString(),
                "--out", out.toString(), "--steps", "2", "--guided-steps", "1", "--iterations", "2", "--device", "cpu"));
        args.addAll(List.of(extra));
        return InitModelCommandTest.run(args.toArray(String[]::new));
    }

    static Stream<String> modes() {
        return Stream.of("fastvmt", "ditflow", "none");
    }

    @ParameterizedTest
    @MethodSource("modes")
    void writesTheLatentsAndTheTimings(String mode, @TempDir Path dir) throws IOException {
        Path out = dir.resolve("out.safetensors");
        Path timings = dir.resolve("timings").resolve("t.json");
        InitModelCommandTest.Run run = transfer(original, out, "--mode", mode, "--timings", timings.toString());
        assertEquals(0, run.exitCode(), run.err());
        try (SafetensorsFile file = SafetensorsFile.open(out)) {
            assertEquals(List.of("latents"), file.names());
            TensorInfo info = file.info("latents");
            assertEquals(SafetensorsDType.F32, info.dtype());
            assertArrayEquals(new long[] {TINY.outDim(), 5, 8, 12}, info.shape());
            float[] values = file.readF32("latents");
            for (float v : values) {
                assertTrue(Float.isFinite(v));
            }
            assertTrue(file.metadata().get("fastvmt_settings").contains("\"mode\":\"" + mode + "\""), file.metadata()
                    .toString());
        }
        JsonObject json = JsonParser.parseString(Files.readString(timings)).getAsJsonObject();
        for (String phase : List.of("reference_amf", "fresh_guidance", "reused_iterations", "denoising")) {
            assertTrue(json.get(phase + "_ms").getAsDouble() >= 0, phase);
        }
        assertTrue(json.get("total_ms").getAsDouble() > 0);
        // Iterations 0 and 1 of the one guided step: fastvmt's interval 3 makes only 0 fresh.
        int[] expected = switch (mode) {
            case "fastvmt" -> new int[] {1, 1, 1};
            case "ditflow" -> new int[] {1, 2, 0};
            default -> new int[] {0, 0, 0};
        };
        assertEquals(expected[0], json.get("reference_amf_count").getAsInt(), json.toString());
        assertEquals(expected[1], json.get("fresh_guidance_count").getAsInt(), json.toString());
        assertEquals(expected[2], json.get("reused_iterations_count").getAsInt(), json.toString());
        assertEquals(2, json.get("denoising_count").getAsInt());
        assertEquals(mode, json.get("mode").getAsString());
        assertEquals(mode, json.getAsJsonObject("settings").get("mode").getAsString());
        assertEquals(2, json.getAsJsonObject("settings").get("iterations").getAsInt());
        assertEquals("cpu", json.get("device").getAsString());
        if (!mode.equals("none")) {
            // The loss before each iteration of the guided step; fastvmt's second iteration reuses the gradient.
            var losses = json.getAsJsonArray("first_step_losses");
            assertEquals(2, losses.size(), json.toString());
            assertTrue(losses.get(0).getAsDouble() > 0, json.toString());
            assertEquals(mode.equals("fastvmt"), losses.get(1).isJsonNull(), json.toString());
        }
        assertTrue(run.out().contains("fresh_guidance") && run.out().contains("wrote " + out), run.out());
        try (Stream<Path> files = Files.list(dir)) {
            assertEquals(Set.of(out, timings.getParent()), files.collect(Collectors.toSet()), "no temporary files");
        }
    }

    @Test
    void sameSeedSameBytesAndTheLayoutDoesNotMatter(@TempDir Path dir) throws IOException {
        Path a = dir.resolve("a.safetensors");
        Path b = dir.resolve("b.safetensors");
        Path c = dir.resolve("c.safetensors");
        Path d = dir.resolve("d.safetensors");
        Path none = dir.resolve("none.safetensors");
        assertEquals(0, transfer(original, a, "--seed", "3").exitCode());
        assertEquals(0, transfer(original, b, "--seed", "3").exitCode());
        assertEquals(0, transfer(diffusers, c, "--seed", "3").exitCode());
        assertEquals(0, transfer(original, d, "--seed", "4").exitCode());
        assertEquals(0, transfer(original, none, "--seed", "3", "--mode", "none").exitCode());
        byte[] bytes = Files.readAllBytes(a);
        assertArrayEquals(bytes, Files.readAllBytes(b), "same seed, same bytes");
        assertArrayEquals(bytes, Files.readAllBytes(c), "the same weights in the diffusers layout");
        assertFalse(Arrays.equals(latents(a), latents(d)), "another seed");
        assertFalse(Arrays.equals(latents(a), latents(none)), "guidance changes the latents");
    }

    private static float[] latents(Path file) throws IOException {
        try (SafetensorsFile safetensors = SafetensorsFile.open(file)) {
            return safetensors.readF32("latents");
        }
    }

    @Test
    void oneFileMayHoldEveryInputByName(@TempDir Path dir) throws IOException {
        Path fromBundle = dir.resolve("bundle-out.safetensors");
        Path fromFiles = dir.resolve("files-out.safetensors");
        InitModelCommandTest.Run run = InitModelCommandTest.run("transfer", "--model", original.toString(),
                "--reference-latents", bundle.toString(), "--prompt-embeds", bundle.toString(), "--negative-embeds",
                bundle.toString(), "--out", fromBundle.toString(), "--steps", "2", "--guided-steps", "1",
                "--iterations", "2", "--device", "cpu");
        assertEquals(0, run.exitCode(), run.err());
        assertEquals(0, transfer(original, fromFiles).exitCode());
        assertArrayEquals(Files.readAllBytes(fromFiles), Files.readAllBytes(fromBundle));
    }

    // ---- bad input (issue 4, item 9): exit code 2, a message naming the option and the file, nothing written ----

    private void refused(Path dir, String option, String fileName, String expected, String... replace) {
        Path out = dir.resolve("out.safetensors");
        Path timings = dir.resolve("t.json");
        List<String> args = new ArrayList<>(List.of("transfer", "--model", original.toString(), "--reference-latents",
                reference.toString(), "--prompt-embeds", prompt.toString(), "--out", out.toString(), "--timings",
                timings.toString(), "--steps", "2", "--guided-steps", "1", "--iterations", "2", "--device", "cpu"));
        for (int i = 0; i < replace.length; i += 2) {
            int at = args.indexOf(replace[i]);
            if (at >= 0) {
                args.set(at + 1, replace[i + 1]);
            } else {
                args.add(replace[i]);
                args.add(replace[i + 1]);
            }
        }
        InitModelCommandTest.Run run = InitModelCommandTest.run(args.toArray(String[]::new));
        assertEquals(2, run.exitCode(), run.err());
        String error = run.err();
        assertTrue(error.contains(option), "names " + option + ": " + error);
        assertTrue(error.contains(fileName), "names " + fileName + ": " + error);
        assertTrue(error.contains(expected), "says " + expected + ": " + error);
        assertFalse(error.contains("fastvmt: device"), "refused before opening a device: " + error);
        assertFalse(Files.exists(out), "no output");
        assertFalse(Files.exists(timings), "no timings");
    }

    private static Path latentsFile(Path dir, String name, long... shape) throws IOException {
        Path file = dir.resolve(name);
        new SafetensorsWriter().addFloats("latents", SafetensorsDType.F32,
                new float[(int) Arrays.stream(shape).reduce(1, Math::multiplyExact)], shape).write(file);
        return file;
    }

    private static Path embeddingsFile(Path dir, String name, long rows, long width) throws IOException {
        Path file = dir.resolve(name);
        new SafetensorsWriter().addFloats("prompt_embeds", SafetensorsDType.F32, new float[(int) (rows * width)],
                rows, width).write(file);
        return file;
    }

    @Test
    void latentsWithTheWrongChannels(@TempDir Path dir) throws IOException {
        Path bad = latentsFile(dir, "channels.safetensors", TINY.inDim() + 1, 5, 8, 12);
        refused(dir, "--reference-latents", "channels.safetensors", "channels", "--reference-latents", bad.toString());
    }

    @Test
    void latentsWithAHeightOrWidthNotDivisibleByThePatch(@TempDir Path dir) throws IOException {
        Path height = latentsFile(dir, "height.safetensors", TINY.inDim(), 5, 7, 12);
        refused(dir, "--reference-latents", "height.safetensors", "patch", "--reference-latents", height.toString());
        Path width = latentsFile(dir, "width.safetensors", TINY.inDim(), 5, 8, 13);
        refused(dir, "--reference-latents", "width.safetensors", "patch", "--reference-latents", width.toString());
    }

    @Test
    void latentsWithTheWrongRankOrNoFrames(@TempDir Path dir) throws IOException {
        Path rank = latentsFile(dir, "rank.safetensors", TINY.inDim(), 8, 12);
        refused(dir, "--reference-latents", "rank.safetensors", "4 dimensions", "--reference-latents", rank.toString());
        Path frames = latentsFile(dir, "frames.safetensors", TINY.inDim(), 0, 8, 12);
        refused(dir, "--reference-latents", "frames.safetensors", "frames", "--reference-latents", frames.toString());
    }

    @Test
    void embeddingsOfTheWrongWidthOrLength(@TempDir Path dir) throws IOException {
        Path width = embeddingsFile(dir, "width.safetensors", 6, TINY.textDim() + 1);
        refused(dir, "--prompt-embeds", "width.safetensors", "width", "--prompt-embeds", width.toString());
        Path negativeWidth = embeddingsFile(dir, "negwidth.safetensors", 6, TINY.textDim() - 1);
        refused(dir, "--negative-embeds", "negwidth.safetensors", "width", "--negative-embeds", negativeWidth.toString());
        Path emptyLong = embeddingsFile(dir, "long.safetensors", TINY.textLength() + 1, TINY.textDim());
        refused(dir, "--empty-embeds", "long.safetensors", "tokens", "--empty-embeds", emptyLong.toString());
    }

    @Test
    void aFileWithSeveralTensorsAndNoneOfTheName(@TempDir Path dir) {
        refused(dir, "--empty-embeds", "bundle.safetensors", "empty_embeds", "--empty-embeds", bundle.toString());
    }

    @Test
    void missingFiles(@TempDir Path dir) {
        refused(dir, "--reference-latents", "missing.safetensors", "no such file", "--reference-latents",
                dir.resolve("missing.safetensors").toString());
        refused(dir, "--prompt-embeds", "missing.safetensors", "no such file", "--prompt-embeds",
                dir.resolve("missing.safetensors").toString());
        refused(dir, "--model", "no-model", "no such", "--model", dir.resolve("no-model").toString());
    }

    @Test
    void aFileThatIsNotSafetensors(@TempDir Path dir) throws IOException {
        Path text = Files.writeString(dir.resolve("notes.safetensors"), "hello, not a tensor file");
        refused(dir, "--prompt-embeds", "notes.safetensors", "header", "--prompt-embeds", text.toString());
        Path pickle = Files.write(dir.resolve("latents.pt"), new byte[] {'P', 'K', 3, 4, 0, 0, 0, 0, 0, 0, 0, 0});
        refused(dir, "--reference-latents", "latents.pt", "PyTorch", "--reference-latents", pickle.toString());
    }

    @Test
    void aNonWritableOutputOrTimings(@TempDir Path dir) throws IOException {
        Path blocker = Files.writeString(dir.resolve("blocker"), "a file where a folder should be");
        refused(dir, "--out", "blocker", "not a folder", "--out", blocker.resolve("out.safetensors").toString());
        refused(dir, "--timings", "blocker", "not a folder", "--timings", blocker.resolve("t.json").toString());
        Path folder = Files.createDirectories(dir.resolve("a-folder"));
        refused(dir, "--out", "a-folder", "is a folder", "--out", folder.toString());
        refused(dir, "--out", "reference.safetensors", "also an input", "--out", reference.toString());
    }

    @ParameterizedTest
    @ValueSource(strings = {"--steps=0", "--guided-steps=3", "--iterations=0", "--interval=0", "--strength=1.5",
            "--shift=-1", "--cfg-scale=-2", "--amf-block=2", "--mode=fast"})
    void settingsOutOfRange(String option, @TempDir Path dir) {
        String[] parts = option.split("=");
        refused(dir, parts[0], parts[1], "", parts[0], parts[1]);
    }

    @Test
    void ditflowHasNoInterval(@TempDir Path dir) {
        refused(dir, "--interval", "ditflow", "fresh gradient every iteration", "--mode", "ditflow", "--interval", "3");
    }

    // ---- Ctrl-C ----

    /**
     * A signal (SIGTERM here: a background test process may ignore SIGINT, and the JVM handles both
     * through the same shutdown hooks) stops a long transfer between iterations; nothing is written.
     */
    @Test
    void aSignalStopsCleanlyAndLeavesNoOutput(@TempDir Path dir) throws Exception {
        Path out = dir.resolve("out.safetensors");
        Path timings = dir.resolve("t.json");
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        ProcessBuilder builder = new ProcessBuilder(java, "--enable-native-access=ALL-UNNAMED",
                "-cp", System.getProperty("java.class.path"), Main.class.getName(), "transfer",
                "--model", original.toString(), "--reference-latents", reference.toString(), "--prompt-embeds",
                prompt.toString(), "--out", out.toString(), "--timings", timings.toString(), "--steps", "500",
                "--guided-steps", "500", "--iterations", "4", "--device", "cpu");
        builder.redirectOutput(ProcessBuilder.Redirect.DISCARD);
        Process process = builder.start();
        List<String> lines = new ArrayList<>();
        CountDownLatch running = new CountDownLatch(1);
        Thread reader = Thread.ofPlatform().start(() -> {
            try (BufferedReader err = new BufferedReader(new InputStreamReader(process.getErrorStream(),
                    StandardCharsets.UTF_8))) {
                for (String line = err.readLine(); line != null; line = err.readLine()) {
                    synchronized (lines) {
                        lines.add(line);
                    }
                    if (line.startsWith("fastvmt: step 2/")) {
                        running.countDown();
                    }
                }
            } catch (IOException e) {
                // the process ended
            }
        });
        try {
            assertTrue(running.await(120, TimeUnit.SECONDS), "the transfer did not start: " + lines);
            // SIGTERM through the handle: Process.destroy() would also close our end of its stderr.
            process.toHandle().destroy();
            assertTrue(process.waitFor(120, TimeUnit.SECONDS), "the transfer did not stop");
            reader.join(10_000);
        } finally {
            process.destroyForcibly();
        }
        assertEquals(128 + 15, process.exitValue(), "the SIGTERM status: " + lines);
        assertTrue(lines.contains("fastvmt: interrupted; no output was written"), lines.toString());
        try (Stream<Path> files = Files.list(dir)) {
            assertEquals(List.of(), files.toList(), "no output, no timings, no temporary file");
        }
    }
}
