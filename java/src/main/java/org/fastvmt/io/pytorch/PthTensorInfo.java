package org.fastvmt.io.pytorch;

import java.util.Arrays;

import org.fastvmt.io.StoredTensor;
import org.fastvmt.io.safetensors.SafetensorsDType;

/**
 * What a checkpoint says about one tensor: a strided view of a storage, as torch's
 * {@code _rebuild_tensor_v2(storage, storage_offset, size, stride, ...)} builds it.
 *
 * @param name          its key (nested dicts joined with dots)
 * @param dtype         element type of its storage
 * @param shape         sizes (empty for a scalar)
 * @param strides       strides in elements, one per dimension
 * @param storageKey    its storage is the record {@code <archive>/data/<storageKey>}
 * @param storageOffset its first element, in elements from the start of the storage
 */
public record PthTensorInfo(String name, SafetensorsDType dtype, long[] shape, long[] strides, String storageKey,
        long storageOffset) implements StoredTensor {

    public PthTensorInfo {
        shape = shape.clone();
        strides = strides.clone();
        if (shape.length != strides.length) {
            throw new IllegalArgumentException("shape " + Arrays.toString(shape) + " and strides "
                    + Arrays.toString(strides) + " differ in length");
        }
    }

    @Override
    public long[] shape() {
        return shape.clone();
    }

    @Override
    public long[] strides() {
        return strides.clone();
    }

    /** Bytes of the tensor once contiguous. */
    public long byteSize() {
        return Math.multiplyExact(elementCount(), (long) dtype.bytes());
    }

    /**
     * Whether the elements lie in row-major order without gaps, so the tensor is one run of its
     * storage (dimensions of size 1 may have any stride; a tensor without elements is contiguous).
     */
    public boolean contiguous() {
        long expected = 1;
        for (int axis = shape.length - 1; axis >= 0; axis--) {
            if (shape[axis] == 0) {
                return true;
            }
            if (shape[axis] != 1 && strides[axis] != expected) {
                return false;
            }
            expected *= shape[axis];
        }
        return true;
    }

    @Override
    public boolean equals(Object other) {
        return other instanceof PthTensorInfo that && name.equals(that.name) && dtype == that.dtype
                && Arrays.equals(shape, that.shape) && Arrays.equals(strides, that.strides)
                && storageKey.equals(that.storageKey) && storageOffset == that.storageOffset;
    }

    @Override
    public int hashCode() {
        return 31 * (31 * name.hashCode() + Arrays.hashCode(shape)) + storageKey.hashCode();
    }

    @Override
    public String toString() {
        return name + ": " + dtype + " " + Arrays.toString(shape) + " stride " + Arrays.toString(strides)
                + " of storage '" + storageKey + "' from element " + storageOffset;
    }
}
