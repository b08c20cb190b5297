package org.fastvmt.cli;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.CancellationException;

import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonObject;

import org.fastvmt.backend.Backend;
import org.fastvmt.io.AtomicFiles;
import org.fastvmt.io.ClipShape;
import org.fastvmt.io.InvalidVideoException;
import org.fastvmt.io.ReferenceClip;
import org.fastvmt.io.VideoOutput;
import org.fastvmt.io.VideoTensor;
import org.fastvmt.model.ModelFolder;
import org.fastvmt.model.t5.UmT5Encoder;
import org.fastvmt.model.t5.UmT5Tokenizer;
import org.fastvmt.model.t5.UmT5Weights;
import org.fastvmt.model.vae.WanVae;
import org.fastvmt.model.vae.WanVaeWeights;
import org.fastvmt.model.wan.WanConfig;
import org.fastvmt.model.wan.WanDiT;
import org.fastvmt.model.wan.WanWeights;
import org.fastvmt.pipeline.MotionTransfer;
import org.fastvmt.pipeline.PhaseTimings;
import org.fastvmt.pipeline.TransferSettings;
import org.fastvmt.tensor.Tensor;

/**
 * The video form of {@code fastvmt transfer}: reference video and prompt in, video out, with a
 * whole model folder. Every input is checked before any weights load; the components then load
 * one at a time and are freed when done (text encoder: prompt, negative prompt, empty prompt;
 * VAE: encode the reference; DiT: the transfer; VAE: decode), so a 1.3B run holds at most one
 * of them at once.
 */
final class VideoTransfer {

    /**
     * Wan2.1's default negative prompt: {@code sample_neg_prompt} of Wan-Video/Wan2.1
     * wan/configs/shared_config.py, which generate.py uses when none is given.
     */
    static final String DEFAULT_NEGATIVE_PROMPT = "色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，"
            + "最差质量，低质量，JPEG压缩残留，丑陋的，残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，毁容的，形态畸形的肢体，"
            + "手指融合，静止不动的画面，杂乱的背景，三条腿，背景人很多，倒着走";

    private final TransferCommand command;
    private final PrintWriter err;

    VideoTransfer(TransferCommand command) {
        this.command = command;
        this.err = command.spec().commandLine().getErr();
    }

