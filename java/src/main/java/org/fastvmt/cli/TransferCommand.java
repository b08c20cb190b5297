package org.fastvmt.cli;

import java.io.IOException;
import java.io.PrintWriter;
import java.lang.reflect.RecordComponent;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.concurrent.CancellationException;

import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonNull;
import com.google.gson.JsonObject;
import com.google.gson.JsonPrimitive;

import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import org.fastvmt.backend.Backend;
import org.fastvmt.io.AtomicFiles;
import org.fastvmt.io.safetensors.SafetensorsWriter;
import org.fastvmt.model.wan.WanCheckpoint;
import org.fastvmt.model.wan.WanConfig;
import org.fastvmt.model.wan.WanDiT;
import org.fastvmt.model.wan.WanWeights;
import org.fastvmt.pipeline.GuidanceMode;
import org.fastvmt.pipeline.MotionTransfer;
import org.fastvmt.pipeline.PhaseTimings;
import org.fastvmt.pipeline.TransferListener;
import org.fastvmt.pipeline.TransferSettings;
import org.fastvmt.tensor.Tensor;

/** {@code fastvmt transfer}: motion transfer, video in and video out, or on latents. */
@Command(name = "transfer", mixinStandardHelpOptions = true, sortOptions = false,
        description = {
            "Video form: fastvmt transfer --model DIR --reference VIDEO --prompt TEXT --out OUT.mp4|.gif: the "
                    + "reference is read and scaled to --width x --height (--frames frames), the prompts are "
                    + "encoded by the folder's umT5 text encoder, the reference by its Wan VAE; the DiT generates "
                    + "latents that follow the prompt and move like the reference, and the VAE decodes them "
                    + "into the output video at the reference's frame rate. The components are loaded one at "
                    + "a time and freed when done (text encoder, VAE, DiT, VAE). Prompts longer than the text "
                    + "length (512 tokens) are truncated with a warning.",
            "Latents form: --reference-latents, --prompt-embeds [--negative-embeds] [--empty-embeds] "
                    + "(below); the two forms cannot be mixed.",
            "",
            "Generate latents for a prompt that move like the reference latents: FastVMT motion transfer on a "
                    + "Wan2.1 text-to-video DiT (flow matching with classifier-free guidance; during the first "
                    + "--guided-steps denoising steps the latents are optimised with AdamW until the attention "
                    + "motion flow (AMF) of block --amf-block matches the reference's).",
            "",
            "Inputs are .safetensors files: a file's only tensor, or, when it holds several, the tensor named "
                    + "latents (--reference-latents), prompt_embeds (--prompt-embeds), negative_embeds "
                    + "(--negative-embeds) or empty_embeds (--empty-embeds), so one file may hold them all. "
                    + "F32, F16 and BF16 are read (as F32); a leading batch dimension of 1 is dropped. The "
                    + "reference latents are [in_dim, F, H, W] (Wan2.1: [16, F, H, W], H and W even); "
                    + "embeddings are [tokens, text_dim] with 1 to text_len tokens (umT5 output: [<=512, 4096]).",
            "The output holds one F32 tensor 'latents' [out_dim, F, H, W], written atomically (a temporary "
                    + "file renamed at the end), with the settings in its metadata.",
            "",
            "Modes: fastvmt (sliding-window AMF over the frame pairs j in [i, i+4), loss 5 * window loss + "
                    + "tracking loss, a fresh gradient every --interval iterations and the kept one in between), "
                    + "ditflow (full AMF over all frame pairs, window loss, a fresh gradient every iteration), none "
                    + "(no guidance: plain sampling from the noised reference).",
            "Without --negative-embeds the empty prompt's embeddings are the negative prompt. Without "
                    + "--empty-embeds the empty prompt is one zero row (a stand-in until the text encoder lands).",
            "",
            "Everything is checked before any work (files, shapes against the model, the output folders). "
                    + "Ctrl-C stops after the current iteration and writes nothing. Exit codes: 0 success, "
                    + "1 failure or interrupted, 2 bad usage or input.",
        })
