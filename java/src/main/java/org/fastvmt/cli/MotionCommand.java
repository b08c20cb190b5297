package org.fastvmt.cli;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import javax.imageio.ImageIO;

import com.google.gson.Gson;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonNull;
import com.google.gson.JsonObject;
import com.google.gson.JsonPrimitive;

import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

import org.fastvmt.backend.Backend;
import org.fastvmt.io.AtomicFiles;
import org.fastvmt.io.FlowPicture;
import org.fastvmt.io.SyntheticClip;
import org.fastvmt.io.VideoWriter;
import org.fastvmt.motion.AmfParams;
import org.fastvmt.motion.PatchDescriptors;

/**
 * {@code fastvmt motion}: reads the motion of a video (or of a generated clip whose motion is
 * known) with the sliding-window AMF on patch descriptors, reports it, and draws it.
 */
@Command(name = "motion", mixinStandardHelpOptions = true, sortOptions = false,
        description = {
            "Read motion out of a video with FastVMT's sliding-window attention motion flow (AMF), "
                    + "using Q = K = patch descriptors of each 16x16-pixel token of the resized frames "
                    + "(no model needed). With --model DIR the motion is read from the Wan DiT's own "
                    + "attention instead (see --model).",
            "Without VIDEO, a generated clip of textured shapes moving with known velocities is used "
                    + "and the end-point error against that motion is reported.",
            "",
            "Frames 0, N, 2N, ... (N = --frame-step) are cropped to the aspect of --size, resized to it, "
                    + "and each consecutive pair is compared in both directions. A cell's reading is used "
                    + "when its patch is textured (RMS contrast >= 0.01) and the forward motion followed by "
                    + "the backward motion returns within half a token (flat, covered and out-of-frame "
                    + "content fail this).",
            "mean_dx, mean_dy: the mean over all pairs and all used cells (each used cell of each "
                    + "pair counts once) of the displacement, in pixels of the input video per input "
                    + "frame, x to the right and y downwards. cells_used: the share of cells used.",
            "epe (generated clip only): the mean over the same cells of the length of (estimated - "
                    + "true) motion, same unit; epe_all_cells: over every cell; epe_no_motion: what "
                    + "answering 0 everywhere would score on the used cells.",
            "Readings are softmax expectations over whole-token positions, so motion under about a "
                    + "quarter token per sampled pair (1 px of the model frame per frame at N = 4) is "
                    + "underestimated; a larger N helps slow scenes.",
        },
        footer = {"", "Writes DIR/flow_0000.png ... (one per pair: hue = direction, saturation = speed, "
                + "black arrows = displacement, grey = no reading), DIR/motion.mp4 (those pictures at input "
                + "fps / N) and DIR/motion.json (the --json object plus per-pair figures)."})
final class MotionCommand implements Callable<Integer> {

    /** Wan2.1's 480p frame size (DESIGN.md): 832x480 pixels, 52x30 tokens. */
    private static final String DEFAULT_SIZE = "832x480";
    /** The Wan VAE compresses time 4x, so one latent frame stands for 4 video frames. */
    private static final int DEFAULT_FRAME_STEP = 4;
    /** Colours saturate at the 95th percentile of speeds, so a few wild readings do not wash out the rest. */
    private static final double COLOUR_QUANTILE = 0.95;
    /** Speeds below one pixel per pair stay pale, so a still clip looks still. */
    private static final double COLOUR_FLOOR = 1.0;
    private static final Pattern SIZE = Pattern.compile("(\\d{1,5})x(\\d{1,5})");

    @Parameters(index = "0", arity = "0..1", paramLabel = "VIDEO",
            description = "Any video FFmpeg reads. Default: a generated clip with known motion.")
    private Path video;

    @Option(names = "--out", paramLabel = "DIR", defaultValue = "fastvmt-motion",
            description = "Folder for the pictures, motion.mp4 and motion.json; created if missing. "
                    + "Default: ${DEFAULT-VALUE}.")
    private Path out;

