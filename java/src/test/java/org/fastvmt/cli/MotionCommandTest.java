package org.fastvmt.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;

import org.fastvmt.backend.Backend;
import org.fastvmt.backend.Backends;
import org.fastvmt.backend.Device;
import org.fastvmt.io.RgbFrame;
import org.fastvmt.io.SyntheticClip;
import org.fastvmt.io.VideoWriter;
import org.fastvmt.motion.AmfParams;
import org.fastvmt.motion.PatchDescriptors;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/**
 * {@code fastvmt motion} end to end on the cpu backend: the generated clip (whose motion is
 * known), still and panning clips, the shared sample video, and bad input.
 */
class MotionCommandTest {

    /** Small enough to be quick, large enough that the 21-token window does not cover every frame. */
    private static final String SIZE = "416x240";

    /**
     * The end-point error bound, in pixels per frame. A token is 16 px and --frame-step 4, so
     * whole-token readings come in steps of 4 px/frame; rounding motion that is spread evenly
     * between whole tokens to the nearest one errs by 1.53 px/frame on average (the mean
     * length of a point uniform in a 4 x 4 square, from its centre). The AMF's soft expectation
     * must beat that; seed 0 measures 1.32 at this size (1.16 at 832x480).
     */
    private static final double EPE_BOUND = 1.5;

    @TempDir
    Path dir;

    private record Run(int exitCode, String out, String err) {

