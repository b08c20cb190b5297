package org.fastvmt.pipeline;

import java.util.Arrays;
import java.util.concurrent.CancellationException;
import java.util.function.BooleanSupplier;

import org.fastvmt.backend.Backend;
import org.fastvmt.guidance.LatentOptimizer;
import org.fastvmt.guidance.StepSkippingPolicy;
import org.fastvmt.model.wan.AttentionFeatures;
import org.fastvmt.model.wan.TokenGrid;
import org.fastvmt.model.wan.WanConditioning;
import org.fastvmt.model.wan.WanConfig;
import org.fastvmt.model.wan.WanDiT;
import org.fastvmt.motion.AmfParams;
import org.fastvmt.nativeabi.FastVmtLibrary;
import org.fastvmt.sampling.FlowMatchScheduler;
import org.fastvmt.tensor.DType;
import org.fastvmt.tensor.Tensor;

/**
 * Motion transfer on a Wan2.1 DiT: sampling from the reference latents with the latents guided,
 * during the first denoising steps, until the motion (AMF) read from the DiT's attention matches
 * the reference's. fastvmt, ditflow and none run this one loop ({@link GuidanceMode}):
 * <pre>
 *   latents = addNoise(reference, ε₀, step 0)
 *   for step s = 0 .. steps − 1, at timestep t_s:
 *     if s &lt; guidedSteps (and mode ≠ none):
 *       Δ_ref = AMF(Q, K of block k for addNoise(reference, ε_{s+1}, s), empty prompt, t_s)
 *       AdamW state reset; for iteration i = 0 .. N − 1, lr = learningRate.at(i):
 *         fresh (i % interval == 0):  Q, K of block k for latents, prompt, t_s  (truncated forward)
 *                                     loss = motion loss(Δ_ref, AMF(Q, K)); dQ, dK; backward
 *                                     through blocks k .. 0 → g; AdamW step with g, keep g
 *         reused:                      AdamW step with the kept g (no DiT, no AMF)
 *     v = v_neg + cfg · (v_pos − v_neg)     two full forwards (one when cfg = 1)
 *     latents = scheduler.step(latents, v, s)
 * </pre>
 * Both guidance forwards stop at the AMF block ({@link WanDiT#attentionFeatures} for the
 * reference, without checkpoints; {@link WanDiT#differentiableFeatures} for the latents): nothing
 * after block k runs during guidance.
 *
 * <p>Semantics chosen where the method leaves room:
 * <ul>
 * <li><b>Empty prompt.</b> The reference AMF is read with the empty prompt's conditioning, the
 * generated AMF with the prompt's. Until the text encoder lands the caller may pass no empty-prompt
 * embeddings; one zero row [1, textDim] then stands in for them (after the model's zero padding
 * that is a text of all-zero rows; the real empty prompt, umT5's encoding of "", is not zero). A
 * null negative prompt means the empty prompt.</li>
 * <li><b>ditflow's loss</b> is the AMF matching (window) loss over all frame pairs without the
 * tracking term, which is defined on the windows of the windowed AMF; its gradient is fresh every
 * iteration whatever the interval setting says.</li>
 * <li><b>Noise.</b> Every ε is drawn on the host from the seed, one independent stream per use
 * (start latents; the reference noised anew at every guided step, stream 1 + s), so a seed gives
 * the same noise on every backend and in every mode, and runs on the CPU are bitwise
 * reproducible.</li>
 * <li><b>Optimiser.</b> Fresh AdamW state (moments, step count, kept gradient) at every denoising
 * step, carried across the fresh and reused iterations of a step, as in the official loop.</li>
 * <li><b>Losses reported</b> ({@link TransferListener#guidanceIteration}, {@link
 * Result#firstStepLosses}) are those of the latents before each fresh iteration's step; reused
 * iterations compute none and report NaN.</li>
 * </ul>
 *
 * <p>An instance keeps no state between runs; the model's weights stay the caller's. A run uses the
 * model's backend from the calling thread.
 */
