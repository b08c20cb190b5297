package org.fastvmt.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import org.fastvmt.io.RgbFrame;
import org.fastvmt.io.SyntheticClip;
import org.fastvmt.io.VideoOutput;
import org.fastvmt.io.VideoReader;
import org.fastvmt.io.VideoTensor;
import org.fastvmt.model.ModelFolder;
import org.fastvmt.model.t5.UmT5Checkpoint;
import org.fastvmt.model.t5.UmT5Config;
import org.fastvmt.model.vae.WanVaeConfig;
import org.fastvmt.model.wan.WanConfig;

/**
 * The video form of {@code fastvmt transfer} end to end: init-model writes a complete tiny model
 * folder in each layout, and a real video (../shared/data/source.mp4 when the build names the
 * shared folder, else a generated clip) goes through the text encoder, the VAE, the DiT and back
 * to an mp4 that decodes with the asked size and frame count. Then the bad inputs.
 */
class VideoTransferTest {

    @TempDir
    static Path shared;

    @TempDir
    Path dir;

    static Path official;
    static Path diffusers;
    static Path source;

    @BeforeAll
    static void tinyFoldersAndAVideo() throws IOException {
        official = shared.resolve("tiny-official");
        diffusers = shared.resolve("tiny-diffusers");
        InitModelCommandTest.Run a = InitModelCommandTest.run("init-model", "--config", "tiny", "--seed", "5", "--out",
                official.toString());
        assertEquals(0, a.exitCode(), a.err());
        InitModelCommandTest.Run b = InitModelCommandTest.run("init-model", "--config", "tiny", "--seed", "5", "--out",
                diffusers.toString(), "--layout", "diffusers");
        assertEquals(0, b.exitCode(), b.err());
        String sharedDir = System.getProperty("fastvmt.shared.dir");
        Path real = sharedDir == null ? null : Path.of(sharedDir, "data", "source.mp4");
        if (real != null && Files.isRegularFile(real)) {
            source = real;
        } else {
            source = shared.resolve("generated.mp4");
            VideoOutput.write(source, clip(SyntheticClip.moving(96, 64, 9, 3), 15));
        }
    }

    static VideoTensor clip(SyntheticClip clip, double fps) {
        List<RgbFrame> frames = new ArrayList<>();
        for (int t = 0; t < clip.frames(); t++) {
            frames.add(clip.frame(t));
        }
        return VideoTensor.of(frames, fps);
    }

    /** A fast run: 64x48, 5 frames, 2 steps (the first guided, 2 iterations), on the cpu. */
    private static InitModelCommandTest.Run transfer(Path model, Path video, Path out, String... extra) {
        return transfer(model, video, "the cat runs", out, extra);
    }

    private static InitModelCommandTest.Run transfer(Path model, Path video, String prompt, Path out,
            String... extra) {
        List<String> args = new ArrayList<>(List.of("transfer", "--model", model.toString(), "--reference",
                video.toString(), "--prompt", prompt, "--out", out.toString(), "--width", "64", "--height",
                "48", "--frames", "5", "--steps", "2", "--guided-steps", "1", "--iterations", "2", "--device", "cpu"));
        args.addAll(List.of(extra));
        return InitModelCommandTest.run(args.toArray(String[]::new));
    }

    /** width, height, decoded frame count of a video file. */
    private static int[] probe(Path file) throws IOException {
        try (VideoReader reader = VideoReader.open(file)) {
            int frames = 0;
            while (reader.read() != null) {
                frames++;
            }
            return new int[] {reader.width(), reader.height(), frames};
        }
    }