        /** The --json object: the last line of standard output. */
        JsonObject json() {
            String[] lines = out.strip().split("\\R");
            return JsonParser.parseString(lines[lines.length - 1]).getAsJsonObject();
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

    @Test
    void theGeneratedClipIsReadWithinTheErrorBound() throws IOException {
        Path out = dir.resolve("out");
        Run run = run("motion", "--size", SIZE, "--device", "cpu", "--json", "--out", out.toString());
        assertEquals(0, run.exitCode(), run.err());
        JsonObject json = run.json();
        assertEquals(SyntheticClip.DEFAULT_FRAMES, json.get("frames").getAsInt());
        assertEquals(10, json.get("pairs").getAsInt());
        double epe = json.get("epe").getAsDouble();
        double noMotion = json.get("epe_no_motion").getAsDouble();
        assertTrue(epe < EPE_BOUND, "epe " + epe);
        assertTrue(epe < 0.8 * noMotion, "epe " + epe + " against " + noMotion + " for answering 0");
        assertTrue(json.get("cells_used").getAsDouble() > 0.8, run.out());
        assertTrue(Double.isFinite(json.get("mean_dx").getAsDouble()) && Double.isFinite(json.get("mean_dy").getAsDouble()));

        List<String> expected = new ArrayList<>();
        for (int p = 0; p < 10; p++) {
            expected.add(String.format("flow_%04d.png", p));
        }
        expected.add("motion.json");
        expected.add("motion.mp4");
        assertEquals(expected, list(out), "every output and nothing half-written");
        JsonObject file = JsonParser.parseString(Files.readString(out.resolve("motion.json"))).getAsJsonObject();
        assertEquals(epe, file.get("epe").getAsDouble());
        assertEquals(10, file.getAsJsonArray("per_pair").size());
        assertEquals(4, file.getAsJsonArray("per_pair").get(1).getAsJsonObject().get("from").getAsInt());
        assertTrue(Files.size(out.resolve("motion.mp4")) > 1000);
    }

    /**
     * Readings of a still clip are softmax means over symmetric neighbourhoods, so they scatter
     * around 0 by a few hundredths of a token; 0.25 px/frame is a sixteenth of the 4 px/frame
     * that one token per pair means.
     */
    @Test
    void aStillClipHasNoMotion() {
        MotionStatistics still = statistics(SyntheticClip.pan(416, 240, 9, 5, 0, 0));
        assertEquals(0, still.meanDx(), 0.02);
        assertEquals(0, still.meanDy(), 0.02);
        assertTrue(still.epe() < 0.25, "epe " + still.epe());
        assertTrue(still.cellsUsed() > 0.95, "cells used " + still.cellsUsed());
    }

    /**
     * A pan of (2, -2) px/frame is half a token per sampled pair along each axis: the mean must
     * find it although no single whole-token reading equals it.
     */
    @Test
    void aPanIsReadAsThePan() {
        MotionStatistics pan = statistics(SyntheticClip.pan(416, 240, 9, 5, 2, -2));
        assertEquals(2, pan.meanDx(), 0.3);
        assertEquals(-2, pan.meanDy(), 0.3);
        assertTrue(pan.cellsUsed() > 0.7, "cells used " + pan.cellsUsed());
    }

    @Test
    void theSampleVideoIsRead() throws IOException {
        String shared = System.getProperty("fastvmt.shared.dir");
        Assumptions.assumeTrue(shared != null, "fastvmt.shared.dir is not set");
        Path video = Path.of(shared, "data", "source.mp4");
        Assumptions.assumeTrue(Files.isRegularFile(video), video + " is absent");
        Path out = dir.resolve("out");
        Run run = run("motion", video.toString(), "--size", SIZE, "--device", "cpu", "--json", "--out",
                out.toString());
        assertEquals(0, run.exitCode(), run.err());
        JsonObject json = run.json();
        assertEquals(81, json.get("frames").getAsInt());
        assertEquals(20, json.get("pairs").getAsInt());
        assertEquals("640x368", json.get("input_size").getAsString());
        assertTrue(!json.has("epe"), "no known motion, no error");
        // A mostly static shot with one runner: small mean motion, and some readings trusted.
        assertTrue(Math.abs(json.get("mean_dx").getAsDouble()) < 2, run.out());
        assertTrue(Math.abs(json.get("mean_dy").getAsDouble()) < 2, run.out());
        assertTrue(json.get("cells_used").getAsDouble() > 0.1, run.out());
        assertTrue(Files.isRegularFile(out.resolve("flow_0019.png")) && Files.isRegularFile(out.resolve("motion.mp4")));
    }

    @Test
    void aFileThatIsNotAVideoIsBadInput() throws IOException {
        byte[] noise = new byte[4096];
        new Random(1).nextBytes(noise);
        Path binary = Files.write(dir.resolve("noise.bin"), noise);
        Path text = Files.writeString(dir.resolve("notes.txt"), "not a video\n".repeat(50));
        for (Path file : List.of(binary, text)) {
            Run run = run("motion", file.toString(), "--device", "cpu", "--out", dir.resolve("out").toString());
            assertEquals(2, run.exitCode(), run.err());
            assertTrue(run.err().contains(file.toString()) && run.err().contains("expected a video"), run.err());
        }
    }

    @Test
    void aMissingFileIsBadInput() {
        Path missing = dir.resolve("missing.mp4");
        Run run = run("motion", missing.toString(), "--device", "cpu", "--out", dir.resolve("out").toString());
        assertEquals(2, run.exitCode());
        assertTrue(run.err().contains(missing.toString()) && run.err().contains("no such file"), run.err());
    }

    @Test
    void aVideoTooShortForOnePairIsBadInput() throws IOException {
        Path video = dir.resolve("short.mp4");
        writeGreyVideo(video, 4);
        Run run = run("motion", video.toString(), "--size", "64x48", "--tile", "2x2", "--device", "cpu", "--out",
                dir.resolve("out").toString());
        assertEquals(2, run.exitCode());
        assertTrue(run.err().contains("has 4 frame(s)") && run.err().contains("at least 5"), run.err());
    }

    /** A flat picture carries no motion: nothing is used, the motion is 0 and the pictures are all grey. */
    @Test
    void aFlatVideoHasNoUsableCells() throws IOException {
        Path video = dir.resolve("grey.mp4");
        writeGreyVideo(video, 9);
        Path out = dir.resolve("out");
        Run run = run("motion", video.toString(), "--size", "64x48", "--tile", "2x2", "--device", "cpu", "--json",
                "--out", out.toString());
        assertEquals(0, run.exitCode(), run.err());
        JsonObject json = run.json();
        assertEquals(9, json.get("frames").getAsInt());
        assertEquals(2, json.get("pairs").getAsInt());
        assertEquals(0.0, json.get("cells_used").getAsDouble());
        assertEquals(0.0, json.get("mean_dx").getAsDouble());
        assertEquals(0.0, json.get("mean_dy").getAsDouble());
        assertTrue(Files.isRegularFile(out.resolve("flow_0001.png")));
    }

    @Test
    void anUnwritableOutputFolderIsRefusedBeforeAnyWork() throws IOException {
        Path file = Files.writeString(dir.resolve("a-file"), "x");
        Run run = run("motion", "--device", "cpu", "--out", file.resolve("out").toString());
        assertEquals(2, run.exitCode());
        assertTrue(run.err().contains("--out " + file.resolve("out")), run.err());
        assertTrue(!run.err().contains("fastvmt: device"), "no backend was opened: " + run.err());
    }

    @Test
    void sizesMustBeWholeTokens() {
        for (String size : new String[] {"830x480", "0x0", "832", "832x480x3", "-16x32"}) {
            Run run = run("motion", "--size", size, "--device", "cpu", "--out", dir.resolve("out").toString());
            assertEquals(2, run.exitCode(), size);
            assertTrue(run.err().contains("--size") && run.err().contains(size), run.err());
        }
        Run tooSmall = run("motion", "--size", "32x32", "--device", "cpu", "--out", dir.resolve("out").toString());
        assertEquals(2, tooSmall.exitCode());
        assertTrue(tooSmall.err().contains("--tile"), tooSmall.err());
    }

    @Test
    void helpSaysWhatTheNumbersAverageOver() {
        Run run = run("motion", "--help");
        assertEquals(0, run.exitCode());
        assertTrue(run.out().contains("mean_dx, mean_dy: the mean over all pairs and all used cells"), run.out());
    }

    /** What the command computes for {@code clip}, sampled at the default frame step, at default AMF settings. */
    private static MotionStatistics statistics(SyntheticClip clip) {
        SampledFrames input = SampledFrames.synthetic(clip, 4);
        List<PairMotion> motions = new ArrayList<>();
        AmfParams params = AmfParams.defaults(1).withTemperature(PatchDescriptors.TEMPERATURE);
        try (Backend backend = Backends.open(Device.CPU)) {
            for (int p = 0; p + 1 < input.frames().size(); p++) {
                motions.add(PairMotion.measure(backend, params, input.frames().get(p).patches(),
                        input.frames().get(p + 1).patches()));
            }
        }
        return MotionStatistics.of(input, motions, 4);
    }

    private static void writeGreyVideo(Path file, int frames) throws IOException {
        float[] grey = new float[3 * 64 * 48];
        Arrays.fill(grey, 0.5f);
        try (VideoWriter writer = VideoWriter.open(file, 64, 48, 10)) {
            for (int t = 0; t < frames; t++) {
                writer.write(new RgbFrame(64, 48, grey).toImage());
            }
        }
    }

    private static List<String> list(Path folder) throws IOException {
        try (Stream<Path> files = Files.list(folder)) {
            return files.map(f -> f.getFileName().toString()).sorted().toList();
        }
    }
}