    @Option(names = "--size", paramLabel = "WxH", defaultValue = DEFAULT_SIZE,
            description = "Model frame size, both multiples of 16 (one token = 16x16 px). Default: ${DEFAULT-VALUE}.")
    private String size;

    @Option(names = "--frame-step", paramLabel = "N", defaultValue = "" + DEFAULT_FRAME_STEP,
            description = "Compare frames 0, N, 2N, ... pairwise. Default: ${DEFAULT-VALUE}.")
    private int frameStep;

    @Option(names = "--temperature", paramLabel = "T",
            description = "AMF temperature: scores are T * q.k / sqrt(C) for the unit descriptors of C = "
                    + PatchDescriptors.CHANNELS + " channels. Default: " + PatchDescriptors.TEMPERATURE_PER_ROOT_CHANNEL
                    + " * sqrt(C), tuned on the generated clip.")
    private Float temperature;

    @Option(names = "--window", paramLabel = "L", defaultValue = "" + AmfParams.DEFAULT_WINDOW,
            description = "Side of the search window in tokens, odd. Default: ${DEFAULT-VALUE}.")
    private int window;

    @Option(names = "--tile", paramLabel = "HxW",
            defaultValue = AmfParams.DEFAULT_TILE_HEIGHT + "x" + AmfParams.DEFAULT_TILE_WIDTH,
            description = "Query tile sharing one search window, in tokens. Default: ${DEFAULT-VALUE}.")
    private String tile;

    @Option(names = "--seed", defaultValue = "0",
            description = "Seed of the generated clip (without VIDEO). Default: ${DEFAULT-VALUE}.")
    private long seed;

    @Option(names = "--model", paramLabel = "DIR",
            description = "Read the motion from a Wan2.1 model's own attention instead of patch descriptors: "
                    + "the folder's VAE encodes the clip, its DiT (conditioned on the empty prompt) runs up to "
                    + "--amf-block, and that block's self-attention Q and K give the windowed AMF between "
                    + "consecutive latent frames (video frames 0, 4, 8, ...; --frame-step is then 4).")
    private Path model;

    @Option(names = "--frames", paramLabel = "N",
            description = "With --model: frames read, 4k+1 (at least 5). Default: the largest 4k+1 up to 81 "
                    + "the video has (41 for the generated clip).")
    private Integer frames;

    @Option(names = "--amf-block", paramLabel = "B",
            description = "With --model: the DiT block whose attention is read. Default: 14 (or the last block "
                    + "of a shallower model).")
    private Integer amfBlock;

    @Option(names = "--timestep", paramLabel = "T", defaultValue = "0",
            description = "With --model: 0 (default) reads the clean latent; T in (0, 1000] noises it as the "
                    + "flow-matching scheduler does at T (seeded by --seed) and conditions the DiT on T, which "
                    + "shows what the guidance sees at that step.")
    private float timestep;

    @Option(names = "--json", description = "Print the result as one JSON object on the last line of standard output.")
    private boolean json;

    @Mixin
    private DeviceOptions deviceOptions;

    @Spec
    private CommandSpec spec;

    @Override
    public Integer call() throws IOException {
        if (model != null) {
            return callModel();
        }
        if (frames != null || amfBlock != null || timestep != 0) {
            throw new UserInputException("--frames, --amf-block and --timestep apply only with --model");
        }
        int[] modelSize = parseSize();
        int[] tileSize = parseTile(modelSize);
        if (frameStep < 1) {
            throw new UserInputException("--frame-step must be >= 1, got " + frameStep);
        }
        if (window < 1 || window % 2 == 0) {
            throw new UserInputException("--window must be odd and >= 1, got " + window);
        }
        float tau = temperature == null ? PatchDescriptors.TEMPERATURE : temperature;
        if (!(Float.isFinite(tau) && tau > 0)) {
            throw new UserInputException("--temperature must be finite and > 0, got " + temperature);
        }
        AmfParams params = new AmfParams(1, tau, tileSize[0], tileSize[1], window);
        try {
            AtomicFiles.requireWritableFolder(out);
        } catch (IOException e) {
            throw new UserInputException("--out " + out + " cannot be used: " + e.getMessage(), e);
        }

        SampledFrames input = read(modelSize[0], modelSize[1]);
        PrintWriter err = spec.commandLine().getErr();
        List<PairMotion> motions = new ArrayList<>();
        try (Backend backend = deviceOptions.open(err);
                Progress bar = Progress.start("motion", input.frames().size() - 1)) {
            for (int p = 0; p + 1 < input.frames().size(); p++) {
                motions.add(PairMotion.measure(backend, params, input.frames().get(p).patches(),
                        input.frames().get(p + 1).patches()));
                bar.step();
            }
        }
        MotionStatistics statistics = MotionStatistics.of(input, motions, frameStep);
        JsonObject summary = summary(input, statistics, params, modelSize);
        writeOutputs(input, motions, statistics, summary);
        report(input, statistics, summary);
        return 0;
    }