public final class MotionTransfer {

    private final WanDiT dit;
    private final TransferSettings settings;
    private final FlowMatchScheduler scheduler;
    private final Backend backend;

    public MotionTransfer(WanDiT dit, TransferSettings settings) {
        if (dit == null) {
            throw new IllegalArgumentException("dit must not be null");
        }
        if (settings == null) {
            throw new IllegalArgumentException("settings must not be null");
        }
        WanConfig config = dit.config();
        if (settings.amfBlock() >= config.layers()) {
            throw new IllegalArgumentException("settings.amfBlock must be in [0, " + config.layers() + ") for the "
                    + config.name() + " model (" + config.layers() + " blocks), got " + settings.amfBlock());
        }
        if (config.dim() % settings.amf().heads() != 0) {
            throw new IllegalArgumentException("settings.amf.heads (" + settings.amf().heads()
                    + ") must divide the model width " + config.dim());
        }
        this.dit = dit;
        this.settings = settings;
        this.scheduler = new FlowMatchScheduler(settings.steps(), settings.shift(), settings.strength());
        this.backend = dit.backend();
    }

    public WanDiT dit() {
        return dit;
    }

    public TransferSettings settings() {
        return settings;
    }

    public FlowMatchScheduler scheduler() {
        return scheduler;
    }

    /**
     * Generates latents that follow the prompt and move like the reference.
     *
     * @param referenceLatents the reference video's latents [inDim, F, H, W] F32, F, H, W multiples of
     *                         the patch
     * @param promptEmbeds     the prompt's text embeddings [n, textDim], 1 ≤ n ≤ textLength
     * @param negativeEmbeds   the negative prompt's, or null for the empty prompt's
     * @param emptyEmbeds      the empty prompt's (the reference AMF is read with them), or null for
     *                         one zero row (a stand-in until the text encoder lands)
     * @param listener         progress, or null
     * @param cancelled        polled before every step and every guidance iteration, or null
     * @return the generated latents [outDim, F, H, W] (the caller closes the result), the timings and
     *         the losses of the first guided step
     * @throws IllegalArgumentException    if an input does not fit the model (before any compute)
     * @throws CancellationException       if {@code cancelled} returned true; everything the run
     *                                     allocated is freed
     */
    public Result run(Tensor referenceLatents, Tensor promptEmbeds, Tensor negativeEmbeds, Tensor emptyEmbeds,
            TransferListener listener, BooleanSupplier cancelled) {
        return run(referenceLatents, promptEmbeds, negativeEmbeds, emptyEmbeds, listener, cancelled, null);
    }

    /** What a run produced. Closing it frees the latents. */
    public record Result(Tensor latents, PhaseTimings timings, double[] firstStepLosses) implements AutoCloseable {

        /**
         * @param latents         the generated latents [outDim, F, H, W], owned by this result
         * @param timings         time and count of every phase
         * @param firstStepLosses the motion loss at each guidance iteration of the first guided step
         *                        (NaN where the iteration reused the kept gradient); empty when no
         *                        step was guided
         */
        public Result {
            if (latents == null || timings == null || firstStepLosses == null) {
                throw new IllegalArgumentException("latents, timings and firstStepLosses must not be null");
            }
            firstStepLosses = firstStepLosses.clone();
        }

        @Override
        public double[] firstStepLosses() {
            return firstStepLosses.clone();
        }

        @Override
        public void close() {
            latents.close();
        }

        @Override
        public String toString() {
            return "Result[" + latents + ", " + timings + ", first step losses "
                    + Arrays.toString(firstStepLosses) + "]";
        }
    }

    /** Sees the latents inside a run (tests check the optimiser's steps through it). */
    interface Probe {
        /** Guidance of {@code step} starts from {@code latents} (after the reference AMF). */
        default void guidanceStarting(int step, Tensor latents) {
        }

        /** Iteration {@code iteration} of {@code step} moved {@code latents} with {@code optimizer}. */
        default void iterationDone(int step, int iteration, Tensor latents, LatentOptimizer optimizer) {
        }
    }

