package org.fastvmt.guidance;

/**
 * FastVMT's gradient reuse: the motion-loss gradient is computed afresh when
 * {@code iteration % interval == 0} and the last fresh one is reused in between
 * (interval 1 computes it every iteration, as DiTFlow does).
 */
public record StepSkippingPolicy(int interval) {

    /** guidance_step(..., interval=3) in the official code. */
    public static final int DEFAULT_INTERVAL = 3;

    public StepSkippingPolicy {
        if (interval < 1) {
            throw new IllegalArgumentException("interval must be >= 1, got " + interval);
        }
    }

    /** FastVMT's setting: a fresh gradient every third iteration. */
    public static StepSkippingPolicy fastvmt() {
        return new StepSkippingPolicy(DEFAULT_INTERVAL);
    }

    /** DiTFlow's setting: a fresh gradient every iteration. */
    public static StepSkippingPolicy everyIteration() {
        return new StepSkippingPolicy(1);
    }

    /** Whether iteration {@code iteration} (0-based) computes a fresh gradient. */
    public boolean freshGradient(int iteration) {
        if (iteration < 0) {
            throw new IllegalArgumentException("iteration must be >= 0, got " + iteration);
        }
        return iteration % interval == 0;
    }

    /** How many of {@code iterations} iterations compute a fresh gradient. */
    public int freshCount(int iterations) {
        return (iterations + interval - 1) / interval;
    }
}
