package org.fastvmt.guidance;

import java.lang.foreign.MemorySegment;

import org.fastvmt.backend.Backend;
import org.fastvmt.nativeabi.FastVmtLibrary;
import org.fastvmt.tensor.DType;
import org.fastvmt.tensor.Tensor;

/**
 * AdamW on the latents being guided, with FastVMT's gradient reuse: a step applies either a
 * fresh gradient (also kept in the {@link GradientReuseBuffer}) or the kept one, in one fused
 * native pass (fvmt_adamw_step). The optimiser state persists across fresh and reused steps,
 * as it does in the official loop.
 */
public final class LatentOptimizer implements AutoCloseable {

    private final Tensor latents;
    private final AdamWConfig config;
    private final Backend backend;
    private final Tensor expAvg;
    private final Tensor expAvgSq;
    private final GradientReuseBuffer reuseBuffer;
    private int steps;

    /** Optimises {@code latents} (F32) in place. */
    public LatentOptimizer(Tensor latents, AdamWConfig config) {
        if (latents.dtype() != DType.F32) {
            throw new IllegalArgumentException("latents must be F32, got " + latents.dtype());
        }
        this.latents = latents;
        this.config = config;
        this.backend = latents.backend();
        this.expAvg = Tensor.zeros(backend, DType.F32, latents.shape());
        this.expAvgSq = Tensor.zeros(backend, DType.F32, latents.shape());
        this.reuseBuffer = new GradientReuseBuffer(backend, latents.shape());
    }

    /** Applies {@code gradient} (F32, the latents' shape) and keeps it for reuse. */
    public void stepFresh(Tensor gradient, float lr) {
        if (gradient.backend() != backend) {
            throw new IllegalArgumentException("gradient is on " + gradient.backend().name() + ", latents on "
                    + backend.name());
        }
        if (gradient.dtype() != DType.F32 || gradient.elementCount() != latents.elementCount()) {
            throw new IllegalArgumentException("gradient must be F32 with " + latents.elementCount()
                    + " elements like the latents, got " + gradient);
        }
        long bad = gradient.nonFiniteCount();
        if (bad > 0) {
            throw new IllegalArgumentException("gradient holds " + bad + " NaN or infinite value(s)");
        }
        step(gradient.segment(), lr);
        reuseBuffer.recordFresh();
    }

    /** Applies the last fresh gradient again. */
    public void stepReused(float lr) {
        reuseBuffer.recordReuse();
        step(MemorySegment.NULL, lr);
    }

    private void step(MemorySegment freshGradient, float lr) {
        if (!(lr >= 0 && Float.isFinite(lr))) {
            throw new IllegalArgumentException("lr must be finite and >= 0, got " + lr);
        }
        FastVmtLibrary library = backend.library();
        library.check(library.h().fvmt_adamw_step(latents.segment(), freshGradient,
                reuseBuffer.gradient().segment(), expAvg.segment(), expAvgSq.segment(), latents.elementCount(),
                lr, config.beta1(), config.beta2(), config.eps(), config.weightDecay(), steps + 1,
                backend.stream()));
        steps++;
    }

    /** Starts afresh (a new denoising step): zero moments, step count 0, no kept gradient. */
    public void reset() {
        expAvg.zero();
        expAvgSq.zero();
        reuseBuffer.clear();
        steps = 0;
    }

    /** Steps taken since construction or {@link #reset()}. */
    public int stepCount() {
        return steps;
    }

    public GradientReuseBuffer reuseBuffer() {
        return reuseBuffer;
    }

    public AdamWConfig config() {
        return config;
    }

    @Override
    public void close() {
        expAvg.close();
        expAvgSq.close();
        reuseBuffer.close();
    }
}
