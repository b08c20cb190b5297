package org.fastvmt.motion;

import java.util.Arrays;
import java.util.HashSet;
import java.util.Set;

/**
 * The ordered list of frame pairs (i, j) whose motion is computed (query frame i, key frame j),
 * with the weight of each pair in the corresponding-window loss.
 */
public final class FramePairs {

    private final int frames;
    private final int[] pairs;
    private final float[] weights;

    private FramePairs(int frames, int[] pairs, float[] weights) {
        this.frames = frames;
        this.pairs = pairs;
        this.weights = weights;
    }

    /** DiTFlow's set: every (i, j), i and j in [0, frames), row-major; weight 1. */
    public static FramePairs all(int frames) {
        requireFrames(frames);
        int[] pairs = new int[2 * frames * frames];
        int p = 0;
        for (int i = 0; i < frames; i++) {
            for (int j = 0; j < frames; j++) {
                pairs[p++] = i;
                pairs[p++] = j;
            }
        }
        float[] weights = new float[frames * frames];
        Arrays.fill(weights, 1f);
        return new FramePairs(frames, pairs, weights);
    }

    /**
     * FastVMT's set: j in [i, min(frames, i + sf)) for each i, weighted by
     * linspace(1, 0.8, sf)[j - i] (the official pipeline's loss weights).
     */
    public static FramePairs forward(int frames, int sf) {
        requireFrames(frames);
        if (sf < 1) {
            throw new IllegalArgumentException("sf must be >= 1, got " + sf);
        }
        int count = 0;
        for (int i = 0; i < frames; i++) {
            count += Math.min(frames, i + sf) - i;
        }
        int[] pairs = new int[2 * count];
        float[] weights = new float[count];
        int p = 0;
        for (int i = 0; i < frames; i++) {
            for (int j = i; j < Math.min(frames, i + sf); j++) {
                pairs[2 * p] = i;
                pairs[2 * p + 1] = j;
                weights[p] = linspace(1f, 0.8f, sf, j - i);
                p++;
            }
        }
        return new FramePairs(frames, pairs, weights);
    }

    /** (i, i + 1) for every i: motion between consecutive frames; weight 1. */
    public static FramePairs consecutive(int frames) {
        if (frames < 2) {
            throw new IllegalArgumentException("consecutive pairs need at least 2 frames, got " + frames);
        }
        int[] pairs = new int[2 * (frames - 1)];
        for (int i = 0; i + 1 < frames; i++) {
            pairs[2 * i] = i;
            pairs[2 * i + 1] = i + 1;
        }
        float[] weights = new float[frames - 1];
        Arrays.fill(weights, 1f);
        return new FramePairs(frames, pairs, weights);
    }

    /** Any list of distinct pairs: {@code pairs} is flat (i0, j0, i1, j1, ...), one weight per pair. */
    public static FramePairs of(int frames, int[] pairs, float[] weights) {
        requireFrames(frames);
        if (pairs.length == 0 || pairs.length % 2 != 0) {
            throw new IllegalArgumentException("pairs must hold a positive, even number of frame indices, got "
                    + pairs.length);
        }
        if (weights.length != pairs.length / 2) {
            throw new IllegalArgumentException("weights must have one entry per pair (" + pairs.length / 2
                    + "), got " + weights.length);
        }
        for (int n = 0; n < pairs.length; n++) {
            if (pairs[n] < 0 || pairs[n] >= frames) {
                throw new IllegalArgumentException("pairs[" + n / 2 + "] = (" + pairs[n - n % 2] + ", "
                        + pairs[n - n % 2 + 1] + ") names a frame outside [0, " + frames + ")");
            }
        }
        Set<Long> seen = new HashSet<>();
        for (int p = 0; p < weights.length; p++) {
            if (!seen.add((long) pairs[2 * p] * frames + pairs[2 * p + 1])) {
                throw new IllegalArgumentException("pairs[" + p + "] = (" + pairs[2 * p] + ", " + pairs[2 * p + 1]
                        + ") repeats an earlier pair; pairs must be distinct");
            }
        }
        for (int p = 0; p < weights.length; p++) {
            if (!Float.isFinite(weights[p])) {
                throw new IllegalArgumentException("weights[" + p + "] is not finite: " + weights[p]);
            }
        }
        return new FramePairs(frames, pairs.clone(), weights.clone());
    }

    private static float linspace(float from, float to, int count, int index) {
        return count == 1 ? from : from + (to - from) * index / (count - 1);
    }

    private static void requireFrames(int frames) {
        if (frames < 1) {
            throw new IllegalArgumentException("frames must be >= 1, got " + frames);
        }
    }

    /** The number of frames the indices refer to. */
    public int frames() {
        return frames;
    }

    public int count() {
        return weights.length;
    }

    /** Query frame i of pair p. */
    public int queryFrame(int p) {
        return pairs[2 * p];
    }

    /** Key frame j of pair p. */
    public int keyFrame(int p) {
        return pairs[2 * p + 1];
    }

    /** (i0, j0, i1, j1, ...), a copy. */
    public int[] flat() {
        return pairs.clone();
    }

    /** The loss weight of each pair, a copy. */
    public float[] weights() {
        return weights.clone();
    }

    @Override
    public String toString() {
        return count() + " pairs over " + frames + " frames";
    }
}