final class TransferCommand implements Callable<Integer> {

    @Option(names = "--model", required = true, paramLabel = "DIR",
            description = "Video form: a Wan2.1 T2V model folder (official or diffusers layout: DiT, VAE, text "
                    + "encoder, tokenizer). Latents form: the DiT checkpoint alone is enough (a folder of either "
                    + "layout, a diffusers pipeline folder, or its .safetensors file or index, with config.json).")
    private Path model;

    @Option(names = "--reference", paramLabel = "VIDEO",
            description = "Video form: the reference video (any file FFmpeg reads: mp4, webm, gif, y4m, ...). Its "
                    + "first --frames frames are scaled and centre-cropped to --width x --height.")
    private Path reference;

    @Option(names = "--prompt", paramLabel = "TEXT", description = "Video form: what the video shows.")
    private String prompt;

    @Option(names = "--negative-prompt", paramLabel = "TEXT",
            description = "Video form: what it should not show. Default: Wan2.1's sample_neg_prompt.")
    private String negativePrompt;

    @Option(names = "--width", paramLabel = "W", description = "Video form: width, a multiple of 16. Default: 832.")
    private Integer width;

    @Option(names = "--height", paramLabel = "H", description = "Video form: height, a multiple of 16. Default: 480.")
    private Integer height;

    @Option(names = "--frames", paramLabel = "N", description = "Video form: frames, 4k+1. Default: 81.")
    private Integer frames;

    @Option(names = "--side-by-side", description = "Video form: write reference | result, twice as wide.")
    private boolean sideBySide;

    @Option(names = "--reference-latents", paramLabel = "REF.safetensors",
            description = "Latents of the reference video [in_dim, F, H, W] (tensor 'latents' when the file holds several).")
    private Path referenceLatents;

    @Option(names = "--prompt-embeds", paramLabel = "P.safetensors",
            description = "Text embeddings of the prompt [tokens, text_dim] ('prompt_embeds').")
    private Path promptEmbeds;

    @Option(names = "--negative-embeds", paramLabel = "N.safetensors",
            description = "Text embeddings of the negative prompt ('negative_embeds'). Default: the empty prompt's.")
    private Path negativeEmbeds;

    @Option(names = "--empty-embeds", paramLabel = "E.safetensors",
            description = "Text embeddings of the empty prompt ('empty_embeds'), used for the reference motion. "
                    + "Default: one zero row.")
    private Path emptyEmbeds;

    @Option(names = "--out", required = true, paramLabel = "OUT",
            description = "Where to write the result (replaced if it exists): the video form writes OUT.mp4 "
                    + "(H.264) or OUT.gif, the latents form OUT.safetensors.")
    private Path out;

    @Option(names = "--mode", paramLabel = "fastvmt|ditflow|none", defaultValue = "fastvmt",
            description = "Guidance: fastvmt, ditflow or none. Default: ${DEFAULT-VALUE}.")
    private String mode;

    @Option(names = "--seed", paramLabel = "S",
            description = "Seed of the noise (the same seed gives the same output on the cpu device). Default: "
                    + TransferSettings.DEFAULT_SEED + ".")
    private Long seed;

    @Option(names = "--steps", paramLabel = "N", description = "Denoising steps. Default: 50.")
    private Integer steps;

    @Option(names = "--guided-steps", paramLabel = "G",
            description = "The first G steps are guided (at most --steps). Default: 10.")
    private Integer guidedSteps;

    @Option(names = "--iterations", paramLabel = "N",
            description = "AdamW iterations per guided step. Default: 10.")
    private Integer iterations;

    @Option(names = "--interval", paramLabel = "K",
            description = "fastvmt: a fresh gradient when iteration %% K == 0, the kept one otherwise. Default: 3.")
    private Integer interval;

    @Option(names = "--cfg-scale", paramLabel = "X", description = "Classifier-free guidance scale. Default: 5.8.")
    private Double cfgScale;