    @Test
    void initModelWritesEveryComponentInBothLayouts() throws IOException {
        assertTrue(Files.isRegularFile(official.resolve("config.json")));
        assertTrue(Files.isRegularFile(official.resolve("diffusion_pytorch_model.safetensors")));
        assertTrue(Files.isRegularFile(official.resolve("Wan2.1_VAE.safetensors")));
        assertTrue(Files.isRegularFile(official.resolve("models_t5_umt5-xxl-enc-bf16.safetensors")));
        assertTrue(Files.isRegularFile(official.resolve("google/umt5-xxl/tokenizer.json")));
        assertTrue(Files.isRegularFile(diffusers.resolve("transformer/diffusion_pytorch_model.safetensors")));
        assertTrue(Files.isRegularFile(diffusers.resolve("vae/diffusion_pytorch_model.safetensors")));
        assertTrue(Files.isRegularFile(diffusers.resolve("text_encoder/model.safetensors")));
        assertTrue(Files.isRegularFile(diffusers.resolve("tokenizer/tokenizer.json")));
        for (Path folder : List.of(official, diffusers)) {
            ModelFolder model = ModelFolder.open(folder);
            assertEquals(WanConfig.TINY, model.ditConfig());
            assertEquals(WanVaeConfig.TINY, model.vaeConfig());
            assertEquals(UmT5Config.TINY, model.textEncoderConfig());
        }
        assertEquals(ModelFolder.Layout.OFFICIAL, ModelFolder.open(official).layout());
        assertEquals(ModelFolder.Layout.DIFFUSERS, ModelFolder.open(diffusers).layout());
        try (Stream<Path> left = Files.list(shared)) {
            assertTrue(left.noneMatch(p -> p.getFileName().toString().startsWith(".")), "no temporary folder is left");
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"official", "diffusers"})
    void aVideoGoesInAndAVideoComesOut(String layout) throws IOException {
        Path model = layout.equals("official") ? official : diffusers;
        Path out = dir.resolve("out.mp4");
        Path timings = dir.resolve("t.json");
        InitModelCommandTest.Run run = transfer(model, source, out, "--timings", timings.toString());
        assertEquals(0, run.exitCode(), run.err());
        assertTrue(run.out().contains("wrote " + out.toAbsolutePath()), run.out());
        assertTrue(run.err().contains("encoding the prompts") && run.err().contains("decoding the result"), run.err());
        assertEquals(List.of(64, 48, 5), List.of(probe(out)[0], probe(out)[1], probe(out)[2]));
        JsonObject json = JsonParser.parseString(Files.readString(timings)).getAsJsonObject();
        assertEquals(layout, json.get("model_layout").getAsString());
        assertEquals("64x48x5", json.get("size").getAsString());
        assertTrue(json.getAsJsonObject("phases_ms").get("vae_decode").getAsDouble() > 0);
        assertTrue(json.getAsJsonArray("first_step_losses").get(0).getAsDouble() > 0, json.toString());
    }

    @Test
    void sideBySideDoublesTheWidthAndALongPromptIsTruncatedWithAWarning() throws IOException {
        Path out = dir.resolve("side.gif");
        String longPrompt = "the cat runs and the dog runs ".repeat(10);
        InitModelCommandTest.Run run = transfer(official, source, longPrompt, out, "--side-by-side", "--mode",
                "none");
        assertEquals(0, run.exitCode(), run.err());
        assertTrue(run.err().contains("truncated"), run.err());
        int[] got = probe(out);
        assertEquals(128, got[0]);
        assertEquals(48, got[1]);
        assertEquals(5, got[2]);
    }

    @Test
    void theSameSeedGivesTheSameVideo() throws IOException {
        Path a = dir.resolve("a.mp4");
        Path b = dir.resolve("b.mp4");
        assertEquals(0, transfer(official, source, a, "--mode", "none", "--seed", "9").exitCode());
        assertEquals(0, transfer(official, source, b, "--mode", "none", "--seed", "9").exitCode());
        assertTrue(java.util.Arrays.equals(Files.readAllBytes(a), Files.readAllBytes(b)));
    }

    @Test
    void badVideosAreRefusedNamingTheOptionAndNothingIsWritten() throws IOException {
        Path out = dir.resolve("o").resolve("out.mp4");
        Path text = Files.writeString(dir.resolve("notes.mp4"), "not a video\n".repeat(50));
        InitModelCommandTest.Run notVideo = transfer(official, text, out);
        assertEquals(2, notVideo.exitCode(), notVideo.err());
        assertTrue(notVideo.err().contains("--reference") && notVideo.err().contains("notes.mp4"), notVideo.err());

        Path shortClip = dir.resolve("short.mp4");
        VideoOutput.write(shortClip, clip(SyntheticClip.moving(64, 48, 3, 1), 16));
        InitModelCommandTest.Run tooShort = transfer(official, shortClip, out);
        assertEquals(2, tooShort.exitCode(), tooShort.err());
        assertTrue(tooShort.err().contains("3 frame(s) but 5 are needed"), tooShort.err());

        InitModelCommandTest.Run missing = transfer(official, dir.resolve("nothing.mp4"), out);
        assertEquals(2, missing.exitCode());
        assertTrue(missing.err().contains("--reference") && missing.err().contains("no such file"), missing.err());
        assertFalse(Files.exists(out), "nothing is written");
    }

