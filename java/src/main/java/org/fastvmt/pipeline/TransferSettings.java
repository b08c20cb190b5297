package org.fastvmt.pipeline;

import org.fastvmt.guidance.AdamWConfig;
import org.fastvmt.guidance.LearningRateSchedule;
import org.fastvmt.guidance.StepSkippingPolicy;
import org.fastvmt.model.wan.WanConfig;
import org.fastvmt.model.wan.WanDiT;
import org.fastvmt.motion.AmfParams;
import org.fastvmt.sampling.FlowMatchScheduler;

/**
 * Every number of a motion transfer, with the method's defaults in one place
 * ({@link #defaults}; DESIGN.md, "Numbers to know").
 *
 * @param mode               fastvmt, ditflow or none
 * @param steps              denoising steps
 * @param shift              the scheduler's timestep shift
 * @param strength           denoising strength: the first σ (1 = start from pure noise)
 * @param cfgScale           classifier-free guidance scale (1 skips the negative forward)
 * @param guidedSteps        how many of the first denoising steps are guided (more than
 *                           {@code steps} means every step)
 * @param iterations         AdamW iterations per guided step
 * @param learningRate       the learning rate of each iteration (a schedule over {@code iterations})
 * @param interval           fastvmt: a fresh gradient when iteration % interval == 0, the kept one
 *                           otherwise (ditflow computes a fresh gradient every iteration whatever
 *                           this says; none ignores it)
 * @param amfBlock           the block whose self-attention Q, K the AMF is read from
 * @param windowLossWeight   weight of the corresponding-window loss
 * @param trackingLossWeight weight of the tracking loss (fastvmt only: it needs the AMF's windows)
 * @param sf                 fastvmt's frame span: pairs (i, j) with j ∈ [i, i + sf)
 * @param amf                AMF parameters (heads, τ, tile, window l; ditflow uses heads and τ)
 * @param adamw              AdamW hyper-parameters other than the learning rate
 * @param seed               seeds every noise of the run
 */
