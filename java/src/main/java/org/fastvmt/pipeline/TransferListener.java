package org.fastvmt.pipeline;

/**
 * Progress of a {@link MotionTransfer#run}, called on the thread that runs it, in order. Every
 * method does nothing by default. A listener that throws stops the run (the exception
 * propagates after everything the run allocated is freed).
 */
public interface TransferListener {

    /** A listener that ignores everything. */
    TransferListener NONE = new TransferListener() {
    };

    /** Denoising step {@code step} (0-based) of {@code steps} starts, at DiT timestep {@code timestep}. */
    default void stepStarted(int step, int steps, double timestep) {
    }

    /**
     * Guidance iteration {@code iteration} (0-based) of {@code iterations} of step {@code step} is
     * done. {@code fresh}: whether it computed a new gradient. {@code loss}: the motion loss of the
     * latents this iteration started from (weighted window loss plus, in fastvmt mode, the weighted
     * tracking loss); NaN for a reused iteration, which computes no loss.
     */
    default void guidanceIteration(int step, int iteration, int iterations, boolean fresh, double loss) {
    }

    /** Denoising step {@code step} of {@code steps} is done (the latents moved to the next timestep). */
    default void stepFinished(int step, int steps) {
    }
}