    /** motion with --model: the DiT's own attention (see {@link ModelMotion}). */
    private Integer callModel() throws IOException {
        int[] modelSize = parseSize();
        int[] tileSize = parseTile(modelSize);
        if (frameStep != DEFAULT_FRAME_STEP) {
            throw new UserInputException("--frame-step is " + DEFAULT_FRAME_STEP + " with --model (one latent frame "
                    + "stands for 4 video frames), got " + frameStep);
        }
        if (window < 1 || window % 2 == 0) {
            throw new UserInputException("--window must be odd and >= 1, got " + window);
        }
        if (!(timestep >= 0 && timestep <= 1000)) {
            throw new UserInputException("--timestep must be in [0, 1000], got " + timestep);
        }
        org.fastvmt.model.ModelFolder folder;
        try {
            folder = org.fastvmt.model.ModelFolder.open(model);
        } catch (java.nio.file.NoSuchFileException e) {
            throw new UserInputException("--model " + model + ": " + (e.getReason() == null ? "no such folder"
                    : e.getReason()), e);
        } catch (IOException e) {
            throw new UserInputException("--model " + model + ": " + e.getMessage(), e);
        }
        org.fastvmt.model.wan.WanConfig config = folder.ditConfig();
        org.fastvmt.pipeline.TransferSettings defaults = org.fastvmt.pipeline.TransferSettings.defaults(
                org.fastvmt.pipeline.GuidanceMode.FASTVMT, config);
        int block = amfBlock != null ? amfBlock : defaults.amfBlock();
        if (block < 0 || block >= config.layers()) {
            throw new UserInputException("--amf-block must be in [0, " + (config.layers() - 1) + "] (the model has "
                    + config.layers() + " blocks), got " + block);
        }
        float tau = temperature == null ? defaults.amf().temperature() : temperature;
        if (!(Float.isFinite(tau) && tau > 0)) {
            throw new UserInputException("--temperature must be finite and > 0, got " + temperature);
        }
        AmfParams params = new AmfParams(defaults.amf().heads(), tau, tileSize[0], tileSize[1], window);
        try {
            AtomicFiles.requireWritableFolder(out);
        } catch (IOException e) {
            throw new UserInputException("--out " + out + " cannot be used: " + e.getMessage(), e);
        }
        ModelMotion.Input input;
        if (video == null) {
            int count = frames != null ? frames : SyntheticClip.DEFAULT_FRAMES;
            if (count < 5 || (count - 1) % 4 != 0) {
                throw new UserInputException("--frames must be 4k+1 and at least 5 with --model, got " + count);
            }
            input = ModelMotion.synthetic(modelSize[0], modelSize[1], count, seed);
        } else {
            if (frames != null && (frames < 5 || (frames - 1) % 4 != 0)) {
                throw new UserInputException("--frames must be 4k+1 and at least 5 with --model, got " + frames);
            }
            try {
                input = ModelMotion.fromVideo(video, modelSize[0], modelSize[1], frames);
            } catch (IOException e) {
                throw new UserInputException("VIDEO " + e.getMessage(), e);
            }
        }
        PrintWriter err = spec.commandLine().getErr();
        java.util.List<PairMotion> motions;
        try (Backend backend = deviceOptions.open(err)) {
            motions = ModelMotion.measure(folder, input, backend, block, params, timestep, seed, err);
        }
        SampledFrames sampled = input.frames();
        MotionStatistics statistics = MotionStatistics.of(sampled, motions, frameStep);
        JsonObject summary = summary(sampled, statistics, params, modelSize);
        summary.addProperty("model", config.name());
        summary.addProperty("model_layout", folder.layout().name().toLowerCase(Locale.ROOT));
        summary.addProperty("amf_block", block);
        summary.addProperty("timestep", timestep);
        writeOutputs(sampled, motions, statistics, summary);
        report(sampled, statistics, summary);
        return 0;
    }

