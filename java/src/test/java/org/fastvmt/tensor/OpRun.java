package org.fastvmt.tensor;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.function.BiFunction;

import org.fastvmt.backend.Backend;
import org.fastvmt.reference.TestData;
import org.fastvmt.reference.Tolerance;

/**
 * One op of {@link Ops} run the way a model runs it: inputs uploaded to a backend, the forward on
 * a recording {@link Graph}, a random upstream gradient pushed through {@link Graph#backward},
 * then the output and every input's gradient downloaded. The op tests compare these with
 * {@code DitOpsReference} evaluated on {@link Input#held() the values the tensors hold}.
 */
final class OpRun {

    private OpRun() {
    }

    /**
     * One input: its values, shape and dtype, and whether it requires a gradient. With an
     * {@code offset}, the op receives a slice that starts {@code offset} elements into a larger
     * tensor (so it is not 16-byte aligned when the offset is odd). A null Input is passed to the
     * op as a null tensor (an absent bias, gamma or gate).
     */
    record Input(String name, DType dtype, float[] values, long[] shape, boolean gradient, int offset) {

        /** An F32 input that requires a gradient. */
        static Input trained(String name, float[] values, long... shape) {
            return new Input(name, DType.F32, values, shape, true, 0);
        }

        /** An F32 input that requires none (its gradient must stay absent). */
        static Input constant(String name, float[] values, long... shape) {
            return new Input(name, DType.F32, values, shape, false, 0);
        }

        /** A BF16 input (which cannot require a gradient): the values are rounded on upload. */
        static Input bf16(String name, float[] values, long... shape) {
            return new Input(name, DType.BF16, values, shape, false, 0);
        }

        /**
         * This input as a slice {@code offset} elements into a tensor with {@link #TRAILING}
         * more elements after it; the elements around the slice are 7.
         */
        Input at(int offset) {
            return new Input(name, dtype, values, shape, gradient, offset);
        }

        /** The values the tensor holds, in double: exact for F32, rounded to nearest even for BF16. */
        double[] held() {
            return TestData.toDouble(dtype == DType.BF16 ? TestData.roundToBf16(values) : values);
        }

        @Override
        public String toString() {
            return name + Arrays.toString(shape) + " " + dtype;
        }
    }

    /** Elements after a slice input, where no gradient may land. */
    static final int TRAILING = 3;

    /** The output, the upstream gradient seeded on it, and each input's gradient (null when it has none). */
    record Result(float[] output, long[] outputShape, double[] upstream, float[][] gradients) {

        float[] gradient(int input) {
            return gradients[input];
        }
    }

    /**
     * Runs {@code op} on {@code inputs} and backward with an upstream of N(0, 1) entries from
     * {@code random}. Also asserts that inputs needing no gradient received none.
     */
    static Result run(Backend backend, SplittableRandom random, BiFunction<Ops, Tensor[], Tensor> op,
            Input... inputs) {
        try (Graph graph = new Graph(backend, true)) {
            Tensor[] tensors = new Tensor[inputs.length];
            for (int n = 0; n < inputs.length; n++) {
                Input in = inputs[n];
                if (in == null) {
                    continue;
                }
                if (in.offset() == 0) {
                    tensors[n] = graph.own(Tensor.of(backend, in.dtype(), in.values(), in.shape()));
                } else {
                    float[] padded = new float[in.offset() + in.values().length + TRAILING];
                    Arrays.fill(padded, 7f);
                    System.arraycopy(in.values(), 0, padded, in.offset(), in.values().length);
                    Tensor base = graph.own(Tensor.of(backend, in.dtype(), padded, padded.length));
                    tensors[n] = base.slice(in.offset(), in.shape());
                }
                if (in.gradient()) {
                    graph.requireGradient(tensors[n]);
                }
            }
            Tensor out = op.apply(new Ops(graph), tensors);
            float[] upstream = TestData.normal(random, Math.toIntExact(out.elementCount()), 1);
            graph.backward(out, graph.own(Tensor.of(backend, upstream, out.shape())));
            float[][] gradients = new float[inputs.length][];
            for (int n = 0; n < inputs.length; n++) {
                if (inputs[n] == null) {
                    continue;
                }
                Tensor gradient = graph.gradient(tensors[n]);
                if (inputs[n].gradient()) {
                    gradients[n] = gradient.toFloatArray();
                    if (inputs[n].offset() > 0) {
                        float[] whole = graph.gradient(tensors[n].base()).toFloatArray();
                        int end = inputs[n].offset() + inputs[n].values().length;
                        assertArrayEquals(new float[inputs[n].offset()], Arrays.copyOf(whole, inputs[n].offset()),
                                inputs[n] + ": no gradient lands before the slice");
                        assertArrayEquals(new float[TRAILING], Arrays.copyOfRange(whole, end, end + TRAILING),
                                inputs[n] + ": no gradient lands after the slice");
                    }
                } else {
                    assertNull(gradient, inputs[n] + " requires no gradient but received one");
                }
            }
            return new Result(out.toFloatArray(), out.shape(), TestData.toDouble(upstream), gradients);
        }
    }

    /** System property: when "true", every {@link #assertClose} also prints its largest error. */
    static final String PRINT_ERRORS = "fastvmt.test.printErrors";

    /**
     * {@code tolerance.assertClose}, and with -Dfastvmt.test.printErrors=true a line with the
     * largest |got − ref| and the largest share of the allowed error used (for reports).
     */
    static void assertClose(Tolerance tolerance, String what, double[] expected, float[] actual) {
        if (Boolean.getBoolean(PRINT_ERRORS) && expected.length == actual.length) {
            double worst = 0;
            double share = 0;
            for (int n = 0; n < expected.length; n++) {
                double error = Math.abs(actual[n] - expected[n]);
                worst = Math.max(worst, error);
                double allowed = tolerance.atol() + tolerance.rtol() * Math.abs(expected[n]);
                share = Math.max(share, error == 0 ? 0 : error / allowed);
            }
            System.out.printf("op-error %s: max |diff| %.3g, %.3f of the tolerance%n", what, worst, share);
        }
        tolerance.assertClose(what, expected, actual);
    }
}
