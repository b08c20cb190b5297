package org.fastvmt.motion;

import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import org.fastvmt.reference.MotionReference.Shape;
import org.fastvmt.reference.OpenBackends;
import org.fastvmt.reference.TestData;
import org.junit.jupiter.params.provider.Arguments;

/**
 * One shape of the AMF test matrix: Q/K geometry, parameters, pair list, and how the data is
 * made. Shapes stay small because the emulated CUDA build runs every CUDA thread on the CPU.
 *
 * @param upstreamScale the size of the random dL/dΔ; 1/τ for a tiny τ, so gradients stay O(1)
 *                      and the fixed atol keeps its meaning
 * @param plantedMotion when true, Q/K follow a planted shift of (1, 1) per frame with noise 0.1
 *                      (well-separated matches); otherwise i.i.d. normal
 */
record AmfCase(String name, Shape shape, AmfParams params, FramePairs pairs, long seed, float upstreamScale,
        boolean plantedMotion) {

    static final List<AmfCase> ALL = List.of(
            random("typical: 3 frames 6x8, C 16, tile 3x4, window 5, sf 2", new Shape(3, 6, 8, 16),
                    new AmfParams(2, 1f, 3, 4, 5), FramePairs.forward(3, 2)),
            random("all F*F pairs", new Shape(3, 5, 6, 8), new AmfParams(2, 1f, 2, 3, 3), FramePairs.all(3)),
            random("one frame", new Shape(1, 4, 5, 8), new AmfParams(2, 1f, 2, 2, 3), FramePairs.all(1)),
            random("1x1 frames, tile 1x1", new Shape(3, 1, 1, 4), new AmfParams(2, 1f, 1, 1, 3),
                    FramePairs.forward(3, 2)),
            random("frame smaller than the window", new Shape(3, 3, 4, 8), new AmfParams(4, 1f, 2, 3, 5),
                    FramePairs.forward(3, 3)),
            random("H and W not divisible by the tile", new Shape(2, 7, 10, 8), new AmfParams(2, 1f, 3, 4, 3),
                    FramePairs.all(2)),
            random("sf > F", new Shape(3, 4, 5, 8), new AmfParams(1, 1f, 2, 2, 3), FramePairs.forward(3, 5)),
            new AmfCase("temperature 1e-3", new Shape(3, 5, 6, 8), new AmfParams(2, 1e-3f, 2, 3, 3),
                    FramePairs.forward(3, 2), 7, 1e3f, false),
            new AmfCase("temperature 30, planted motion", new Shape(3, 6, 8, 16), new AmfParams(2, 30f, 3, 4, 5),
                    FramePairs.forward(3, 3), 8, 1f, true),
            random("C 3, one head", new Shape(2, 5, 6, 3), new AmfParams(1, 1f, 2, 2, 3), FramePairs.all(2)),
            random("C = 2 * heads", new Shape(2, 5, 6, 6), new AmfParams(3, 1f, 2, 2, 3), FramePairs.forward(2, 2)),
            random("pairs in odd order", new Shape(4, 4, 6, 8), new AmfParams(2, 1f, 2, 3, 3), FramePairs.of(4,
                    new int[] {3, 1, 0, 0, 2, 3, 1, 0, 0, 2, 3, 2, 0, 1, 2, 2},
                    new float[] {0.5f, 1f, 0.9f, 0.8f, 0.7f, 1.2f, 1f, 0.6f})),
            random("largest: 4 frames 8x10, C 48, 4 heads, sf 3", new Shape(4, 8, 10, 48),
                    new AmfParams(4, 1f, 3, 4, 5), FramePairs.forward(4, 3)));

    /** Cases for BF16 inputs: the typical one, a partial-tile one and the sharp one. */
    static final List<AmfCase> BF16 = List.of(named("typical"), named("H and W not divisible"),
            named("temperature 30"));

    /** The case whose name starts with {@code prefix}. */
    static AmfCase named(String prefix) {
        return ALL.stream().filter(c -> c.name().startsWith(prefix)).findFirst()
                .orElseThrow(() -> new IllegalArgumentException("no AMF case named " + prefix));
    }

    private static AmfCase random(String name, Shape shape, AmfParams params, FramePairs pairs) {
        return new AmfCase(name, shape, params, pairs, name.hashCode(), 1f, false);
    }

    /** Every case on every available device. */
    static Stream<Arguments> onEveryDevice() {
        return OpenBackends.devices().flatMap(device -> ALL.stream().map(c -> Arguments.of(device, c)));
    }

    /** The BF16 cases on every device whose build accepts BF16. */
    static Stream<Arguments> bf16OnEveryDevice() {
        return OpenBackends.devicesWithBf16().flatMap(device -> BF16.stream().map(c -> Arguments.of(device, c)));
    }

    /** {q, k} as floats, before any rounding to the tensor's dtype. */
    float[][] qk() {
        SplittableRandom random = new SplittableRandom(seed);
        if (plantedMotion) {
            return TestData.plantedMotion(random, shape, 1, 1, 0.1);
        }
        return new float[][] {TestData.normal(random, shape.elementCount(), 1),
                TestData.normal(random, shape.elementCount(), 1)};
    }

    /** A random dL/dΔ of this case's size. */
    float[] upstream(long salt) {
        SplittableRandom random = new SplittableRandom(seed ^ salt);
        return TestData.normal(random, pairs.count() * shape.tokensPerFrame() * 2, upstreamScale);
    }

    @Override
    public String toString() {
        return name;
    }
}
