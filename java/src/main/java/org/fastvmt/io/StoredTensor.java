package org.fastvmt.io;

import org.fastvmt.io.safetensors.SafetensorsDType;

/**
 * What a checkpoint file says about one tensor, whatever the format (.safetensors or .pth): its
 * name, element type and shape. The readers' records implement this so loading and conversion are
 * written once ({@link TensorLoading}).
 */
public interface StoredTensor {

    /** Its key in the file. */
    String name();

    /** Element type as stored. */
    SafetensorsDType dtype();

    /** Sizes, row-major (empty for a scalar); a copy. */
    long[] shape();

    default int rank() {
        return shape().length;
    }

    /** Elements: the product of the shape (1 for a scalar). */
    default long elementCount() {
        long count = 1;
        for (long size : shape()) {
            count = Math.multiplyExact(count, size);
        }
        return count;
    }
}