    @Option(names = "--shift", paramLabel = "S", description = "Flow-matching timestep shift. Default: 7.")
    private Double shift;

    @Option(names = "--strength", paramLabel = "X",
            description = "Denoising strength in (0, 1]: how far the reference is noised. Default: 0.75.")
    private Double strength;

    @Option(names = "--amf-block", paramLabel = "B",
            description = "The block whose self-attention gives the AMF. Default: 14 (or the last block of a "
                    + "shallower model).")
    private Integer amfBlock;

    @Mixin
    private DeviceOptions deviceOptions;

    @Option(names = "--timings", paramLabel = "T.json",
            description = "Also write the phase timings and the settings as JSON.")
    private Path timings;

    @Spec
    private CommandSpec spec;

    @Override
    public Integer call() throws IOException {
        List<String> videoOptions = new ArrayList<>();
        addIf(videoOptions, reference != null, "--reference");
        addIf(videoOptions, prompt != null, "--prompt");
        addIf(videoOptions, negativePrompt != null, "--negative-prompt");
        addIf(videoOptions, width != null, "--width");
        addIf(videoOptions, height != null, "--height");
        addIf(videoOptions, frames != null, "--frames");
        addIf(videoOptions, sideBySide, "--side-by-side");
        List<String> latentOptions = new ArrayList<>();
        addIf(latentOptions, referenceLatents != null, "--reference-latents");
        addIf(latentOptions, promptEmbeds != null, "--prompt-embeds");
        addIf(latentOptions, negativeEmbeds != null, "--negative-embeds");
        addIf(latentOptions, emptyEmbeds != null, "--empty-embeds");
        if (!videoOptions.isEmpty() && !latentOptions.isEmpty()) {
            throw new UserInputException("the video form (" + String.join(", ", videoOptions) + ") and the latents "
                    + "form (" + String.join(", ", latentOptions) + ") cannot be mixed: give either --reference VIDEO "
                    + "--prompt TEXT, or --reference-latents and --prompt-embeds");
        }
        if (videoOptions.isEmpty() && latentOptions.isEmpty()) {
            throw new UserInputException("nothing to transfer: give --reference VIDEO and --prompt TEXT (video in, "
                    + "video out), or --reference-latents and --prompt-embeds (latents in, latents out)");
        }
        if (!videoOptions.isEmpty()) {
            require(reference != null, "the video form needs --reference VIDEO");
            require(prompt != null, "the video form needs --prompt TEXT");
            return new VideoTransfer(this).run();
        }
        require(referenceLatents != null, "the latents form needs --reference-latents");
        require(promptEmbeds != null, "the latents form needs --prompt-embeds");
        return callLatents();
    }

    private static void addIf(List<String> list, boolean condition, String option) {
        if (condition) {
            list.add(option);
        }
    }

    // Accessors for VideoTransfer (same package).
    Path model() {
        return model;
    }

    Path reference() {
        return reference;
    }

    String prompt() {
        return prompt;
    }

    String negativePrompt() {
        return negativePrompt;
    }

    Integer width() {
        return width;
    }

    Integer height() {
        return height;
    }

    Integer frames() {
        return frames;
    }

    boolean sideBySide() {
        return sideBySide;
    }

    Path out() {
        return out;
    }

    Path timings() {
        return timings;
    }

    DeviceOptions deviceOptions() {
        return deviceOptions;
    }

    CommandSpec spec() {
        return spec;
    }

