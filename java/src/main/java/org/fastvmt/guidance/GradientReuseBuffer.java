package org.fastvmt.guidance;

import org.fastvmt.backend.Backend;
import org.fastvmt.tensor.DType;
import org.fastvmt.tensor.Tensor;

/**
 * Holds the last fresh gradient of the latents so reused iterations can apply it again. The
 * fused AdamW kernel fills it as it applies a fresh gradient, so keeping it costs no extra pass.
 */
public final class GradientReuseBuffer implements AutoCloseable {

    private final Tensor gradient;
    private boolean filled;
    private int freshSteps;
    private int reusedSteps;

    GradientReuseBuffer(Backend backend, long[] shape) {
        this.gradient = Tensor.zeros(backend, DType.F32, shape);
    }

    /** Whether a fresh gradient has been stored. */
    public boolean holdsGradient() {
        return filled;
    }

    /** The stored gradient (all zeros before the first fresh step). */
    public Tensor gradient() {
        return gradient;
    }

    /** Steps that applied a fresh gradient. */
    public int freshSteps() {
        return freshSteps;
    }

    /** Steps that applied the stored gradient again. */
    public int reusedSteps() {
        return reusedSteps;
    }

    void recordFresh() {
        filled = true;
        freshSteps++;
    }

    void recordReuse() {
        if (!filled) {
            throw new IllegalStateException("no fresh gradient to reuse yet: the first guidance iteration must "
                    + "compute one");
        }
        reusedSteps++;
    }

    /** Forgets the stored gradient (its memory stays allocated). */
    void clear() {
        filled = false;
        gradient.zero();
    }

    @Override
    public void close() {
        gradient.close();
    }
}