    int run() throws IOException {
        // 1. Everything is checked before any weights load: folder, settings, sizes, output, video.
        ModelFolder folder = openFolder(command.model());
        WanConfig config = folder.ditConfig();
        TransferSettings settings = command.settings(config);
        ClipShape shape = clipShape();
        Path output = checkOutput();
        Path timingsFile = null;
        if (command.timings() != null) {
            timingsFile = command.timings().toAbsolutePath().normalize();
            TransferCommand.require(!timingsFile.equals(output), "--timings and --out name the same file " + output);
            try {
                AtomicFiles.requireWritableFile(timingsFile);
            } catch (IOException e) {
                throw new UserInputException("--timings " + e.getMessage(), e);
            }
        }
        ReferenceClip clip = readReference(shape);
        String negative = command.negativePrompt() != null ? command.negativePrompt() : DEFAULT_NEGATIVE_PROMPT;

        long start = System.nanoTime();
        double[] phaseMs = new double[4];
        try (CancelOnSignal cancel = CancelOnSignal.install("the transfer", false);
                Backend backend = command.deviceOptions().open(err);
                Owned owned = new Owned()) {
            // 2. Text encoder: the prompt, the negative prompt and the empty prompt, then freed.
            long t0 = System.nanoTime();
            say("encoding the prompts (umT5 " + folder.textEncoderConfig().name() + ", " + folder.textEncoderFile()
                    + ")");
            Tensor promptEmbeds;
            Tensor negativeEmbeds;
            Tensor emptyEmbeds;
            try (UmT5Tokenizer tokenizer = folder.openTokenizer(this::warn);
                    UmT5Weights t5 = load(folder, "text encoder", () -> folder.loadTextEncoder(backend))) {
                UmT5Encoder encoder = new UmT5Encoder(t5, this::warn);
                promptEmbeds = owned.add(encoder.encode(tokenizer.encode(command.prompt())));
                cancel.throwIfCancelled();
                negativeEmbeds = owned.add(encoder.encode(tokenizer.encode(negative)));
                emptyEmbeds = owned.add(encoder.encode(tokenizer.encode("")));
            }
            phaseMs[0] = ms(t0);
            cancel.throwIfCancelled();

            // 3. VAE: the reference's latents, then freed.
            t0 = System.nanoTime();
            say("encoding the reference " + shape + " (Wan VAE " + folder.vaeConfig().name() + ")");
            Tensor referenceLatents;
            try (WanVaeWeights vaeWeights = load(folder, "VAE", () -> folder.loadVae(backend))) {
                referenceLatents = owned.add(encode(new WanVae(vaeWeights), clip.video(), backend));
            }
            phaseMs[1] = ms(t0);
            cancel.throwIfCancelled();

            // 4. DiT: the transfer, then freed.
            say("loading the Wan2.1 " + config.name() + " DiT from " + folder.ditFolder());
            MotionTransfer.Result result;
            try (WanWeights weights = load(folder, "DiT", () -> folder.loadDit(backend, null))) {
                MotionTransfer transfer = new MotionTransfer(new WanDiT(weights), settings);
                try (TransferCommand.StepProgress progress = new TransferCommand.StepProgress(settings, err)) {
                    result = transfer.run(referenceLatents, promptEmbeds, negativeEmbeds, emptyEmbeds, progress,
                            cancel::cancelled);
                }
            }
            owned.closeAll();
            PhaseTimings timings = result.timings();
            double[] losses = result.firstStepLosses();
            cancel.throwIfCancelled();

            // 5. VAE: decode, then write.
            t0 = System.nanoTime();
            say("decoding the result (Wan VAE " + folder.vaeConfig().name() + ")");
            VideoTensor generated;
            try (result; WanVaeWeights vaeWeights = load(folder, "VAE", () -> folder.loadVae(backend))) {
                generated = decode(new WanVae(vaeWeights), result.latents(), clip.sourceFps(), backend);
            }
            phaseMs[2] = ms(t0);
            cancel.throwIfCancelled();
            t0 = System.nanoTime();
            if (command.sideBySide()) {
                VideoOutput.writeSideBySide(output, clip.video(), generated, clip.sourceFps());
            } else {
                VideoOutput.write(output, generated, clip.sourceFps());
            }
            cancel.written();
            phaseMs[3] = ms(t0);
            double totalMs = ms(start);
            if (timingsFile != null) {
                JsonObject report = report(folder, settings, shape, timings, losses, phaseMs, totalMs,
                        backend);
                AtomicFiles.write(timingsFile, (new GsonBuilder().setPrettyPrinting().disableHtmlEscaping().create()
                        .toJson(report) + "\n").getBytes(StandardCharsets.UTF_8));
            }
            PrintWriter out = command.spec().commandLine().getOut();
            out.printf(Locale.ROOT, "transfer: mode %s, %d steps, seed %d; text %.1f ms, VAE encode %.1f ms, "
                    + "transfer %.1f ms, VAE decode %.1f ms, write %.1f ms, total %.1f ms (loads included)%n",
                    settings.mode().label(), settings.steps(), settings.seed(), phaseMs[0], phaseMs[1],
                    timings.ms(PhaseTimings.TOTAL), phaseMs[2], phaseMs[3], totalMs);
            out.printf(Locale.ROOT, "wrote %s: %dx%d, %d frames%s%n", output, command.sideBySide() ? 2 * shape.width()
                    : shape.width(), shape.height(), shape.frames(), command.sideBySide() ? " (reference | result)" : "");
            if (timingsFile != null) {
                out.printf(Locale.ROOT, "wrote %s%n", timingsFile);
            }
            out.flush();
        } catch (CancellationException e) {
            throw new CancellationException("interrupted; no output was written");
        }
        return 0;
    }

    // ---- checks ----

    private static ModelFolder openFolder(Path model) {
        try {
            return ModelFolder.open(model);
        } catch (java.nio.file.NoSuchFileException e) {
            throw new UserInputException("--model " + model + ": " + (e.getReason() == null ? "no such folder"
                    : e.getReason()), e);
        } catch (IOException e) {
            throw new UserInputException("--model " + model + ": " + e.getMessage(), e);
        }
    }

    private ClipShape clipShape() {
        int w = command.width() != null ? command.width() : ClipShape.DEFAULT.width();
        int h = command.height() != null ? command.height() : ClipShape.DEFAULT.height();
        int f = command.frames() != null ? command.frames() : ClipShape.DEFAULT.frames();
        // Each is checked on its own so that the message names the option.
        check("--width", () -> new ClipShape(w, ClipShape.SPATIAL_MULTIPLE, 1));
        check("--height", () -> new ClipShape(ClipShape.SPATIAL_MULTIPLE, h, 1));
        check("--frames", () -> new ClipShape(ClipShape.SPATIAL_MULTIPLE, ClipShape.SPATIAL_MULTIPLE, f));
        return new ClipShape(w, h, f);
    }

    private static void check(String option, Runnable validation) {
        try {
            validation.run();
        } catch (IllegalArgumentException e) {
            throw new UserInputException(option + ": " + e.getMessage(), e);
        }
    }

    private Path checkOutput() {
        Path file = command.out();
        Path target = file.toAbsolutePath().normalize();
        if (command.reference() != null && command.reference().toAbsolutePath().normalize().equals(target)) {
            throw new UserInputException("--out " + file + " is the reference video; write elsewhere");
        }
        if (Files.isRegularFile(target) && !Files.isWritable(target)) {
            throw new UserInputException("--out " + file + ": the file exists and cannot be replaced (permission "
                    + "denied)");
        }
        try {
            VideoOutput.checkWritable(target);
        } catch (IllegalArgumentException e) {
            throw new UserInputException("--out " + e.getMessage(), e);
        } catch (IOException e) {
            throw new UserInputException("--out " + e.getMessage(), e);
        }
        return target;
    }