    private SampledFrames read(int width, int height) {
        SampledFrames input;
        if (video == null) {
            input = SampledFrames.synthetic(SyntheticClip.moving(width, height, SyntheticClip.DEFAULT_FRAMES, seed),
                    frameStep);
        } else {
            try {
                input = SampledFrames.decode(video, width, height, frameStep);
            } catch (IOException e) {
                throw new UserInputException("VIDEO " + e.getMessage()
                        + "; expected a video file that FFmpeg can decode", e);
            }
        }
        if (input.frames().size() < 2) {
            throw new UserInputException((video == null ? "the generated clip" : "VIDEO " + video) + " has "
                    + input.framesRead() + " frame(s); reading motion with --frame-step " + frameStep
                    + " needs at least " + (frameStep + 1));
        }
        return input;
    }

    private int[] parseSize() {
        Matcher m = SIZE.matcher(size.strip());
        int width = m.matches() ? Integer.parseInt(m.group(1)) : 0;
        int height = m.matches() ? Integer.parseInt(m.group(2)) : 0;
        int cell = PatchDescriptors.CELL;
        if (width < cell || height < cell || width % cell != 0 || height % cell != 0) {
            throw new UserInputException("--size must be WIDTHxHEIGHT with both positive multiples of " + cell
                    + " (one token is " + cell + "x" + cell + " pixels), e.g. " + DEFAULT_SIZE + "; got '" + size + "'");
        }
        return new int[] {width, height};
    }

    private int[] parseTile(int[] modelSize) {
        Matcher m = SIZE.matcher(tile.strip());
        int rows = m.matches() ? Integer.parseInt(m.group(1)) : 0;
        int cols = m.matches() ? Integer.parseInt(m.group(2)) : 0;
        if (rows < 1 || cols < 1) {
            throw new UserInputException("--tile must be ROWSxCOLUMNS of tokens, both >= 1; got '" + tile + "'");
        }
        int tokenRows = modelSize[1] / PatchDescriptors.CELL;
        int tokenCols = modelSize[0] / PatchDescriptors.CELL;
        if (rows > tokenRows || cols > tokenCols) {
            throw new UserInputException("--tile " + tile + " is larger than the " + tokenCols + "x" + tokenRows
                    + " tokens (columns x rows) of --size " + size);
        }
        return new int[] {rows, cols};
    }

    private JsonObject summary(SampledFrames input, MotionStatistics statistics, AmfParams params, int[] modelSize) {
        JsonObject o = new JsonObject();
        o.addProperty("source", input.synthetic() ? "synthetic" : input.source());
        o.addProperty("frames", input.framesRead());
        o.addProperty("fps", input.fps());
        o.addProperty("input_size", input.inputWidth() + "x" + input.inputHeight());
        o.addProperty("size", modelSize[0] + "x" + modelSize[1]);
        o.addProperty("frame_step", frameStep);
        o.addProperty("pairs", statistics.pairs().size());
        o.addProperty("unit", "input pixels per frame");
        o.addProperty("mean_dx", statistics.meanDx());
        o.addProperty("mean_dy", statistics.meanDy());
        o.addProperty("cells_used", statistics.cellsUsed());
        if (input.synthetic()) {
            o.add("epe", number(statistics.epe()));
            o.addProperty("epe_all_cells", statistics.epeAllCells());
            o.add("epe_no_motion", number(statistics.epeNoMotion()));
            o.addProperty("seed", seed);
        }
        o.addProperty("temperature", params.temperature());
        o.addProperty("window", params.window());
        o.addProperty("tile", params.tileHeight() + "x" + params.tileWidth());
        return o;
    }

