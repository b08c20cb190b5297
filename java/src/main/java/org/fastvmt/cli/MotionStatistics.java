package org.fastvmt.cli;

import java.util.ArrayList;
import java.util.List;

/**
 * The figures {@code fastvmt motion} reports, in pixels of the input video per input frame:
 * token displacements times the pixels per token of the input (16 px of the model frame times
 * the crop's input/model scale) divided by the frame step. Means run over the used cells of
 * every pair ({@link PairMotion}); each used cell of each pair counts once.
 *
 * @param meanDx      mean x displacement (to the right)
 * @param meanDy      mean y displacement (downwards)
 * @param cellsUsed   used cells / all cells, over all pairs
 * @param epe         mean |estimated - true| over the used cells (NaN without known motion or
 *                    without used cells)
 * @param epeAllCells the same over every cell, used or not (NaN without known motion)
 * @param epeNoMotion mean |true| over the used cells: the error of answering "no motion"
 * @param pairs       the figures of each pair
 */
record MotionStatistics(double meanDx, double meanDy, double cellsUsed, double epe, double epeAllCells,
        double epeNoMotion, List<Pair> pairs) {

    /** The figures of one pair of sampled frames (input frame indices {@code from} and {@code to}). */
    record Pair(int from, int to, double meanDx, double meanDy, double cellsUsed, double epe) {
    }

    /**
     * Sums over cells. Without any used cell the mean motion is 0 (nothing measurable moved)
     * but the mean error is NaN (there is nothing to score).
     */
    private static final class Sums {
        double dx;
        double dy;
        double error;
        double errorAll;
        double truth;
        int used;
        int all;

        void add(Sums other) {
            dx += other.dx;
            dy += other.dy;
            error += other.error;
            errorAll += other.errorAll;
            truth += other.truth;
            used += other.used;
            all += other.all;
        }

        double meanDx() {
            return used == 0 ? 0 : dx / used;
        }

        double meanDy() {
            return used == 0 ? 0 : dy / used;
        }

        double epe() {
            return used == 0 ? Double.NaN : error / used;
        }

        double epeNoMotion() {
            return used == 0 ? Double.NaN : truth / used;
        }
    }

    static MotionStatistics of(SampledFrames input, List<PairMotion> motions, int frameStep) {
        // Model pixels -> input pixels (the crop's scale, equal along x and y up to rounding) per frame.
        int modelWidth = input.frames().get(0).picture().getWidth();
        int modelHeight = input.frames().get(0).picture().getHeight();
        double scaleX = input.crop().width() / modelWidth / frameStep;
        double scaleY = input.crop().height() / modelHeight / frameStep;
        boolean known = input.synthetic();
        Sums total = new Sums();
        List<Pair> pairs = new ArrayList<>();
        for (int p = 0; p < motions.size(); p++) {
            PairMotion motion = motions.get(p);
            float[] truth = input.frames().get(p).trueVelocity();
            Sums sums = new Sums();
            for (int cell = 0; cell < motion.rows() * motion.cols(); cell++) {
                sums.all++;
                double dx = motion.flow()[2 * cell] * scaleX;
                double dy = motion.flow()[2 * cell + 1] * scaleY;
                boolean used = motion.used()[cell];
                if (used) {
                    sums.used++;
                    sums.dx += dx;
                    sums.dy += dy;
                }
                if (known) {
                    double tx = truth[2 * cell];
                    double ty = truth[2 * cell + 1];
                    double error = Math.hypot(dx - tx, dy - ty);
                    sums.errorAll += error;
                    if (used) {
                        sums.error += error;
                        sums.truth += Math.hypot(tx, ty);
                    }
                }
            }
            pairs.add(new Pair(input.frames().get(p).index(), input.frames().get(p + 1).index(), sums.meanDx(),
                    sums.meanDy(), (double) sums.used / sums.all, known ? sums.epe() : Double.NaN));
            total.add(sums);
        }
        return new MotionStatistics(total.meanDx(), total.meanDy(), (double) total.used / total.all,
                known ? total.epe() : Double.NaN, known ? total.errorAll / total.all : Double.NaN,
                known ? total.epeNoMotion() : Double.NaN, List.copyOf(pairs));
    }
}
