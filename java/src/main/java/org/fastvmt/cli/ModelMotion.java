package org.fastvmt.cli;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import org.fastvmt.backend.Backend;
import org.fastvmt.io.ClipShape;
import org.fastvmt.io.InvalidVideoException;
import org.fastvmt.io.ReferenceClip;
import org.fastvmt.io.RgbFrame;
import org.fastvmt.io.SyntheticClip;
import org.fastvmt.io.VideoReader;
import org.fastvmt.io.VideoTensor;
import org.fastvmt.model.ModelFolder;
import org.fastvmt.model.t5.UmT5Encoder;
import org.fastvmt.model.t5.UmT5Tokenizer;
import org.fastvmt.model.t5.UmT5Weights;
import org.fastvmt.model.vae.WanVae;
import org.fastvmt.model.vae.WanVaeWeights;
import org.fastvmt.model.wan.AttentionFeatures;
import org.fastvmt.model.wan.WanConditioning;
import org.fastvmt.model.wan.WanDiT;
import org.fastvmt.model.wan.WanWeights;
import org.fastvmt.motion.AmfParams;
import org.fastvmt.motion.AttentionMotionFlow;
import org.fastvmt.motion.FramePairs;
import org.fastvmt.motion.PatchDescriptors;
import org.fastvmt.motion.WindowedFlow;
import org.fastvmt.tensor.Tensor;

/**
 * {@code fastvmt motion [VIDEO] --model DIR}: the motion the Wan DiT itself sees, as FastVMT's
 * guidance reads it. The clip (4k + 1 frames at the model size) is encoded by the folder's VAE;
 * the DiT runs on the latent, conditioned on the empty prompt (as the pipeline reads the
 * reference motion), up to block k, whose self-attention Q and K give the windowed AMF between
 * consecutive latent frames in both directions. Latent frame i stands for video frame 4i (the
 * VAE's causal chunks), so the pairs are frames (0, 4), (4, 8), ...; a DiT token covers 16 x 16
 * model pixels (VAE stride 8, patch 2), the same cells as the descriptor-based reading.
 *
 * <p>Noise: by default none (timestep 0, the clean latent): the clearest picture of what the
 * attention tracks. {@code --timestep T} instead noises the latent as the flow-matching scheduler
 * does at T (x = (1 - T/1000) z + (T/1000) e, e seeded by --seed) and conditions the DiT on T,
 * which shows what the guidance sees at a given denoising step.
 */
final class ModelMotion {

    /** Wan2.1's clip length: the default number of frames read (fewer when the video is shorter). */
    static final int DEFAULT_MAX_FRAMES = 81;

    private ModelMotion() {
    }

    /** The clip at the model size and its sampled frames (every 4th: one per latent frame). */
    record Input(VideoTensor clip, SampledFrames frames) {
    }

    /** A video's first {@code frames} frames (default: the largest 4k + 1 up to 81 it has) at width x height. */
    static Input fromVideo(Path video, int width, int height, Integer frames) throws IOException {
        int count = frames != null ? frames : defaultFrames(video);
        ClipShape shape;
        try {
            shape = new ClipShape(width, height, count);
        } catch (IllegalArgumentException e) {
            throw new UserInputException("--frames: " + e.getMessage(), e);
        }
        ReferenceClip clip = ReferenceClip.load(video, shape);
        List<SampledFrames.Sample> samples = new ArrayList<>();
        for (int t = 0; t < count; t += ClipShape.TEMPORAL_STRIDE) {
            RgbFrame frame = clip.video().frame(t);
            samples.add(new SampledFrames.Sample(t, frame.toImage(), PatchDescriptors.of(frame.rgb(), width, height),
                    null));
        }
        return new Input(clip.video(), new SampledFrames(video.toString(), count, clip.sourceFps(),
                clip.sourceWidth(), clip.sourceHeight(), clip.crop(), samples, false));
    }

    /** The generated clip with known motion, {@code frames} (4k + 1) frames at width x height. */
    static Input synthetic(int width, int height, int frames, long seed) {
        SyntheticClip synthetic = SyntheticClip.moving(width, height, frames, seed);
        int rows = height / PatchDescriptors.CELL;
        int cols = width / PatchDescriptors.CELL;
        List<RgbFrame> all = new ArrayList<>();
        List<SampledFrames.Sample> samples = new ArrayList<>();
        for (int t = 0; t < frames; t++) {
            RgbFrame frame = synthetic.frame(t);
            all.add(frame);
            if (t % ClipShape.TEMPORAL_STRIDE == 0) {
                samples.add(new SampledFrames.Sample(t, frame.toImage(), PatchDescriptors.of(frame.rgb(), width,
                        height), synthetic.cellVelocities(t, rows, cols)));
            }
        }
        return new Input(VideoTensor.of(all, synthetic.fps()), new SampledFrames("synthetic clip", frames,
                synthetic.fps(), width, height, RgbFrame.cropFor(width, height, width, height), samples, true));
    }