    private Integer callLatents() throws IOException {
        PrintWriter err = spec.commandLine().getErr();
        // 1. Everything is checked before any work: files, shapes, settings, output folders.
        WanConfig config = readModelConfig();
        TransferSettings settings = settings(config);
        InputTensor reference = InputTensor.inspect("--reference-latents", referenceLatents, "latents", 4);
        checkLatents(reference, config);
        InputTensor prompt = InputTensor.inspect("--prompt-embeds", promptEmbeds, "prompt_embeds", 2);
        checkEmbeddings(prompt, config);
        InputTensor negative = null;
        if (negativeEmbeds != null) {
            negative = InputTensor.inspect("--negative-embeds", negativeEmbeds, "negative_embeds", 2);
            checkEmbeddings(negative, config);
        }
        InputTensor empty = null;
        if (emptyEmbeds != null) {
            empty = InputTensor.inspect("--empty-embeds", emptyEmbeds, "empty_embeds", 2);
            checkEmbeddings(empty, config);
        }
        Path output = checkOutput("--out", out);
        Path timingsFile = timings == null ? null : checkOutput("--timings", timings);
        if (timingsFile != null && timingsFile.equals(output)) {
            throw new UserInputException("--timings and --out name the same file " + output);
        }

        // 2. Load, run, write; Ctrl-C stops between iterations and leaves nothing behind.
        try (CancelOnSignal cancel = CancelOnSignal.install("the transfer", false);
                Backend backend = deviceOptions.open(err)) {
            long loadStart = System.nanoTime();
            err.printf(Locale.ROOT, "fastvmt: loading the Wan2.1 %s model from %s ...%n", config.name(), model);
            err.flush();
            try (WanWeights weights = loadModel(config, backend);
                    Inputs inputs = new Inputs(backend, reference, prompt, negative, empty)) {
                double loadMs = (System.nanoTime() - loadStart) / 1e6;
                cancel.throwIfCancelled();
                MotionTransfer transfer = new MotionTransfer(new WanDiT(weights), settings);
                MotionTransfer.Result result;
                try (StepProgress progress = new StepProgress(settings, err)) {
                    result = transfer.run(inputs.reference, inputs.prompt, inputs.negative, inputs.empty, progress,
                            cancel::cancelled);
                }
                try (result) {
                    cancel.throwIfCancelled();
                    long writeStart = System.nanoTime();
                    SafetensorsWriter writer = new SafetensorsWriter()
                            .metadata("format", "pt")
                            .metadata("fastvmt_model", config.name())
                            .metadata("fastvmt_settings", compact(settingsJson(settings)))
                            .add("latents", result.latents());
                    writer.write(output);
                    cancel.written();
                    double writeMs = (System.nanoTime() - writeStart) / 1e6;
                    JsonObject report = report(result, settings, config, backend, reference, prompt, loadMs,
                            writeMs);
                    if (timingsFile != null) {
                        AtomicFiles.write(timingsFile, (new GsonBuilder().setPrettyPrinting().disableHtmlEscaping()
                                .create().toJson(report) + "\n").getBytes(StandardCharsets.UTF_8));
                    }
                    summary(result.timings(), settings, output, result.latents().shape(), timingsFile, loadMs);
                }
            } catch (CancellationException e) {
                throw new CancellationException("interrupted; no output was written");
            }
        }
        return 0;
    }

    // ---- checks ----

    private WanConfig readModelConfig() {
        if (!Files.exists(model)) {
            throw new UserInputException("--model " + model + ": no such file or folder");
        }
        try {
            WanCheckpoint.locate(model);
            return WanCheckpoint.readConfig(model);
        } catch (IOException e) {
            throw new UserInputException("--model " + model + ": " + e.getMessage(), e);
        }
    }

    private WanWeights loadModel(WanConfig config, Backend backend) {
        try {
            return WanCheckpoint.load(model, config, backend, null);
        } catch (IOException e) {
            throw new UserInputException("--model " + model + ": " + e.getMessage(), e);
        }
    }