    private ReferenceClip readReference(ClipShape shape) {
        Path file = command.reference();
        if (!Files.exists(file)) {
            throw new UserInputException("--reference " + file + ": no such file");
        }
        if (!Files.isRegularFile(file)) {
            throw new UserInputException("--reference " + file + ": not a file");
        }
        say("reading the reference " + file);
        try {
            return ReferenceClip.load(file, shape);
        } catch (InvalidVideoException e) {
            throw new UserInputException("--reference " + e.getMessage(), e);
        } catch (IOException e) {
            throw new UserInputException("--reference " + file + ": " + e.getMessage(), e);
        }
    }

    // ---- work ----

    private interface Loader<T> {
        T load() throws IOException;
    }

    /** A component's weights; a checkpoint that does not fit is a user error naming the file. */
    private static <T> T load(ModelFolder folder, String what, Loader<T> loader) {
        try {
            return loader.load();
        } catch (IOException | IllegalArgumentException e) {
            throw new UserInputException("--model " + folder.root() + ": the " + what + " cannot be loaded: "
                    + e.getMessage(), e);
        }
    }

    /** The latents of the clip; by overlapping tiles when it is larger than one tile (memory stays bounded). */
    private static Tensor encode(WanVae vae, VideoTensor video, Backend backend) {
        int factor = vae.config().spatialFactor();
        WanVae.Tiling tiling = WanVae.Tiling.DEFAULT;
        if (video.height() / factor <= tiling.height() && video.width() / factor <= tiling.width()) {
            return vae.encode(video);
        }
        try (Tensor t = video.toTensor(backend)) {
            return vae.encodeTiled(t, tiling);
        }
    }

    /** The video of the latents, clamped to [-1, 1]; by overlapping tiles when larger than one tile. */
    private static VideoTensor decode(WanVae vae, Tensor latents, double fps, Backend backend) {
        WanVae.Tiling tiling = WanVae.Tiling.DEFAULT;
        if (latents.dim(2) <= tiling.height() && latents.dim(3) <= tiling.width()) {
            return vae.decodeVideo(latents, fps);
        }
        try (Tensor video = vae.decodeTiled(latents, tiling)) {
            VideoTensor v = VideoTensor.fromTensor(video, fps);
            float[] data = v.data();
            for (int n = 0; n < data.length; n++) {
                data[n] = Math.max(-1f, Math.min(1f, data[n]));
            }
            return v;
        }
    }

    private JsonObject report(ModelFolder folder, TransferSettings settings, ClipShape shape, PhaseTimings timings,
            double[] losses, double[] phaseMs, double totalMs, Backend backend) {
        JsonObject o = new JsonObject();
        o.addProperty("device", backend.name());
        o.addProperty("model", folder.ditConfig().name());
        o.addProperty("model_layout", folder.layout().name().toLowerCase(Locale.ROOT));
        o.addProperty("mode", settings.mode().label());
        o.addProperty("size", shape.toString());
        JsonObject ms = new JsonObject();
        ms.addProperty("text_encoder", phaseMs[0]);
        ms.addProperty("vae_encode", phaseMs[1]);
        for (String phase : new String[] {"reference_amf", "fresh_guidance", "reused_iterations", "denoising",
            PhaseTimings.TOTAL}) {
            ms.addProperty("transfer_" + phase, timings.ms(phase));
        }
        ms.addProperty("vae_decode", phaseMs[2]);
        ms.addProperty("write", phaseMs[3]);
        ms.addProperty("total", totalMs);
        o.add("phases_ms", ms);
        JsonArray first = new JsonArray();
        for (double loss : losses) {
            if (Double.isFinite(loss)) {
                first.add(loss);
            } else {
                first.add(com.google.gson.JsonNull.INSTANCE);
            }
        }
        o.add("first_step_losses", first);
        o.add("settings", TransferCommand.settingsJson(settings));
        return o;
    }

    private void say(String message) {
        err.println("fastvmt: " + message + " ...");
        err.flush();
    }

    private void warn(String message) {
        err.println("fastvmt: warning: " + message);
        err.flush();
    }

    private static double ms(long since) {
        return (System.nanoTime() - since) / 1e6;
    }

    /** Tensors freed together (the embeddings and the reference latents). */
    private static final class Owned implements AutoCloseable {
        private final List<Tensor> tensors = new ArrayList<>();

        Tensor add(Tensor t) {
            tensors.add(t);
            return t;
        }

        void closeAll() {
            tensors.forEach(Tensor::close);
            tensors.clear();
        }

        @Override
        public void close() {
            closeAll();
        }
    }
}
