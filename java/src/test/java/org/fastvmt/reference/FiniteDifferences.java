package org.fastvmt.reference;

import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.function.ToDoubleFunction;
import java.util.stream.IntStream;

/** Central finite differences of a scalar function of a double array, in double precision. */
public final class FiniteDifferences {

    private FiniteDifferences() {
    }

    /** (f(x + h·e_index) − f(x − h·e_index)) / 2h; {@code x} is left unchanged. */
    public static double derivative(ToDoubleFunction<double[]> f, double[] x, int index, double h) {
        double[] shifted = x.clone();
        shifted[index] = x[index] + h;
        double up = f.applyAsDouble(shifted);
        shifted[index] = x[index] - h;
        double down = f.applyAsDouble(shifted);
        return (up - down) / (2 * h);
    }

    /** (f(x + h·u) − f(x − h·u)) / 2h: the derivative of f at x along {@code direction} u. */
    public static double alongDirection(ToDoubleFunction<double[]> f, double[] x, double[] direction, double h) {
        double[] up = x.clone();
        double[] down = x.clone();
        for (int n = 0; n < x.length; n++) {
            up[n] = x[n] + h * direction[n];
            down[n] = x[n] - h * direction[n];
        }
        return (f.applyAsDouble(up) - f.applyAsDouble(down)) / (2 * h);
    }

    /**
     * Asserts that {@code gradient} of {@code loss} at {@code at} agrees with central differences
     * along {@code count} random normal directions u: ⟨gradient, u⟩ against
     * {@link #alongDirection}. A wrong element e of the gradient shifts ⟨gradient, u⟩ by a
     * normal multiple of |e|, so every element is tested at the cost of two evaluations.
     */
    public static void assertAlongRandomDirections(Tolerance tolerance, String what, double[] gradient, double[] at,
            ToDoubleFunction<double[]> loss, SplittableRandom random, int count, double h) {
        double[] numeric = new double[count];
        double[] analytic = new double[count];
        for (int n = 0; n < count; n++) {
            double[] direction = new double[at.length];
            for (int i = 0; i < at.length; i++) {
                direction[i] = random.nextGaussian();
            }
            numeric[n] = alongDirection(loss, at, direction, h);
            analytic[n] = weightedSum(direction, gradient);
        }
        tolerance.assertClose(what + " along " + count + " random directions against central differences",
                numeric, analytic);
    }

    /** Σ_n weights[n] · values[n]: the scalar whose gradient is a backward's output for upstream {@code weights}. */
    public static double weightedSum(double[] weights, double[] values) {
        double sum = 0;
        for (int n = 0; n < values.length; n++) {
            sum += weights[n] * values[n];
        }
        return sum;
    }

    /**
     * Asserts that a kernel's gradient {@code got} of {@code loss} at {@code at} agrees with
     * central differences of {@code loss} (step {@code h}) at {@code count} random coordinates,
     * drawn among those where the reference gradient {@code hint} is not zero when there are any
     * (a zero there is already checked against the reference).
     */
    public static void assertAtRandomCoordinates(Tolerance tolerance, String what, double[] got, double[] hint,
            double[] at, ToDoubleFunction<double[]> loss, SplittableRandom random, int count, double h) {
        int[] candidates = IntStream.range(0, hint.length).filter(n -> Math.abs(hint[n]) > 1e-7).toArray();
        if (candidates.length == 0) {
            candidates = IntStream.range(0, hint.length).toArray();
        }
        int[] chosen = new int[count];
        double[] numeric = new double[count];
        double[] kernel = new double[count];
        for (int n = 0; n < count; n++) {
            chosen[n] = candidates[random.nextInt(candidates.length)];
            numeric[n] = derivative(loss, at, chosen[n], h);
            kernel[n] = got[chosen[n]];
        }
        tolerance.assertClose(what + " at " + Arrays.toString(chosen) + " against central differences of the "
                + "reference", numeric, kernel);
    }
}