    Result run(Tensor referenceLatents, Tensor promptEmbeds, Tensor negativeEmbeds, Tensor emptyEmbeds,
            TransferListener listener, BooleanSupplier cancelled, Probe probe) {
        TokenGrid grid = checkInputs(referenceLatents, promptEmbeds, negativeEmbeds, emptyEmbeds);
        TransferListener progress = listener == null ? TransferListener.NONE : listener;
        BooleanSupplier stop = cancelled == null ? () -> false : cancelled;
        long runStart = System.nanoTime();
        PhaseTimings timings = new PhaseTimings();
        int guided = settings.guidedStepCount();
        double[] firstStepLosses = new double[guided > 0 ? settings.iterations() : 0];
        TransferNoise noise = new TransferNoise(settings.seed(), referenceLatents.shape());
        Tensor zeroText = null;
        Tensor latents = null;
        LatentOptimizer optimizer = null;
        try {
            checkCancelled(stop);
            if (emptyEmbeds == null) {
                zeroText = Tensor.zeros(backend, DType.F32, 1, dit.config().textDim());
            }
            Tensor emptyText = emptyEmbeds != null ? emptyEmbeds : zeroText;
            Tensor negativeText = negativeEmbeds != null ? negativeEmbeds : emptyText;
            try (Tensor startNoise = noise.start(backend)) {
                latents = scheduler.addNoise(referenceLatents, startNoise, 0);
            }
            MotionGuidance guidance = guided > 0 ? new MotionGuidance(backend, settings, grid.frames()) : null;
            if (guidance != null) {
                optimizer = new LatentOptimizer(latents, settings.adamw());
            }
            for (int step = 0; step < settings.steps(); step++) {
                checkCancelled(stop);
                double timestep = scheduler.timestep(step);
                progress.stepStarted(step, settings.steps(), timestep);
                try (Conditionings conditions = new Conditionings(promptEmbeds, negativeText, emptyText,
                        (float) timestep)) {
                    conditions.prompt(); // shared by guidance and denoising, so charged to neither phase
                    if (step < guided) {
                        guide(step, latents, referenceLatents, noise, conditions, guidance, optimizer, timings,
                                progress, stop, probe, step == 0 ? firstStepLosses : null);
                    }
                    checkCancelled(stop);
                    denoise(step, latents, conditions, timings);
                }
                progress.stepFinished(step, settings.steps());
            }
            timings.add(PhaseTimings.TOTAL, System.nanoTime() - runStart);
            Result result = new Result(latents, timings, firstStepLosses);
            latents = null;
            return result;
        } finally {
            closeQuietly(optimizer);
            closeQuietly(latents);
            closeQuietly(zeroText);
        }
    }

    /** One guided step: the reference AMF, then the AdamW iterations on {@code latents}. */
    private void guide(int step, Tensor latents, Tensor reference, TransferNoise noise, Conditionings conditions,
            MotionGuidance guidance, LatentOptimizer optimizer, PhaseTimings timings, TransferListener progress,
            BooleanSupplier stop, Probe probe, double[] losses) {
        int block = settings.amfBlock();
        long start = System.nanoTime();
        MotionGuidance.Reference motion;
        try (Tensor epsilon = noise.reference(backend, step);
                Tensor noisy = scheduler.addNoise(reference, epsilon, step);
                AttentionFeatures features = dit.attentionFeatures(noisy, conditions.empty(), block)) {
            motion = guidance.reference(features.q(), features.k());
        }
        backend.synchronize();
        timings.add(PhaseTimings.REFERENCE_AMF, System.nanoTime() - start);
        try (motion) {
            optimizer.reset();
            if (probe != null) {
                probe.guidanceStarting(step, latents);
            }
            StepSkippingPolicy policy = settings.gradientPolicy();
            int iterations = settings.iterations();
            for (int iteration = 0; iteration < iterations; iteration++) {
                checkCancelled(stop);
                float lr = settings.learningRate().at(iteration);
                boolean fresh = policy.freshGradient(iteration);
                double loss = Double.NaN;
                start = System.nanoTime();
                if (fresh) {
                    try (AttentionFeatures features = dit.differentiableFeatures(latents, conditions.prompt(), block);
                            MotionGuidance.Gradient gradient = guidance.gradient(features.q(), features.k(), motion);
                            Tensor dLatents = features.backward(gradient.dq(), gradient.dk())) {
                        loss = gradient.loss();
                        optimizer.stepFresh(dLatents, lr);
                    }
                } else {
                    optimizer.stepReused(lr);
                }
                backend.synchronize();
                timings.add(fresh ? PhaseTimings.FRESH_GUIDANCE : PhaseTimings.REUSED_ITERATIONS,
                        System.nanoTime() - start);
                if (losses != null) {
                    losses[iteration] = loss;
                }
                if (probe != null) {
                    probe.iterationDone(step, iteration, latents, optimizer);
                }
                progress.guidanceIteration(step, iteration, iterations, fresh, loss);
            }
        }
    }

