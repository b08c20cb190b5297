package org.fastvmt.guidance;

/**
 * The learning rate of guidance iteration n of N: {@code initial − (initial − last) · n / N},
 * so it starts at {@code initial} and approaches {@code last}.
 */
public record LearningRateSchedule(float initial, float last, int iterations) {

    /** guidance_step in the official code: lr 0.003 → 0.002 over 10 iterations. */
    public static final LearningRateSchedule OFFICIAL = new LearningRateSchedule(0.003f, 0.002f, 10);

    public LearningRateSchedule {
        if (!(initial > 0 && Float.isFinite(initial))) {
            throw new IllegalArgumentException("initial learning rate must be finite and > 0, got " + initial);
        }
        if (!(last > 0 && Float.isFinite(last))) {
            throw new IllegalArgumentException("last learning rate must be finite and > 0, got " + last);
        }
        if (iterations < 1) {
            throw new IllegalArgumentException("iterations must be >= 1, got " + iterations);
        }
    }

    /** The learning rate of iteration {@code iteration} (0-based). */
    public float at(int iteration) {
        if (iteration < 0 || iteration >= iterations) {
            throw new IllegalArgumentException("iteration must be in [0, " + iterations + "), got " + iteration);
        }
        return initial - (initial - last) * iteration / iterations;
    }
}