    private static int defaultFrames(Path video) throws IOException {
        int available = 0;
        try (VideoReader reader = VideoReader.open(video)) {
            while (available < DEFAULT_MAX_FRAMES && reader.skip()) {
                available++;
            }
        }
        int frames = ClipShape.largestValidFrames(available);
        if (frames < 1 + ClipShape.TEMPORAL_STRIDE) {
            throw new InvalidVideoException(video, "it has " + available + " frame(s); reading motion with the "
                    + "model needs at least " + (1 + ClipShape.TEMPORAL_STRIDE) + " (two latent frames)");
        }
        return frames;
    }

    /**
     * The motion between consecutive latent frames of {@code input}, read from block {@code block}
     * of the folder's DiT; loads the text encoder, the VAE and the DiT one at a time.
     */
    static List<PairMotion> measure(ModelFolder folder, Input input, Backend backend, int block, AmfParams params,
            float timestep, long seed, PrintWriter err) throws IOException {
        Tensor empty;
        say(err, "encoding the empty prompt (umT5 " + folder.textEncoderConfig().name() + ")");
        try (UmT5Tokenizer tokenizer = folder.openTokenizer(m -> say(err, "warning: " + m));
                UmT5Weights t5 = folder.loadTextEncoder(backend)) {
            empty = new UmT5Encoder(t5).encode(tokenizer.encode(""));
        }
        try (empty) {
            Tensor latent;
            say(err, "encoding the clip (Wan VAE " + folder.vaeConfig().name() + ")");
            try (WanVaeWeights vae = folder.loadVae(backend)) {
                latent = new WanVae(vae).encode(input.clip());
            }
            try (latent) {
                if (timestep > 0) {
                    noise(latent, timestep / 1000f, seed);
                }
                say(err, "reading the attention of DiT block " + block);
                float[] delta;
                int frames = (int) latent.dim(1);
                try (WanWeights weights = folder.loadDit(backend, null)) {
                    WanDiT dit = new WanDiT(weights);
                    try (WanConditioning conditioning = dit.condition(empty, timestep);
                            AttentionFeatures features = dit.attentionFeatures(latent, conditioning, block);
                            WindowedFlow flow = new AttentionMotionFlow(backend).windowed(features.q(), features.k(),
                                    bothWays(frames), params)) {
                        delta = flow.delta().toFloatArray();
                    }
                }
                int rows = input.frames().frames().get(0).patches().rows();
                int cols = input.frames().frames().get(0).patches().cols();
                List<PairMotion> motions = new ArrayList<>();
                for (int i = 0; i + 1 < frames; i++) {
                    motions.add(PairMotion.fromDelta(delta, 2 * i, 2 * i + 1, rows, cols,
                            input.frames().frames().get(i).patches().contrast()));
                }
                return motions;
            }
        }
    }

    /** Pairs (i, i + 1) and (i + 1, i) for every i: 2i is the forward pair, 2i + 1 its backward. */
    static FramePairs bothWays(int frames) {
        int[] pairs = new int[4 * (frames - 1)];
        float[] weights = new float[2 * (frames - 1)];
        for (int i = 0; i + 1 < frames; i++) {
            pairs[4 * i] = i;
            pairs[4 * i + 1] = i + 1;
            pairs[4 * i + 2] = i + 1;
            pairs[4 * i + 3] = i;
            weights[2 * i] = 1f;
            weights[2 * i + 1] = 1f;
        }
        return FramePairs.of(frames, pairs, weights);
    }

    /** latent ← (1 − σ) latent + σ e, e ~ N(0, 1) from {@code seed}: the flow-matching noising at σ. */
    private static void noise(Tensor latent, float sigma, long seed) {
        float[] values = latent.toFloatArray();
        SplittableRandom random = new SplittableRandom(seed);
        for (int n = 0; n < values.length; n++) {
            values[n] = (1 - sigma) * values[n] + sigma * (float) random.nextGaussian();
        }
        try (Tensor noisy = Tensor.of(latent.backend(), values, latent.shape())) {
            latent.copyFrom(noisy);
        }
    }

    private static void say(PrintWriter err, String message) {
        err.println("fastvmt: " + message + " ...");
        err.flush();
    }
}