    /** The denoising step: classifier-free guidance of two full forwards, then the Euler step. */
    private void denoise(int step, Tensor latents, Conditionings conditions, PhaseTimings timings) {
        long start = System.nanoTime();
        try (Tensor velocity = dit.forward(latents, conditions.prompt())) {
            double cfg = settings.cfgScale();
            if (cfg == 1) {
                scheduler.step(latents, velocity, step);
            } else {
                try (Tensor negative = dit.forward(latents, conditions.negative())) {
                    // v = v_neg + cfg · (v_pos − v_neg), in place: v_pos −= v_neg; v_neg += cfg · v_pos.
                    addScaled(negative, -1f, velocity);
                    addScaled(velocity, (float) cfg, negative);
                    scheduler.step(latents, negative, step);
                }
            }
        }
        backend.synchronize();
        timings.add(PhaseTimings.DENOISING, System.nanoTime() - start);
    }

    /** y += alpha · x, same shape. */
    private void addScaled(Tensor x, float alpha, Tensor y) {
        FastVmtLibrary library = backend.library();
        library.check(library.h().fvmt_add_scaled(x.segment(), alpha, y.segment(), y.elementCount(),
                backend.stream()));
    }

    /**
     * The conditionings of one timestep, each computed when first asked for: the prompt's, the
     * negative prompt's and the empty prompt's (one object when the negative text is the empty text).
     */
    private final class Conditionings implements AutoCloseable {
        private final Tensor promptText;
        private final Tensor negativeText;
        private final Tensor emptyText;
        private final float timestep;
        private WanConditioning prompt;
        private WanConditioning negative;
        private WanConditioning empty;

        Conditionings(Tensor promptText, Tensor negativeText, Tensor emptyText, float timestep) {
            this.promptText = promptText;
            this.negativeText = negativeText;
            this.emptyText = emptyText;
            this.timestep = timestep;
        }

        WanConditioning prompt() {
            if (prompt == null) {
                prompt = dit.condition(promptText, timestep);
            }
            return prompt;
        }

        WanConditioning negative() {
            if (negativeText == emptyText) {
                return empty();
            }
            if (negative == null) {
                negative = dit.condition(negativeText, timestep);
            }
            return negative;
        }

        WanConditioning empty() {
            if (empty == null) {
                empty = dit.condition(emptyText, timestep);
            }
            return empty;
        }

        @Override
        public void close() {
            closeQuietly(prompt);
            closeQuietly(negative);
            closeQuietly(empty);
        }
    }

    // ------------------------------------------------------------------ validation

