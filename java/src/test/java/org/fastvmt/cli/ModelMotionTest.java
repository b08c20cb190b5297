package org.fastvmt.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import org.fastvmt.io.SyntheticClip;
import org.fastvmt.io.VideoOutput;
import org.fastvmt.io.VideoReader;

/**
 * {@code fastvmt motion VIDEO --model DIR}: motion read from the tiny DiT's block attention, on a
 * real video (../shared/data/source.mp4 when present, else a generated one) and on the generated
 * clip, in both folder layouts; the pictures, motion.mp4 and motion.json follow the latent frames.
 */
class ModelMotionTest {

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
        assertEquals(0, InitModelCommandTest.run("init-model", "--config", "tiny", "--out", official.toString())
                .exitCode());
        assertEquals(0, InitModelCommandTest.run("init-model", "--config", "tiny", "--out", diffusers.toString(),
                "--layout", "diffusers").exitCode());
        String sharedDir = System.getProperty("fastvmt.shared.dir");
        Path real = sharedDir == null ? null : Path.of(sharedDir, "data", "source.mp4");
        if (real != null && Files.isRegularFile(real)) {
            source = real;
        } else {
            source = shared.resolve("generated.mp4");
            VideoOutput.write(source, VideoTransferTest.clip(SyntheticClip.moving(96, 64, 13, 3), 15));
        }
    }

    private static JsonObject motionJson(Path out) throws IOException {
        return JsonParser.parseString(Files.readString(out.resolve("motion.json"))).getAsJsonObject();
    }

    @Test
    void aVideosMotionIsReadFromTheDiTAttention() throws IOException {
        Path out = dir.resolve("motion");
        InitModelCommandTest.Run run = InitModelCommandTest.run("motion", source.toString(), "--model",
                official.toString(), "--size", "64x48", "--frames", "9", "--out", out.toString(), "--device", "cpu",
                "--json");
        assertEquals(0, run.exitCode(), run.err());
        JsonObject json = motionJson(out);
        assertEquals(2, json.get("pairs").getAsInt(), json.toString());
        assertEquals("tiny", json.get("model").getAsString());
        assertEquals(1, json.get("amf_block").getAsInt(), "the last block of the 2-block tiny model");
        assertEquals(9, json.get("frames").getAsInt());
        assertEquals(0, json.getAsJsonArray("per_pair").get(0).getAsJsonObject().get("from").getAsInt());
        assertEquals(4, json.getAsJsonArray("per_pair").get(0).getAsJsonObject().get("to").getAsInt());
        assertEquals(8, json.getAsJsonArray("per_pair").get(1).getAsJsonObject().get("to").getAsInt());
        assertTrue(Files.isRegularFile(out.resolve("flow_0000.png")) && Files.isRegularFile(out.resolve("flow_0001.png")));
        try (VideoReader reader = VideoReader.open(out.resolve("motion.mp4"))) {
            assertEquals(64, reader.width());
            assertEquals(48, reader.height());
        }
        assertTrue(run.err().contains("reading the attention of DiT block 1"), run.err());
    }

    @Test
    void theGeneratedClipWithNoiseInTheDiffusersLayoutReportsItsError() throws IOException {
        Path out = dir.resolve("motion");
        InitModelCommandTest.Run run = InitModelCommandTest.run("motion", "--model", diffusers.toString(), "--size",
                "64x48", "--frames", "5", "--timestep", "500", "--amf-block", "0", "--out", out.toString(), "--device",
                "cpu");
        assertEquals(0, run.exitCode(), run.err());
        JsonObject json = motionJson(out);
        assertEquals(1, json.get("pairs").getAsInt());
        assertEquals(0, json.get("amf_block").getAsInt());
        assertEquals(500, json.get("timestep").getAsDouble());
        assertTrue(json.has("epe"), json.toString());
    }

    @Test
    void badOptionsAreRefused() {
        InitModelCommandTest.Run frames = InitModelCommandTest.run("motion", source.toString(), "--model",
                official.toString(), "--size", "64x48", "--frames", "6", "--out", dir.resolve("m").toString());
        assertEquals(2, frames.exitCode());
        assertTrue(frames.err().contains("--frames"), frames.err());
        InitModelCommandTest.Run noModel = InitModelCommandTest.run("motion", source.toString(), "--timestep", "3",
                "--out", dir.resolve("m").toString());
        assertEquals(2, noModel.exitCode());
        assertTrue(noModel.err().contains("only with --model"), noModel.err());
        InitModelCommandTest.Run block = InitModelCommandTest.run("motion", source.toString(), "--model",
                official.toString(), "--size", "64x48", "--amf-block", "5", "--out", dir.resolve("m").toString());
        assertEquals(2, block.exitCode());
        assertTrue(block.err().contains("--amf-block must be in [0, 1]"), block.err());
    }
}