    private void writeOutputs(SampledFrames input, List<PairMotion> motions, MotionStatistics statistics,
            JsonObject summary) throws IOException {
        float[][] flows = motions.stream().map(PairMotion::usedFlow).toArray(float[][]::new);
        double colourScale = FlowPicture.robustScale(flows, COLOUR_QUANTILE, COLOUR_FLOOR);
        BufferedImage first = input.frames().get(0).picture();
        // Containers without a frame rate report 0: play those pictures at one per second.
        double fps = input.fps() > 0 ? Math.max(1.0, input.fps() / frameStep) : 1.0;
        AtomicFiles.write(out.resolve("motion.mp4"), file -> {
            try (VideoWriter writer = VideoWriter.open(file, first.getWidth(), first.getHeight(), fps);
                    Progress bar = Progress.start("draw", motions.size())) {
                for (int p = 0; p < motions.size(); p++) {
                    PairMotion motion = motions.get(p);
                    BufferedImage picture = FlowPicture.render(input.frames().get(p).picture(), motion.rows(),
                            motion.cols(), flows[p], colourScale);
                    AtomicFiles.write(out.resolve(String.format(Locale.ROOT, "flow_%04d.png", p)), png -> {
                        if (!ImageIO.write(picture, "png", png.toFile())) {
                            throw new IOException("no PNG writer is installed");
                        }
                    });
                    writer.write(picture);
                    bar.step();
                }
            }
        });
        JsonObject full = summary.deepCopy();
        JsonArray perPair = new JsonArray();
        for (MotionStatistics.Pair pair : statistics.pairs()) {
            JsonObject o = new JsonObject();
            o.addProperty("from", pair.from());
            o.addProperty("to", pair.to());
            o.addProperty("mean_dx", pair.meanDx());
            o.addProperty("mean_dy", pair.meanDy());
            o.addProperty("cells_used", pair.cellsUsed());
            if (input.synthetic()) {
                o.add("epe", number(pair.epe()));
            }
            perPair.add(o);
        }
        full.add("per_pair", perPair);
        AtomicFiles.write(out.resolve("motion.json"),
                (new Gson().toJson(full) + "\n").getBytes(StandardCharsets.UTF_8));
    }

    /** JSON has no NaN: a figure over no cells is null. */
    private static JsonElement number(double value) {
        return Double.isNaN(value) ? JsonNull.INSTANCE : new JsonPrimitive(value);
    }

    private void report(SampledFrames input, MotionStatistics statistics, JsonObject summary) {
        PrintWriter stdout = spec.commandLine().getOut();
        stdout.printf(Locale.ROOT, "source      %s%n", input.synthetic()
                ? "generated clip, seed " + seed + " (motion known)" : input.source());
        stdout.printf(Locale.ROOT, "frames      %d read (%dx%d, %.2f fps), %d pairs at --frame-step %d%n",
                input.framesRead(), input.inputWidth(), input.inputHeight(), input.fps(), statistics.pairs().size(),
                frameStep);
        stdout.printf(Locale.ROOT, "motion      mean dx %+.3f, mean dy %+.3f px/frame over %.1f%% of cells%n",
                statistics.meanDx(), statistics.meanDy(), 100 * statistics.cellsUsed());
        if (input.synthetic()) {
            stdout.printf(Locale.ROOT, "error       epe %.3f px/frame (all cells %.3f; answering 0: %.3f)%n",
                    statistics.epe(), statistics.epeAllCells(), statistics.epeNoMotion());
        }
        stdout.printf(Locale.ROOT, "written     %s (flow_0000.png .. flow_%04d.png, motion.mp4, motion.json)%n",
                out, statistics.pairs().size() - 1);
        if (json) {
            stdout.println(new Gson().toJson(summary));
        }
        stdout.flush();
    }
}