public record TransferSettings(GuidanceMode mode, int steps, double shift, double strength, double cfgScale,
        int guidedSteps, int iterations, LearningRateSchedule learningRate, int interval, int amfBlock,
        float windowLossWeight, float trackingLossWeight, int sf, AmfParams amf, AdamWConfig adamw, long seed) {

    /** Denoising steps guided by default (the official pipeline's first 10 steps). */
    public static final int DEFAULT_GUIDED_STEPS = 10;
    /** Classifier-free guidance scale (DESIGN.md, "Numbers to know"). */
    public static final double DEFAULT_CFG_SCALE = 5.8;
    /** 5 · window loss (official guidance_step). */
    public static final float DEFAULT_WINDOW_LOSS_WEIGHT = 5f;
    /** 1 · tracking loss (official guidance_step). */
    public static final float DEFAULT_TRACKING_LOSS_WEIGHT = 1f;
    /** sf = 4: each frame is compared with itself and the next three. */
    public static final int DEFAULT_SF = 4;
    /** The seed when none is given. */
    public static final long DEFAULT_SEED = 42;

    public TransferSettings {
        if (mode == null) {
            throw new IllegalArgumentException("mode must not be null");
        }
        if (steps < 1) {
            throw new IllegalArgumentException("steps must be >= 1, got " + steps);
        }
        if (!(shift > 0 && Double.isFinite(shift))) {
            throw new IllegalArgumentException("shift must be finite and > 0, got " + shift);
        }
        if (!(strength > 0 && strength <= 1)) {
            throw new IllegalArgumentException("strength must be in (0, 1], got " + strength);
        }
        if (!(cfgScale >= 0 && Double.isFinite(cfgScale))) {
            throw new IllegalArgumentException("cfgScale must be finite and >= 0, got " + cfgScale);
        }
        if (guidedSteps < 0) {
            throw new IllegalArgumentException("guidedSteps must be >= 0, got " + guidedSteps);
        }
        if (iterations < 1) {
            throw new IllegalArgumentException("iterations must be >= 1, got " + iterations);
        }
        if (learningRate == null) {
            throw new IllegalArgumentException("learningRate must not be null");
        }
        if (learningRate.iterations() != iterations) {
            throw new IllegalArgumentException("learningRate is a schedule over " + learningRate.iterations()
                    + " iterations but iterations is " + iterations + " (withIterations rescales the schedule)");
        }
        if (interval < 1) {
            throw new IllegalArgumentException("interval must be >= 1, got " + interval);
        }
        if (amfBlock < 0) {
            throw new IllegalArgumentException("amfBlock must be >= 0, got " + amfBlock);
        }
        if (!(windowLossWeight >= 0 && Float.isFinite(windowLossWeight))) {
            throw new IllegalArgumentException("windowLossWeight must be finite and >= 0, got " + windowLossWeight);
        }
        if (!(trackingLossWeight >= 0 && Float.isFinite(trackingLossWeight))) {
            throw new IllegalArgumentException("trackingLossWeight must be finite and >= 0, got "
                    + trackingLossWeight);
        }
        if (sf < 1) {
            throw new IllegalArgumentException("sf must be >= 1, got " + sf);
        }
        if (amf == null) {
            throw new IllegalArgumentException("amf must not be null");
        }
        if (adamw == null) {
            throw new IllegalArgumentException("adamw must not be null");
        }
    }

    /**
     * The method's defaults for {@code mode} on a model of {@code config}: 50 steps, shift 7,
     * strength 0.75, CFG 5.8, 10 guided steps × 10 AdamW iterations, lr 0.003 → 0.002, interval 3
     * (ditflow: 1), AMF from block 14 (the last block of a shallower model), window loss weight 5,
     * tracking loss weight 1, sf 4, AMF l 21, tile 3×4, τ 1, PyTorch's AdamW defaults, seed 42.
     */
    public static TransferSettings defaults(GuidanceMode mode, WanConfig config) {
        if (mode == null) {
            throw new IllegalArgumentException("mode must not be null");
        }
        if (config == null) {
            throw new IllegalArgumentException("config must not be null");
        }
        int interval = mode == GuidanceMode.DITFLOW ? 1 : StepSkippingPolicy.DEFAULT_INTERVAL;
        return new TransferSettings(mode, FlowMatchScheduler.DEFAULT_STEPS, FlowMatchScheduler.DEFAULT_SHIFT,
                FlowMatchScheduler.DEFAULT_STRENGTH, DEFAULT_CFG_SCALE, DEFAULT_GUIDED_STEPS,
                LearningRateSchedule.OFFICIAL.iterations(), LearningRateSchedule.OFFICIAL, interval,
                Math.min(WanDiT.DEFAULT_AMF_BLOCK, config.layers() - 1), DEFAULT_WINDOW_LOSS_WEIGHT,
                DEFAULT_TRACKING_LOSS_WEIGHT, DEFAULT_SF, AmfParams.defaults(config.heads()),
                AdamWConfig.PYTORCH_DEFAULTS, DEFAULT_SEED);
    }

    /** The gradient policy the mode runs: ditflow fresh every iteration, otherwise every {@link #interval}. */
    public StepSkippingPolicy gradientPolicy() {
        return mode == GuidanceMode.DITFLOW ? StepSkippingPolicy.everyIteration() : new StepSkippingPolicy(interval);
    }

    /** How many of the {@link #steps} denoising steps are guided (0 in mode none). */
    public int guidedStepCount() {
        return mode.guides() ? Math.min(guidedSteps, steps) : 0;
    }

    /** The same settings in another mode; every other field (the interval too) is kept. */
    public TransferSettings withMode(GuidanceMode newMode) {
        return new TransferSettings(newMode, steps, shift, strength, cfgScale, guidedSteps, iterations,
                learningRate, interval, amfBlock, windowLossWeight, trackingLossWeight, sf, amf, adamw, seed);
    }

    public TransferSettings withSteps(int newSteps) {
        return new TransferSettings(mode, newSteps, shift, strength, cfgScale, guidedSteps, iterations,
                learningRate, interval, amfBlock, windowLossWeight, trackingLossWeight, sf, amf, adamw, seed);
    }

    public TransferSettings withShift(double newShift) {
        return new TransferSettings(mode, steps, newShift, strength, cfgScale, guidedSteps, iterations,
                learningRate, interval, amfBlock, windowLossWeight, trackingLossWeight, sf, amf, adamw, seed);
    }

    public TransferSettings withStrength(double newStrength) {
        return new TransferSettings(mode, steps, shift, newStrength, cfgScale, guidedSteps, iterations,
                learningRate, interval, amfBlock, windowLossWeight, trackingLossWeight, sf, amf, adamw, seed);
    }

    public TransferSettings withCfgScale(double newCfgScale) {
        return new TransferSettings(mode, steps, shift, strength, newCfgScale, guidedSteps, iterations,
                learningRate, interval, amfBlock, windowLossWeight, trackingLossWeight, sf, amf, adamw, seed);
    }

    public TransferSettings withGuidedSteps(int newGuidedSteps) {
        return new TransferSettings(mode, steps, shift, strength, cfgScale, newGuidedSteps, iterations,
                learningRate, interval, amfBlock, windowLossWeight, trackingLossWeight, sf, amf, adamw, seed);
    }

    /** Another iteration count; the learning-rate schedule keeps its end points over the new count. */
    public TransferSettings withIterations(int newIterations) {
        if (newIterations < 1) {
            throw new IllegalArgumentException("iterations must be >= 1, got " + newIterations);
        }
        LearningRateSchedule schedule = new LearningRateSchedule(learningRate.initial(), learningRate.last(),
                newIterations);
        return new TransferSettings(mode, steps, shift, strength, cfgScale, guidedSteps, newIterations, schedule,
                interval, amfBlock, windowLossWeight, trackingLossWeight, sf, amf, adamw, seed);
    }

    /** A schedule over {@link #iterations} iterations. */
    public TransferSettings withLearningRate(LearningRateSchedule newLearningRate) {
        return new TransferSettings(mode, steps, shift, strength, cfgScale, guidedSteps, iterations,
                newLearningRate, interval, amfBlock, windowLossWeight, trackingLossWeight, sf, amf, adamw, seed);
    }

    /** The learning rate from {@code initial} towards {@code last} over {@link #iterations}. */
    public TransferSettings withLearningRate(float initial, float last) {
        return withLearningRate(new LearningRateSchedule(initial, last, iterations));
    }

    public TransferSettings withInterval(int newInterval) {
        return new TransferSettings(mode, steps, shift, strength, cfgScale, guidedSteps, iterations,
                learningRate, newInterval, amfBlock, windowLossWeight, trackingLossWeight, sf, amf, adamw, seed);
    }

    public TransferSettings withAmfBlock(int newAmfBlock) {
        return new TransferSettings(mode, steps, shift, strength, cfgScale, guidedSteps, iterations,
                learningRate, interval, newAmfBlock, windowLossWeight, trackingLossWeight, sf, amf, adamw, seed);
    }

    public TransferSettings withWindowLossWeight(float newWeight) {
        return new TransferSettings(mode, steps, shift, strength, cfgScale, guidedSteps, iterations,
                learningRate, interval, amfBlock, newWeight, trackingLossWeight, sf, amf, adamw, seed);
    }

    public TransferSettings withTrackingLossWeight(float newWeight) {
        return new TransferSettings(mode, steps, shift, strength, cfgScale, guidedSteps, iterations,
                learningRate, interval, amfBlock, windowLossWeight, newWeight, sf, amf, adamw, seed);
    }

    public TransferSettings withSf(int newSf) {
        return new TransferSettings(mode, steps, shift, strength, cfgScale, guidedSteps, iterations,
                learningRate, interval, amfBlock, windowLossWeight, trackingLossWeight, newSf, amf, adamw, seed);
    }

    public TransferSettings withAmf(AmfParams newAmf) {
        return new TransferSettings(mode, steps, shift, strength, cfgScale, guidedSteps, iterations,
                learningRate, interval, amfBlock, windowLossWeight, trackingLossWeight, sf, newAmf, adamw, seed);
    }

    public TransferSettings withAdamw(AdamWConfig newAdamw) {
        return new TransferSettings(mode, steps, shift, strength, cfgScale, guidedSteps, iterations,
                learningRate, interval, amfBlock, windowLossWeight, trackingLossWeight, sf, amf, newAdamw, seed);
    }

    public TransferSettings withSeed(long newSeed) {
        return new TransferSettings(mode, steps, shift, strength, cfgScale, guidedSteps, iterations,
                learningRate, interval, amfBlock, windowLossWeight, trackingLossWeight, sf, amf, adamw, newSeed);
    }
}