    TransferSettings settings(WanConfig config) {
        GuidanceMode guidance;
        try {
            guidance = GuidanceMode.parse(mode);
        } catch (IllegalArgumentException e) {
            throw new UserInputException("--mode must be fastvmt, ditflow or none, got '" + mode + "'");
        }
        TransferSettings s = TransferSettings.defaults(guidance, config);
        if (seed != null) {
            s = s.withSeed(seed);
        }
        if (steps != null) {
            require(steps >= 1, "--steps must be >= 1, got " + steps);
            s = s.withSteps(steps);
        }
        if (guidedSteps != null) {
            require(guidedSteps >= 0 && guidedSteps <= s.steps(), "--guided-steps must be in [0, " + s.steps()
                    + "] (at most --steps), got " + guidedSteps);
            s = s.withGuidedSteps(guidedSteps);
        } else if (s.guidedSteps() > s.steps()) {
            s = s.withGuidedSteps(s.steps());
        }
        if (iterations != null) {
            require(iterations >= 1, "--iterations must be >= 1, got " + iterations);
            s = s.withIterations(iterations);
        }
        if (interval != null) {
            require(interval >= 1, "--interval must be >= 1, got " + interval);
            require(guidance != GuidanceMode.DITFLOW || interval == 1, "--interval " + interval + " does not apply "
                    + "to --mode ditflow, which computes a fresh gradient every iteration");
            s = s.withInterval(interval);
        }
        if (cfgScale != null) {
            require(cfgScale >= 0 && Double.isFinite(cfgScale), "--cfg-scale must be a finite number >= 0, got "
                    + cfgScale);
            s = s.withCfgScale(cfgScale);
        }
        if (shift != null) {
            require(shift > 0 && Double.isFinite(shift), "--shift must be > 0, got " + shift);
            s = s.withShift(shift);
        }
        if (strength != null) {
            require(strength > 0 && strength <= 1, "--strength must be in (0, 1], got " + strength);
            s = s.withStrength(strength);
        }
        if (amfBlock != null) {
            require(amfBlock >= 0 && amfBlock < config.layers(), "--amf-block must be in [0, " + (config.layers() - 1)
                    + "] (the model has " + config.layers() + " blocks), got " + amfBlock);
            s = s.withAmfBlock(amfBlock);
        }
        return s;
    }

    static void require(boolean condition, String message) {
        if (!condition) {
            throw new UserInputException(message);
        }
    }

    private static void checkLatents(InputTensor latents, WanConfig config) {
        if (latents.dim(0) != config.inDim()) {
            throw new UserInputException(latents.describe() + ": " + latents.dim(0) + " channels, the "
                    + config.name() + " model takes " + config.inDim() + " ([" + config.inDim() + ", F, H, W])");
        }
        int[] patch = {config.patchT(), config.patchH(), config.patchW()};
        String[] axes = {"frames F", "height H", "width W"};
        for (int a = 0; a < 3; a++) {
            long extent = latents.dim(a + 1);
            if (extent < 1 || extent % patch[a] != 0) {
                throw new UserInputException(latents.describe() + ": " + axes[a] + " = " + extent
                        + " is not a positive multiple of the model's patch size " + patch[a] + " (patch "
                        + Arrays.toString(patch) + ")");
            }
        }
    }

    private static void checkEmbeddings(InputTensor embeddings, WanConfig config) {
        if (embeddings.dim(1) != config.textDim()) {
            throw new UserInputException(embeddings.describe() + ": width " + embeddings.dim(1) + ", the "
                    + config.name() + " model takes text embeddings of width " + config.textDim());
        }
        if (embeddings.dim(0) < 1 || embeddings.dim(0) > config.textLength()) {
            throw new UserInputException(embeddings.describe() + ": " + embeddings.dim(0) + " tokens, the "
                    + config.name() + " model takes 1 to " + config.textLength());
        }
    }

    /** The absolute output path, after proving it can be written and that it overwrites no input. */
    private Path checkOutput(String option, Path file) {
        Path target = file.toAbsolutePath().normalize();
        for (Path input : new Path[] {referenceLatents, promptEmbeds, negativeEmbeds, emptyEmbeds}) {
            if (input != null && input.toAbsolutePath().normalize().equals(target)) {
                throw new UserInputException(option + " " + file + " is also an input file; write elsewhere");
            }
        }
        if (Files.isRegularFile(target) && !Files.isWritable(target)) {
            throw new UserInputException(option + " " + file + ": the file exists and cannot be replaced "
                    + "(permission denied)");
        }
        try {
            AtomicFiles.requireWritableFile(target);
        } catch (IOException e) {
            throw new UserInputException(option + " " + e.getMessage(), e);
        }
        return target;
    }

