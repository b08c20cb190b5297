package org.fastvmt.tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;

import org.fastvmt.backend.Backend;
import org.fastvmt.backend.DeviceMemory;

/**
 * A dense, row-major array of one {@link DType} in a {@link Backend}'s memory. Tensors own their
 * memory: close them (or use try-with-resources).
 */
public final class Tensor implements AutoCloseable {

    private final Backend backend;
    private final DType dtype;
    private final long[] shape;
    private final long elementCount;
    private final DeviceMemory memory;

    private Tensor(Backend backend, DType dtype, long[] shape) {
        this.backend = backend;
        this.dtype = dtype;
        this.shape = shape.clone();
        this.elementCount = elementCount(shape);
        this.memory = backend.allocate(Math.multiplyExact(elementCount, (long) dtype.bytes()));
    }

    /** A zero-filled tensor. */
    public static Tensor zeros(Backend backend, DType dtype, long... shape) {
        return new Tensor(backend, dtype, shape);
    }

    /** An F32 tensor holding {@code data}. */
    public static Tensor of(Backend backend, float[] data, long... shape) {
        return of(backend, DType.F32, data, shape);
    }

    /** A tensor of {@code dtype} (F32 or BF16, rounded to nearest even) holding {@code data}. */
    public static Tensor of(Backend backend, DType dtype, float[] data, long... shape) {
        checkLength(data.length, shape);
        Tensor tensor = new Tensor(backend, dtype, shape);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment host = arena.allocate((long) data.length * dtype.bytes(), 8);
            switch (dtype) {
                case F32 -> MemorySegment.copy(data, 0, host, ValueLayout.JAVA_FLOAT, 0, data.length);
                case BF16 -> {
                    for (int i = 0; i < data.length; i++) {
                        host.setAtIndex(ValueLayout.JAVA_SHORT, i, BFloat16.fromFloat(data[i]));
                    }
                }
                case I32 -> throw new IllegalArgumentException("use ofInts for I32 tensors");
            }
            backend.upload(host, tensor.memory, 0, host.byteSize());
        } catch (RuntimeException e) {
            tensor.close();
            throw e;
        }
        return tensor;
    }

    /** An I32 tensor holding {@code data}. */
    public static Tensor ofInts(Backend backend, int[] data, long... shape) {
        checkLength(data.length, shape);
        Tensor tensor = new Tensor(backend, DType.I32, shape);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment host = arena.allocate((long) data.length * Integer.BYTES, 8);
            MemorySegment.copy(data, 0, host, ValueLayout.JAVA_INT, 0, data.length);
            backend.upload(host, tensor.memory, 0, host.byteSize());
        } catch (RuntimeException e) {
            tensor.close();
            throw e;
        }
        return tensor;
    }

    /** The elements as floats (F32, or BF16 widened). */
    public float[] toFloatArray() {
        float[] out = new float[Math.toIntExact(elementCount)];
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment host = arena.allocate(Math.max(byteSize(), 1), 8);
            backend.download(memory, 0, host, byteSize());
            switch (dtype) {
                case F32 -> MemorySegment.copy(host, ValueLayout.JAVA_FLOAT, 0, out, 0, out.length);
                case BF16 -> {
                    for (int i = 0; i < out.length; i++) {
                        out[i] = BFloat16.toFloat(host.getAtIndex(ValueLayout.JAVA_SHORT, i));
                    }
                }
                case I32 -> throw new IllegalStateException("an I32 tensor has no float view; use toIntArray");
            }
        }
        return out;
    }

    /** The elements of an I32 tensor. */
    public int[] toIntArray() {
        if (dtype != DType.I32) {
            throw new IllegalStateException("toIntArray needs an I32 tensor, this one is " + dtype);
        }
        int[] out = new int[Math.toIntExact(elementCount)];
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment host = arena.allocate(Math.max(byteSize(), 1), 8);
            backend.download(memory, 0, host, byteSize());
            MemorySegment.copy(host, ValueLayout.JAVA_INT, 0, out, 0, out.length);
        }
        return out;
    }

    /**
     * How many elements are NaN or infinite (F32 or BF16), counted by the backend's
     * fvmt_count_nonfinite.
     */
    public long nonFiniteCount() {
        if (dtype == DType.I32) {
            return 0;
        }
        try (DeviceMemory count = backend.allocate(Long.BYTES); Arena arena = Arena.ofConfined()) {
            backend.library().check(backend.library().h().fvmt_count_nonfinite(memory.segment(),
                    dtype.nativeCode(), elementCount, count.segment(), backend.stream()));
            MemorySegment host = arena.allocate(ValueLayout.JAVA_LONG);
            backend.download(count, 0, host, Long.BYTES);
            return host.get(ValueLayout.JAVA_LONG, 0);
        }
    }

    /** Overwrites every element with zero. */
    public void zero() {
        backend.zero(memory);
    }

    /** Copies the content of {@code source} (same backend, dtype and element count) into this tensor. */
    public void copyFrom(Tensor source) {
        if (source.backend != backend || source.dtype != dtype || source.elementCount != elementCount) {
            throw new IllegalArgumentException("copyFrom needs a " + dtype + " tensor of " + elementCount
                    + " elements on " + backend.name() + ", got " + source);
        }
        backend.copy(source.memory, memory, byteSize());
    }

    /** The address native calls receive. */
    public MemorySegment segment() {
        return memory.segment();
    }

    public Backend backend() {
        return backend;
    }

    public DType dtype() {
        return dtype;
    }

    public long[] shape() {
        return shape.clone();
    }

    public int rank() {
        return shape.length;
    }

    public long dim(int axis) {
        return shape[axis];
    }

    public long elementCount() {
        return elementCount;
    }

    public long byteSize() {
        return elementCount * dtype.bytes();
    }

    @Override
    public void close() {
        memory.close();
    }

    @Override
    public String toString() {
        return "Tensor" + Arrays.toString(shape) + " " + dtype + " on " + backend.name();
    }

    private static long elementCount(long[] shape) {
        long count = 1;
        for (int axis = 0; axis < shape.length; axis++) {
            if (shape[axis] < 0) {
                throw new IllegalArgumentException("shape " + Arrays.toString(shape) + " has a negative size");
            }
            count = Math.multiplyExact(count, shape[axis]);
        }
        return count;
    }

    private static void checkLength(int length, long[] shape) {
        if (length != elementCount(shape)) {
            throw new IllegalArgumentException("data has " + length + " elements but shape "
                    + Arrays.toString(shape) + " needs " + elementCount(shape));
        }
    }
}
