package org.fastvmt.backend;

import java.lang.foreign.MemorySegment;
import java.util.function.LongFunction;

/** The workspace of a backend: one block, replaced by a larger one when a call needs more. */
final class Scratch implements AutoCloseable {

    private final LongFunction<DeviceMemory> allocator;
    private DeviceMemory memory;

    Scratch(LongFunction<DeviceMemory> allocator) {
        this.allocator = allocator;
    }

    /** At least {@code bytes} bytes; NULL when {@code bytes} is 0. */
    MemorySegment get(long bytes) {
        if (bytes == 0) {
            return MemorySegment.NULL;
        }
        if (memory == null || memory.byteSize() < bytes) {
            close();
            memory = allocator.apply(bytes);
        }
        return memory.segment();
    }

    @Override
    public void close() {
        if (memory != null) {
            memory.close();
            memory = null;
        }
    }
}