    // ---- inputs ----

    /** The input tensors on the backend, closed together. */
    private static final class Inputs implements AutoCloseable {
        private final List<Tensor> owned = new ArrayList<>();
        final Tensor reference;
        final Tensor prompt;
        final Tensor negative;
        final Tensor empty;

        Inputs(Backend backend, InputTensor reference, InputTensor prompt, InputTensor negative, InputTensor empty) {
            try {
                this.reference = load(backend, reference);
                this.prompt = load(backend, prompt);
                this.negative = load(backend, negative);
                this.empty = load(backend, empty);
            } catch (RuntimeException e) {
                close();
                throw e;
            }
        }

        private Tensor load(Backend backend, InputTensor input) {
            if (input == null) {
                return null;
            }
            Tensor tensor = input.load(backend);
            owned.add(tensor);
            return tensor;
        }

        @Override
        public void close() {
            owned.forEach(Tensor::close);
        }
    }

    // ---- progress ----

    /**
     * A bar over the denoising steps with the guidance iteration and its loss (on a terminal), or one
     * line per step (in a log).
     */
    static final class StepProgress implements TransferListener, AutoCloseable {
        private final Progress bar;
        private final PrintWriter err;
        private final long start = System.nanoTime();
        private double timestep;
        private double firstLoss = Double.NaN;
        private double lastLoss = Double.NaN;
        private int fresh;

        StepProgress(TransferSettings settings, PrintWriter err) {
            this.err = err;
            this.bar = Progress.start("transfer " + settings.mode().label(), settings.steps());
        }

        @Override
        public void stepStarted(int step, int steps, double timestep) {
            this.timestep = timestep;
            firstLoss = Double.NaN;
            lastLoss = Double.NaN;
            fresh = 0;
            bar.message(String.format(Locale.ROOT, "step %d/%d t=%.1f", step + 1, steps, timestep));
        }

        @Override
        public void guidanceIteration(int step, int iteration, int iterations, boolean freshGradient, double loss) {
            // A reused iteration computes no loss (NaN): the bar keeps the last one computed.
            if (!Double.isNaN(loss)) {
                if (Double.isNaN(firstLoss)) {
                    firstLoss = loss;
                }
                lastLoss = loss;
            }
            fresh += freshGradient ? 1 : 0;
            bar.message(String.format(Locale.ROOT, "step %d guidance %d/%d loss %.5g%s", step + 1, iteration + 1,
                    iterations, lastLoss, freshGradient ? "" : " (gradient reused)"));
        }

        @Override
        public void stepFinished(int step, int steps) {
            bar.stepTo(step + 1);
            if (!bar.visible()) {
                String guidance = Double.isNaN(firstLoss) ? "" : String.format(Locale.ROOT,
                        ", motion loss %.5g -> %.5g (%d fresh gradients)", firstLoss, lastLoss, fresh);
                err.printf(Locale.ROOT, "fastvmt: step %d/%d t=%.2f%s, %.1f s%n", step + 1, steps, timestep, guidance,
                        (System.nanoTime() - start) / 1e9);
                err.flush();
            }
        }

        @Override
        public void close() {
            bar.close();
        }
    }

    // ---- report ----

    /** The settings as JSON, generically from the record's components (nested records become objects). */
    static JsonObject settingsJson(Record settings) {
        JsonObject o = new JsonObject();
        for (RecordComponent component : settings.getClass().getRecordComponents()) {
            Object value;
            try {
                value = component.getAccessor().invoke(settings);
            } catch (ReflectiveOperationException e) {
                throw new IllegalStateException("cannot read setting " + component.getName(), e);
            }
            o.add(snake(component.getName()), json(value));
        }
        return o;
    }

