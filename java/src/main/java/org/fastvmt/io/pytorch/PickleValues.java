package org.fastvmt.io.pytorch;

import java.util.Arrays;
import java.util.List;

import org.fastvmt.io.safetensors.SafetensorsDType;

/**
 * The values the restricted unpickler builds. Besides these it uses String, Long, Double, Boolean,
 * byte[], ArrayList (a Python list) and LinkedHashMap (a dict or an OrderedDict).
 */
final class PickleValues {

    private PickleValues() {
    }

    /** Python's None. */
    enum None {
        NONE
    }

    /** A Python tuple. */
    record Tuple(List<Object> items) {
        Tuple {
            items = List.copyOf(items);
        }

        int size() {
            return items.size();
        }

        Object get(int i) {
            return items.get(i);
        }
    }

    /** A global the reader accepts, named by the pickle ({@code module.name}). */
    record Global(String module, String name) {
        String qualified() {
            return module + "." + name;
        }
    }

    /**
     * A storage named by a persistent id ('storage', type, key, location, numel).
     *
     * @param dtype    the element type of its storage class
     * @param typeName the storage class ("torch.FloatStorage")
     * @param key      its record is {@code <archive>/data/<key>}
     * @param location the device it was saved from ("cpu", "cuda:0"); ignored
     * @param numel    its size in elements
     */
    record Storage(SafetensorsDType dtype, String typeName, String key, String location, long numel) {
    }

    /**
     * A tensor rebuilt by torch._utils._rebuild_tensor_v2: a strided view of a storage.
     *
     * @param storage  its storage
     * @param offset   first element, in elements of the storage
     * @param shape    sizes
     * @param strides  strides in elements
     * @param position byte of data.pkl where it was built (for messages)
     */
    record Tensor(Storage storage, long offset, long[] shape, long[] strides, long position) {
        @Override
        public boolean equals(Object other) {
            return this == other;
        }

        @Override
        public int hashCode() {
            return System.identityHashCode(this);
        }

        @Override
        public String toString() {
            return "tensor " + storage.typeName() + " " + Arrays.toString(shape);
        }
    }
}