    /** Checks every input against the model and the settings; returns the token grid. */
    private TokenGrid checkInputs(Tensor reference, Tensor prompt, Tensor negative, Tensor empty) {
        WanConfig config = dit.config();
        if (reference == null) {
            throw new IllegalArgumentException("referenceLatents must not be null");
        }
        checkBackend(reference, "referenceLatents");
        if (reference.dtype() != DType.F32 || reference.rank() != 4) {
            throw new IllegalArgumentException("referenceLatents must be F32 [channels, frames, height, width], got "
                    + reference);
        }
        if (reference.dim(0) != config.inDim()) {
            throw new IllegalArgumentException("referenceLatents must have " + config.inDim() + " channels (the "
                    + config.name() + " model's input width), got " + Arrays.toString(reference.shape()));
        }
        if (config.inDim() != config.outDim()) {
            throw new IllegalArgumentException("the " + config.name() + " model predicts " + config.outDim()
                    + " channels from " + config.inDim() + "; sampling needs them equal");
        }
        long[] patch = {config.patchT(), config.patchH(), config.patchW()};
        String[] axes = {"frames", "height", "width"};
        for (int axis = 0; axis < 3; axis++) {
            long size = reference.dim(axis + 1);
            if (size < 1 || size % patch[axis] != 0 || size / patch[axis] > Integer.MAX_VALUE) {
                throw new IllegalArgumentException("referenceLatents " + axes[axis] + " (" + size + ", shape "
                        + Arrays.toString(reference.shape()) + ") must be a positive multiple of the patch size "
                        + patch[axis] + " (patch " + Arrays.toString(patch) + ")");
            }
        }
        TokenGrid grid = TokenGrid.of(config, reference.dim(1), reference.dim(2), reference.dim(3));
        checkText(prompt, "promptEmbeds", true);
        checkText(negative, "negativeEmbeds", false);
        checkText(empty, "emptyEmbeds", false);
        if (settings.guidedStepCount() > 0 && settings.mode() == GuidanceMode.FASTVMT) {
            AmfParams amf = settings.amf();
            if (amf.tileHeight() > grid.height() || amf.tileWidth() > grid.width()) {
                throw new IllegalArgumentException("settings.amf tile " + amf.tileHeight() + "×" + amf.tileWidth()
                        + " does not fit the token grid of referenceLatents (" + grid + ")");
            }
        }
        long bad = reference.nonFiniteCount();
        if (bad > 0) {
            throw new IllegalArgumentException("referenceLatents hold " + bad + " NaN or infinite value(s)");
        }
        return grid;
    }

    private void checkText(Tensor text, String name, boolean required) {
        WanConfig config = dit.config();
        if (text == null) {
            if (required) {
                throw new IllegalArgumentException(name + " must not be null");
            }
            return;
        }
        checkBackend(text, name);
        if (text.dtype() != DType.F32 || text.rank() != 2) {
            throw new IllegalArgumentException(name + " must be an F32 matrix [tokens, " + config.textDim()
                    + "], got " + text);
        }
        if (text.dim(1) != config.textDim()) {
            throw new IllegalArgumentException(name + " must be " + config.textDim() + " wide (the text encoder "
                    + "width of the " + config.name() + " model), got " + Arrays.toString(text.shape()));
        }
        if (text.dim(0) < 1 || text.dim(0) > config.textLength()) {
            throw new IllegalArgumentException(name + " must have 1 to " + config.textLength()
                    + " rows (the model's text length), got " + text.dim(0));
        }
        long bad = text.nonFiniteCount();
        if (bad > 0) {
            throw new IllegalArgumentException(name + " hold " + bad + " NaN or infinite value(s)");
        }
    }

    private void checkBackend(Tensor tensor, String name) {
        if (tensor.backend() != backend) {
            throw new IllegalArgumentException(name + " live on " + tensor.backend().name() + ", the model on "
                    + backend.name());
        }
    }

    private static void checkCancelled(BooleanSupplier stop) {
        if (stop.getAsBoolean()) {
            throw new CancellationException("motion transfer cancelled");
        }
    }

    private static void closeQuietly(AutoCloseable resource) {
        if (resource == null) {
            return;
        }
        try {
            resource.close();
        } catch (Exception ignored) {
            // Freeing after a failure must not hide the failure; tensors do not throw on close.
        }
    }
}
