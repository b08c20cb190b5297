package org.fastvmt.bench;

import java.util.SplittableRandom;

import org.fastvmt.backend.Backend;
import org.fastvmt.model.wan.WanDiT;
import org.fastvmt.model.wan.WanWeights;
import org.fastvmt.pipeline.GuidanceMode;
import org.fastvmt.pipeline.MotionTransfer;
import org.fastvmt.pipeline.PhaseTimings;
import org.fastvmt.pipeline.TransferListener;
import org.fastvmt.pipeline.TransferSettings;
import org.fastvmt.tensor.DType;
import org.fastvmt.tensor.Tensor;

/**
 * The guidance benchmark: G guided steps of the motion-transfer pipeline in one mode on a random
 * DiT (F32 weights) and random reference latents and prompt embeddings (N(0, 1), seeded), all
 * uploaded once. A run is {@link MotionTransfer#run} with every one of its G steps guided (the
 * schedule has G steps, so its sigmas differ from a 50-step run, but the work of a step does not
 * depend on them) and returns the pipeline's own phase timings: reference AMF, fresh guidance,
 * reused iterations (together "the guidance", what the modes change) and denoising (two CFG
 * forwards per step, the same in every mode).
 */
public final class GuidanceWorkload implements AutoCloseable {

    private final GuidanceBenchShape shape;
    private final long seed;
    private final WanWeights weights;
    private final WanDiT dit;
    private final Tensor latents;
    private final Tensor prompt;
    private final Tensor negative;
    private final Tensor empty;

    private GuidanceWorkload(Backend backend, GuidanceBenchShape shape, long seed, Tensor[] owned) {
        this.shape = shape;
        this.seed = seed;
        SplittableRandom random = new SplittableRandom(seed);
        long textDim = shape.config().textDim();
        owned[0] = this.latents = gaussian(backend, random, shape.latentShape());
        owned[1] = this.prompt = gaussian(backend, random, shape.textTokens(), textDim);
        owned[2] = this.negative = gaussian(backend, random, shape.textTokens(), textDim);
        owned[3] = this.empty = gaussian(backend, random, 1, textDim);
        this.weights = WanWeights.random(shape.config(), backend, random.nextLong(), DType.F32);
        this.dit = new WanDiT(weights);
    }

    /** Generates the model and the inputs on {@code backend}. */
    public static GuidanceWorkload create(Backend backend, GuidanceBenchShape shape, long seed) {
        Tensor[] owned = new Tensor[4];
        try {
            return new GuidanceWorkload(backend, shape, seed, owned);
        } catch (RuntimeException | OutOfMemoryError e) {
            for (Tensor tensor : owned) {
                if (tensor != null) {
                    tensor.close();
                }
            }
            throw e;
        }
    }

    private static Tensor gaussian(Backend backend, SplittableRandom random, long... dims) {
        long count = 1;
        for (long dim : dims) {
            count = Math.multiplyExact(count, dim);
        }
        float[] values = new float[Math.toIntExact(count)];
        for (int i = 0; i < values.length; i++) {
            values[i] = (float) random.nextGaussian();
        }
        return Tensor.of(backend, values, dims);
    }

    public GuidanceBenchShape shape() {
        return shape;
    }

    /** The settings of a run: the method's defaults for {@code mode}, with G steps all guided and N iterations. */
    public TransferSettings settings(GuidanceMode mode, int guidedSteps, int iterations) {
        if (guidedSteps < 1) {
            throw new IllegalArgumentException("guided steps must be >= 1, got " + guidedSteps);
        }
        if (iterations < 1) {
            throw new IllegalArgumentException("iterations must be >= 1, got " + iterations);
        }
        return TransferSettings.defaults(mode, shape.config()).withSteps(guidedSteps).withGuidedSteps(guidedSteps)
                .withIterations(iterations).withAmfBlock(shape.amfBlock()).withSeed(seed);
    }

    /** Runs G guided steps in {@code mode} and returns the pipeline's phase timings. */
    public PhaseTimings run(GuidanceMode mode, int guidedSteps, int iterations) {
        MotionTransfer transfer = new MotionTransfer(dit, settings(mode, guidedSteps, iterations));
        try (MotionTransfer.Result result = transfer.run(latents, prompt, negative, empty, new TransferListener() { }, () -> false)) {
            dit.backend().synchronize();
            return result.timings();
        }
    }

    /** Milliseconds of the guidance of a run: reference AMF, fresh guidance and reused iterations. */
    public static double guidanceMs(PhaseTimings timings) {
        return timings.ms("reference_amf") + timings.ms("fresh_guidance") + timings.ms("reused_iterations");
    }

    @Override
    public void close() {
        weights.close();
        latents.close();
        prompt.close();
        negative.close();
        empty.close();
    }
}
