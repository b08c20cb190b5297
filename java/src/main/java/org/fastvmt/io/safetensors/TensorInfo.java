package org.fastvmt.io.safetensors;

import java.util.Arrays;

import org.fastvmt.io.StoredTensor;

/**
 * What a safetensors header says about one tensor.
 *
 * @param name   its key in the header
 * @param dtype  element type
 * @param shape  sizes, row-major (empty for a scalar)
 * @param begin  first byte in the data section (after the 8-byte length and the header)
 * @param end    one past the last byte in the data section
 */
public record TensorInfo(String name, SafetensorsDType dtype, long[] shape, long begin, long end)
        implements StoredTensor {

    public TensorInfo {
        shape = shape.clone();
    }

    @Override
    public long[] shape() {
        return shape.clone();
    }

    public long byteSize() {
        return end - begin;
    }

    @Override
    public boolean equals(Object other) {
        return other instanceof TensorInfo that && name.equals(that.name) && dtype == that.dtype
                && Arrays.equals(shape, that.shape) && begin == that.begin && end == that.end;
    }

    @Override
    public int hashCode() {
        return 31 * (31 * name.hashCode() + dtype.hashCode()) + Arrays.hashCode(shape) + Long.hashCode(begin);
    }

    @Override
    public String toString() {
        return name + ": " + dtype + " " + Arrays.toString(shape) + " bytes [" + begin + ", " + end + ")";
    }
}
