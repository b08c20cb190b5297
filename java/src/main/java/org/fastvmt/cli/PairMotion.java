package org.fastvmt.cli;

import org.fastvmt.backend.Backend;
import org.fastvmt.motion.AmfParams;
import org.fastvmt.motion.AttentionMotionFlow;
import org.fastvmt.motion.FramePairs;
import org.fastvmt.motion.PatchDescriptors;
import org.fastvmt.motion.WindowedFlow;
import org.fastvmt.tensor.Tensor;

/**
 * The motion of every token between two sampled frames, read with the sliding-window AMF of
 * Q = K = patch descriptors, and which of those readings to trust.
 *
 * <p>Both directions are read in one AMF call (pairs (a, b) and (b, a)). A cell is
 * <em>used</em> when its patch is textured (contrast at least {@link #MIN_CONTRAST}) and the
 * forward displacement, followed by the backward displacement found there (bilinearly
 * interpolated), returns within {@link #ROUND_TRIP_TOLERANCE} tokens of the cell. Content that
 * leaves the frame or gets covered has no true match; its forward match lands on something
 * else, whose own backward match points elsewhere, so the round trip fails.
 *
 * @param flow [rows, cols, 2] = (dx, dy) from frame a to frame b in model pixels, x to the
 *             right and y downwards, of every cell
 * @param used [rows, cols]: whether each cell's reading is trusted
 */
record PairMotion(int rows, int cols, float[] flow, boolean[] used) {

    /** RMS contrast (on the [0, 1] scale) below which a patch counts as flat. */
    static final float MIN_CONTRAST = 0.01f;
    /** How far, in tokens, the forward-backward round trip may miss its start. */
    static final double ROUND_TRIP_TOLERANCE = 0.5;

    private static final FramePairs BOTH_WAYS = FramePairs.of(2, new int[] {0, 1, 1, 0}, new float[] {1f, 1f});

    /** Reads the motion from {@code a} to {@code b} (same size) on {@code backend}. */
    static PairMotion measure(Backend backend, AmfParams params, PatchDescriptors.Patches a,
            PatchDescriptors.Patches b) {
        int rows = a.rows();
        int cols = a.cols();
        int cells = rows * cols;
        float[] qk = new float[2 * cells * PatchDescriptors.CHANNELS];
        System.arraycopy(a.values(), 0, qk, 0, a.values().length);
        System.arraycopy(b.values(), 0, qk, a.values().length, b.values().length);
        float[] delta;
        try (Tensor q = Tensor.of(backend, qk, 2, rows, cols, PatchDescriptors.CHANNELS);
                WindowedFlow windowed = new AttentionMotionFlow(backend).windowed(q, q, BOTH_WAYS, params)) {
            delta = windowed.delta().toFloatArray();
        }
        return fromDelta(delta, 0, 1, rows, cols, a.contrast());
    }

    /**
     * The motion of pair {@code forward} (a -> b) of an AMF result {@code delta} [pairs, rows,
     * cols, 2] (d_row, d_col in tokens), checked against pair {@code backward} (b -> a), with
     * {@code contrast} [rows, cols] of frame a's patches; a token is {@link PatchDescriptors#CELL}
     * model pixels.
     */
    static PairMotion fromDelta(float[] delta, int forward, int backward, int rows, int cols, float[] contrast) {
        int cells = rows * cols;
        float[] flow = new float[2 * cells];
        boolean[] used = new boolean[cells];
        int forwardOffset = 2 * cells * forward;
        int backwardOffset = 2 * cells * backward;
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                int cell = r * cols + c;
                float dRow = delta[forwardOffset + 2 * cell];
                float dCol = delta[forwardOffset + 2 * cell + 1];
                double backRow = bilinear(delta, backwardOffset, rows, cols, r + dRow, c + dCol, 0);
                double backCol = bilinear(delta, backwardOffset, rows, cols, r + dRow, c + dCol, 1);
                used[cell] = contrast[cell] >= MIN_CONTRAST
                        && Math.hypot(dRow + backRow, dCol + backCol) <= ROUND_TRIP_TOLERANCE;
                flow[2 * cell] = dCol * PatchDescriptors.CELL;
                flow[2 * cell + 1] = dRow * PatchDescriptors.CELL;
            }
        }
        return new PairMotion(rows, cols, flow, used);
    }

    /** {@link #flow} with NaN in the cells that are not used (what {@code FlowPicture} draws as "no reading"). */
    float[] usedFlow() {
        float[] shown = flow.clone();
        for (int cell = 0; cell < used.length; cell++) {
            if (!used[cell]) {
                shown[2 * cell] = Float.NaN;
                shown[2 * cell + 1] = Float.NaN;
            }
        }
        return shown;
    }

    /**
     * Component {@code component} of the [rows, cols, 2] field starting at {@code offset} of
     * {@code field}, bilinearly interpolated at (row, col), which is clamped into the grid.
     */
    private static double bilinear(float[] field, int offset, int rows, int cols, double row, double col,
            int component) {
        double r = Math.clamp(row, 0, rows - 1);
        double c = Math.clamp(col, 0, cols - 1);
        int r0 = (int) r;
        int c0 = (int) c;
        int r1 = Math.min(r0 + 1, rows - 1);
        int c1 = Math.min(c0 + 1, cols - 1);
        double fr = r - r0;
        double fc = c - c0;
        double top = (1 - fc) * field[offset + 2 * (r0 * cols + c0) + component]
                + fc * field[offset + 2 * (r0 * cols + c1) + component];
        double bottom = (1 - fc) * field[offset + 2 * (r1 * cols + c0) + component]
                + fc * field[offset + 2 * (r1 * cols + c1) + component];
        return (1 - fr) * top + fr * bottom;
    }
}
