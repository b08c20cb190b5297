package org.fastvmt.tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;

import org.fastvmt.backend.Backend;
import org.fastvmt.backend.DeviceMemory;

/**
 * A dense, row-major array of one {@link DType} in a {@link Backend}'s memory. A tensor made by
 * {@link #zeros}/{@link #of} owns its memory: close it (or use try-with-resources). A
 * {@link #view} or {@link #slice} is a window on the memory of its {@link #base()} tensor: it
 * owns nothing, closing it does nothing, and it is valid while the base is open.
 */
public final class Tensor implements AutoCloseable {

    private final Backend backend;
    private final DType dtype;
    private final long[] shape;
    private final long elementCount;
    private final DeviceMemory memory;
    /** The owning tensor: this one, or the base of the tensor a view was taken from. */
    private final Tensor base;
    /** Where this tensor starts in the base, in elements. */
    private final long offset;

    private Tensor(Backend backend, DType dtype, long[] shape) {
        this.backend = backend;
        this.dtype = dtype;
        this.shape = shape.clone();
        this.elementCount = elementCount(shape);
        this.memory = backend.allocate(Math.multiplyExact(elementCount, (long) dtype.bytes()));
        this.base = this;
        this.offset = 0;
    }

    private Tensor(Tensor base, long offset, long[] shape) {
        this.backend = base.backend;
        this.dtype = base.dtype;
        this.shape = shape.clone();
        this.elementCount = elementCount(shape);
        this.memory = base.memory;
        this.base = base;
        this.offset = offset;
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

    /** The same elements under another shape of the same element count; a non-owning view. */
    public Tensor view(long... newShape) {
        long count = elementCount(newShape);
        if (count != elementCount) {
            throw new IllegalArgumentException("view: shape " + Arrays.toString(newShape) + " holds " + count
                    + " elements, the tensor " + Arrays.toString(shape) + " holds " + elementCount);
        }
        return new Tensor(base, offset, newShape);
    }

    /**
     * The {@code shape}-shaped run of elements that starts {@code elementOffset} elements into this
     * tensor (row-major order); a non-owning view.
     */
    public Tensor slice(long elementOffset, long... newShape) {
        long count = elementCount(newShape);
        if (elementOffset < 0 || elementOffset > elementCount - count) {
            throw new IllegalArgumentException("slice: " + count + " elements " + Arrays.toString(newShape)
                    + " from offset " + elementOffset + " do not fit in " + elementCount + " elements "
                    + Arrays.toString(shape));
        }
        return new Tensor(base, offset + elementOffset, newShape);
    }

    /** The tensor that owns this one's memory: itself unless this is a view or a slice. */
    public Tensor base() {
        return base;
    }

    /** Where this tensor starts in {@link #base()}, in elements (0 for an owning tensor). */
    public long offset() {
        return offset;
    }

    /** Whether this is a view or slice of another tensor (and so owns nothing). */
    public boolean isView() {
        return base != this;
    }

    /**
     * Overwrites this tensor with {@code host}: exactly {@link #byteSize()} bytes in this tensor's
     * dtype, native byte order (a mapped file region is fine: nothing is converted or copied twice).
     */
    public void copyFromHost(MemorySegment host) {
        if (host.byteSize() != byteSize()) {
            throw new IllegalArgumentException("copyFromHost: " + host.byteSize() + " bytes given, " + this
                    + " holds " + byteSize());
        }
        backend.upload(host, memory, byteOffset(), byteSize());
    }

    /** Copies this tensor's {@link #byteSize()} bytes into {@code host} (at least that large). */
    public void copyToHost(MemorySegment host) {
        if (host.byteSize() < byteSize()) {
            throw new IllegalArgumentException("copyToHost: " + host.byteSize() + " bytes of room, " + this
                    + " holds " + byteSize());
        }
        backend.download(memory, byteOffset(), host, byteSize());
    }

    /** The elements as floats (F32, or BF16 widened). */
    public float[] toFloatArray() {
        float[] out = new float[Math.toIntExact(elementCount)];
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment host = arena.allocate(Math.max(byteSize(), 1), 8);
            backend.download(memory, byteOffset(), host, byteSize());
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
            backend.download(memory, byteOffset(), host, byteSize());
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
            backend.library().check(backend.library().h().fvmt_count_nonfinite(segment(),
                    dtype.nativeCode(), elementCount, count.segment(), backend.stream()));
            MemorySegment host = arena.allocate(ValueLayout.JAVA_LONG);
            backend.download(count, 0, host, Long.BYTES);
            return host.get(ValueLayout.JAVA_LONG, 0);
        }
    }

    /** Overwrites every element with zero. */
    public void zero() {
        backend.zero(memory, byteOffset(), byteSize());
    }

    /** Copies the content of {@code source} (same backend, dtype and element count) into this tensor. */
    public void copyFrom(Tensor source) {
        if (source.backend != backend || source.dtype != dtype || source.elementCount != elementCount) {
            throw new IllegalArgumentException("copyFrom needs a " + dtype + " tensor of " + elementCount
                    + " elements on " + backend.name() + ", got " + source);
        }
        backend.copy(source.memory, source.byteOffset(), memory, byteOffset(), byteSize());
    }

    /**
     * The address native calls receive: on host backends a segment of exactly this tensor's
     * bytes, on cuda the device address (a zero-length segment).
     */
    public MemorySegment segment() {
        MemorySegment segment = memory.segment(byteOffset());
        return segment.byteSize() > byteSize() ? segment.asSlice(0, byteSize()) : segment;
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

    /** Frees the memory of an owning tensor; does nothing for a view. */
    @Override
    public void close() {
        if (!isView()) {
            memory.close();
        }
    }

    @Override
    public String toString() {
        return "Tensor" + Arrays.toString(shape) + " " + dtype + " on " + backend.name()
                + (isView() ? " (view at " + offset + " of " + Arrays.toString(base.shape) + ")" : "");
    }

    private long byteOffset() {
        return offset * dtype.bytes();
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
