package org.fastvmt.bench;

import java.util.Arrays;
import java.util.function.DoubleConsumer;

/**
 * The wall-clock times of one timed operation: one warm-up run, then {@code repeats} measured
 * runs, summarised by their median (robust to one run slowed by another process).
 *
 * @param warmUpMs       the warm-up run (first-touch of memory, thread-pool start, caches)
 * @param repetitionsMs  the measured runs, in order
 */
public record Timing(double warmUpMs, double[] repetitionsMs) {

    public Timing {
        if (repetitionsMs.length == 0) {
            throw new IllegalArgumentException("a timing needs at least one repetition");
        }
        repetitionsMs = repetitionsMs.clone();
    }

    /**
     * Runs {@code setUp} (untimed) then {@code run} (timed), once to warm up and then
     * {@code repeats} times; {@code afterRun} receives the milliseconds of each run, warm-up first.
     * {@code run} must return only when its work is finished (synchronize a device before returning).
     */
    public static Timing measure(Runnable setUp, Runnable run, int repeats, DoubleConsumer afterRun) {
        if (repeats < 1) {
            throw new IllegalArgumentException("repeats must be >= 1, got " + repeats);
        }
        double warmUp = timeOnce(setUp, run);
        afterRun.accept(warmUp);
        double[] times = new double[repeats];
        for (int r = 0; r < repeats; r++) {
            times[r] = timeOnce(setUp, run);
            afterRun.accept(times[r]);
        }
        return new Timing(warmUp, times);
    }

    private static double timeOnce(Runnable setUp, Runnable run) {
        setUp.run();
        long start = System.nanoTime();
        run.run();
        return (System.nanoTime() - start) / 1e6;
    }

    /** The median of the measured runs (the mean of the middle two for an even count). */
    public double medianMs() {
        double[] sorted = repetitionsMs.clone();
        Arrays.sort(sorted);
        int middle = sorted.length / 2;
        return sorted.length % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
    }

    @Override
    public double[] repetitionsMs() {
        return repetitionsMs.clone();
    }
}
