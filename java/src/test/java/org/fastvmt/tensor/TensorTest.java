package org.fastvmt.tensor;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.SplittableRandom;

import org.fastvmt.backend.Backend;
import org.fastvmt.backend.Device;
import org.fastvmt.reference.MotionReference;
import org.fastvmt.reference.OpenBackends;
import org.fastvmt.reference.TestData;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** Tensors on every backend: exact round trips of each dtype, and fvmt_count_nonfinite. */
class TensorTest {

    private static final float[] SPECIAL = {0f, -0f, 1f, -2.5f, Float.MIN_VALUE, Float.MIN_NORMAL, Float.MAX_VALUE,
        -Float.MAX_VALUE, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, Float.NaN, 1e-40f, 3.1415927f};

    private static final OpenBackends BACKENDS = new OpenBackends();

    @AfterAll
    static void closeBackends() {
        BACKENDS.close();
    }

    private static int[] bits(float[] x) {
        int[] out = new int[x.length];
        for (int n = 0; n < x.length; n++) {
            out[n] = Float.floatToRawIntBits(x[n]);
        }
        return out;
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("org.fastvmt.reference.OpenBackends#devices")
    void f32RoundTripsBitForBit(Device device) {
        Backend backend = BACKENDS.get(device);
        float[] data = TestData.normal(new SplittableRandom(1), 3 * 5 * 7, 10);
        System.arraycopy(SPECIAL, 0, data, 20, SPECIAL.length);
        try (Tensor tensor = Tensor.of(backend, data, 3, 5, 7)) {
            assertArrayEquals(bits(data), bits(tensor.toFloatArray()));
            assertArrayEquals(new long[] {3, 5, 7}, tensor.shape());
            assertEquals(105, tensor.elementCount());
            assertEquals(420, tensor.byteSize());
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("org.fastvmt.reference.OpenBackends#devices")
    void bf16HoldsTheRoundedValues(Device device) {
        Backend backend = BACKENDS.get(device);
        float[] data = TestData.normal(new SplittableRandom(2), 64, 3);
        System.arraycopy(SPECIAL, 0, data, 40, SPECIAL.length);
        try (Tensor tensor = Tensor.of(backend, DType.BF16, data, 8, 8)) {
            float[] held = tensor.toFloatArray();
            assertEquals(128, tensor.byteSize());
            for (int n = 0; n < data.length; n++) {
                if (Float.isNaN(data[n])) {
                    assertEquals(true, Float.isNaN(held[n]), "NaN at " + n);
                } else {
                    assertEquals(Float.floatToRawIntBits(BFloat16.round(data[n])), Float.floatToRawIntBits(held[n]),
                            "element " + n + " = " + data[n]);
                    assertEquals(0, Float.floatToRawIntBits(held[n]) & 0xFFFF, "a bf16 value has 16 low zero bits");
                }
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("org.fastvmt.reference.OpenBackends#devices")
    void i32RoundTripsAndCopies(Device device) {
        Backend backend = BACKENDS.get(device);
        int[] data = {0, 1, -1, Integer.MAX_VALUE, Integer.MIN_VALUE, 42, 7, -99};
        try (Tensor tensor = Tensor.ofInts(backend, data, 2, 4); Tensor copy = Tensor.zeros(backend, DType.I32, 2, 4)) {
            assertArrayEquals(data, tensor.toIntArray());
            copy.copyFrom(tensor);
            assertArrayEquals(data, copy.toIntArray());
            tensor.zero();
            assertArrayEquals(new int[8], tensor.toIntArray());
            assertArrayEquals(data, copy.toIntArray(), "the copy is independent");
            assertThrows(IllegalStateException.class, tensor::toFloatArray);
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("org.fastvmt.reference.OpenBackends#devices")
    void misuseIsRefused(Device device) {
        Backend backend = BACKENDS.get(device);
        try (Tensor f32 = Tensor.zeros(backend, DType.F32, 4); Tensor other = Tensor.zeros(backend, DType.F32, 5)) {
            assertThrows(IllegalArgumentException.class, () -> Tensor.of(backend, new float[3], 2, 2));
            assertThrows(IllegalArgumentException.class, () -> Tensor.ofInts(backend, new int[5], 2, 2));
            assertThrows(IllegalArgumentException.class, () -> Tensor.zeros(backend, DType.F32, 2, -1));
            assertThrows(IllegalStateException.class, f32::toIntArray);
            assertThrows(IllegalArgumentException.class, () -> f32.copyFrom(other));
        }
    }

    /** Views and slices share their base's memory, read and write their own range, and own nothing. */
    @ParameterizedTest(name = "{0}")
    @MethodSource("org.fastvmt.reference.OpenBackends#devices")
    void viewsAndSlicesAreWindowsOnTheBase(Device device) {
        Backend backend = BACKENDS.get(device);
        float[] data = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
        long before = backend.allocatedBytes();
        try (Tensor base = Tensor.of(backend, data, 3, 4); Tensor source = Tensor.of(backend, new float[] {-1, -2}, 2)) {
            assertEquals(before + 48 + 8, backend.allocatedBytes());
            Tensor view = base.view(2, 6);
            Tensor row = base.slice(4, 4);
            Tensor pair = view.slice(7, 2);
            assertArrayEquals(new long[] {2, 6}, view.shape());
            assertEquals(before + 48 + 8, backend.allocatedBytes(), "views allocate nothing");
            assertArrayEquals(data, view.toFloatArray());
            assertArrayEquals(new float[] {4, 5, 6, 7}, row.toFloatArray());
            assertArrayEquals(new float[] {7, 8}, pair.toFloatArray());
            assertSame(base, pair.base());
            assertEquals(7, pair.offset());
            assertEquals(8, pair.byteSize());

            pair.copyFrom(source);
            row.slice(0, 1).zero();
            view.close(); // a no-op: the base still owns the memory
            assertArrayEquals(new float[] {0, 1, 2, 3, 0, 5, 6, -1, -2, 9, 10, 11}, base.toFloatArray());

            assertThrows(IllegalArgumentException.class, () -> base.view(5, 2));
            assertThrows(IllegalArgumentException.class, () -> base.slice(9, 4));
            assertThrows(IllegalArgumentException.class, () -> row.slice(-1, 2));
        }
        assertEquals(before, backend.allocatedBytes());
    }

    /** Sizes around vector widths and block sizes, and one of many blocks. */
    private static final int[] COUNT_SIZES = {1, 7, 8, 33, 1000, 100_003};

    /** {@code n} finite values with NaN and infinities at the ends and scattered in between. */
    private static float[] withNonFinite(SplittableRandom random, int n) {
        float[] data = TestData.normal(random, n, 100);
        data[n - 1] = Float.NaN;
        data[0] = Float.POSITIVE_INFINITY;
        for (int extra = 0; extra < n / 100; extra++) {
            data[random.nextInt(n)] = random.nextBoolean() ? Float.NEGATIVE_INFINITY : Float.intBitsToFloat(0x7FC01234);
        }
        return data;
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("org.fastvmt.reference.OpenBackends#devices")
    void nonFiniteF32ValuesAreCounted(Device device) {
        Backend backend = BACKENDS.get(device);
        SplittableRandom random = new SplittableRandom(3);
        for (int n : COUNT_SIZES) {
            try (Tensor clean = Tensor.of(backend, TestData.normal(random, n, 100), n)) {
                assertEquals(0, clean.nonFiniteCount(), "finite data of " + n + " elements");
            }
            float[] data = withNonFinite(random, n);
            try (Tensor f32 = Tensor.of(backend, data, n)) {
                assertEquals(MotionReference.countNonFinite(data), f32.nonFiniteCount(), n + " elements");
            }
        }
    }

    /** fastvmt.h: fvmt_count_nonfinite takes x of "dtype F32 or BF16" on every build. */
    @ParameterizedTest(name = "{0}")
    @MethodSource("org.fastvmt.reference.OpenBackends#devices")
    void nonFiniteBf16ValuesAreCounted(Device device) {
        Backend backend = BACKENDS.get(device);
        SplittableRandom random = new SplittableRandom(4);
        for (int n : COUNT_SIZES) {
            float[] data = withNonFinite(random, n);
            try (Tensor bf16 = Tensor.of(backend, DType.BF16, data, n)) {
                assertEquals(MotionReference.countNonFinite(TestData.roundToBf16(data)), bf16.nonFiniteCount(),
                        n + " elements");
            }
        }
        // ±MAX_VALUE round past the largest bf16 to ±infinity; 3e38 stays finite.
        float[] huge = {Float.MAX_VALUE, 1f, 3e38f, -Float.MAX_VALUE};
        try (Tensor bf16 = Tensor.of(backend, DType.BF16, huge, 4)) {
            assertEquals(2, bf16.nonFiniteCount());
        }
    }
}
