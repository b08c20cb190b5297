package org.fastvmt.backend;

import java.lang.foreign.MemorySegment;

/**
 * A block of a backend's memory. {@link #segment()} is what native calls receive: a real host
 * segment on host backends, a zero-length segment holding the device address on cuda (never
 * dereference it from Java).
 */
public interface DeviceMemory extends AutoCloseable {

    MemorySegment segment();

    long byteSize();

    /** The segment {@code offset} bytes in (for passing a sub-range to a native call). */
    MemorySegment segment(long offset);

    @Override
    void close();
}