    @Test
    void badSizesAndOutputsAreRefusedBeforeAnyWork() throws IOException {
        Path out = dir.resolve("out.mp4");
        InitModelCommandTest.Run width = transfer(official, source, out, "--width", "50");
        assertEquals(2, width.exitCode());
        assertTrue(width.err().contains("--width") && width.err().contains("multiple of 16"), width.err());
        InitModelCommandTest.Run frames = transfer(official, source, out, "--frames", "6");
        assertEquals(2, frames.exitCode());
        assertTrue(frames.err().contains("--frames") && frames.err().contains("4k+1"), frames.err());
        InitModelCommandTest.Run extension = transfer(official, source, dir.resolve("out.avi"));
        assertEquals(2, extension.exitCode());
        assertTrue(extension.err().contains("--out") && extension.err().contains(".mp4"), extension.err());
        Path file = Files.writeString(dir.resolve("plain"), "x");
        InitModelCommandTest.Run unwritable = transfer(official, source, file.resolve("out.mp4"));
        assertEquals(2, unwritable.exitCode());
        assertTrue(unwritable.err().contains("--out"), unwritable.err());
        assertFalse(unwritable.err().contains("encoding the prompts"), "refused before any work: " + unwritable.err());
        InitModelCommandTest.Run mixed = transfer(official, source, out, "--prompt-embeds", "p.safetensors");
        assertEquals(2, mixed.exitCode());
        assertTrue(mixed.err().contains("cannot be mixed") && mixed.err().contains("--prompt-embeds"), mixed.err());
        InitModelCommandTest.Run noPrompt = InitModelCommandTest.run("transfer", "--model", official.toString(),
                "--reference", source.toString(), "--out", out.toString());
        assertEquals(2, noPrompt.exitCode());
        assertTrue(noPrompt.err().contains("--prompt"), noPrompt.err());
        try (Stream<Path> files = Files.list(dir)) {
            assertEquals(List.of("plain"), files.map(p -> p.getFileName().toString()).toList());
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"Wan2.1_VAE.safetensors", "models_t5_umt5-xxl-enc-bf16.safetensors",
        "google/umt5-xxl/tokenizer.json"})
    void aFolderMissingAComponentNamesTheFilesOfBothLayouts(String removed) throws IOException {
        Path copy = dir.resolve("model");
        try (Stream<Path> files = Files.walk(official)) {
            for (Path p : files.toList()) {
                Path target = copy.resolve(official.relativize(p).toString());
                if (Files.isDirectory(p)) {
                    Files.createDirectories(target);
                } else if (!official.relativize(p).toString().equals(removed)) {
                    Files.copy(p, target);
                }
            }
        }
        InitModelCommandTest.Run run = transfer(copy, source, dir.resolve("out.mp4"));
        assertEquals(2, run.exitCode(), run.err());
        String expected = switch (removed) {
            case "Wan2.1_VAE.safetensors" -> List.of("Wan2.1_VAE.pth", "Wan2.1_VAE.safetensors",
                    "vae/diffusion_pytorch_model.safetensors").toString();
            case "google/umt5-xxl/tokenizer.json" -> List.of("google/umt5-xxl/tokenizer.json",
                    "tokenizer/tokenizer.json").toString();
            default -> List.of(UmT5Checkpoint.ORIGINAL_FILE, UmT5Checkpoint.ORIGINAL_SAFETENSORS,
                    "text_encoder/model.safetensors").toString();
        };
        for (String name : expected.substring(1, expected.length() - 1).split(", ")) {
            assertTrue(run.err().contains(name), "names " + name + ": " + run.err());
        }
        assertTrue(run.err().contains("official layout") && run.err().contains("diffusers layout"), run.err());
        assertFalse(Files.exists(dir.resolve("out.mp4")));
    }
}