    private static JsonElement json(Object value) {
        if (value instanceof Record r) {
            return settingsJson(r);
        }
        if (value instanceof Number n) {
            return new JsonPrimitive(n);
        }
        if (value instanceof Boolean b) {
            return new JsonPrimitive(b);
        }
        if (value instanceof GuidanceMode m) {
            return new JsonPrimitive(m.label());
        }
        if (value instanceof Enum<?> e) {
            return new JsonPrimitive(e.name().toLowerCase(Locale.ROOT));
        }
        if (value instanceof double[] doubles) {
            JsonArray array = new JsonArray();
            for (double d : doubles) {
                array.add(d);
            }
            return array;
        }
        return new JsonPrimitive(String.valueOf(value));
    }

    private static String snake(String camel) {
        return camel.replaceAll("([a-z0-9])([A-Z])", "$1_$2").toLowerCase(Locale.ROOT);
    }

    private static String compact(JsonObject o) {
        return new GsonBuilder().disableHtmlEscaping().create().toJson(o);
    }

    private static JsonObject report(MotionTransfer.Result result, TransferSettings settings, WanConfig config,
            Backend backend, InputTensor reference, InputTensor prompt, double loadMs, double writeMs) {
        JsonObject o = result.timings().toJson();
        o.addProperty("model_load_ms", Math.round(loadMs * 1000) / 1000.0);
        o.addProperty("output_write_ms", Math.round(writeMs * 1000) / 1000.0);
        o.addProperty("device", backend.name());
        o.addProperty("device_description", backend.description());
        o.addProperty("model", config.name());
        o.addProperty("mode", settings.mode().label());
        JsonArray shape = new JsonArray();
        for (long d : reference.shape()) {
            shape.add(d);
        }
        o.add("reference_latents_shape", shape);
        o.addProperty("prompt_tokens", prompt.dim(0));
        // The motion loss before each iteration of the first guided step; null for a reused iteration.
        JsonArray losses = new JsonArray();
        for (double loss : result.firstStepLosses()) {
            if (Double.isFinite(loss)) {
                losses.add(loss);
            } else {
                losses.add(JsonNull.INSTANCE);
            }
        }
        o.add("first_step_losses", losses);
        o.add("settings", settingsJson(settings));
        return o;
    }

    private void summary(PhaseTimings t, TransferSettings s, Path output, long[] shape, Path timingsFile, double loadMs) {
        PrintWriter o = spec.commandLine().getOut();
        o.printf(Locale.ROOT, "transfer: mode %s, %d steps (%d guided x %d iterations%s), seed %d%n", s.mode().label(),
                s.steps(), s.mode() == GuidanceMode.NONE ? 0 : s.guidedSteps(), s.iterations(),
                s.mode() == GuidanceMode.FASTVMT ? ", fresh gradient every " + s.interval() : "", s.seed());
        o.printf(Locale.ROOT, "%-18s %11s %7s %10s %7s%n", "phase", "ms", "count", "ms each", "share");
        double total = t.ms(PhaseTimings.TOTAL);
        for (String phase : new String[] {"reference_amf", "fresh_guidance", "reused_iterations", "denoising"}) {
            double ms = t.ms(phase);
            int count = t.count(phase);
            o.printf(Locale.ROOT, "%-18s %11.1f %7d %10s %6.1f%%%n", phase, ms, count,
                    count == 0 ? "-" : String.format(Locale.ROOT, "%.1f", ms / count), total > 0 ? 100 * ms / total : 0);
        }
        o.printf(Locale.ROOT, "%-18s %11.1f%n", "total", total);
        o.printf(Locale.ROOT, "(model load %.1f ms, not in the total)%n", loadMs);
        o.printf(Locale.ROOT, "wrote %s: latents %s F32%n", output, Arrays.toString(shape));
        if (timingsFile != null) {
            o.printf(Locale.ROOT, "wrote %s%n", timingsFile);
        }
        o.flush();
    }
}
