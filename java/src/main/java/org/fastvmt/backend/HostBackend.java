package org.fastvmt.backend;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

import org.fastvmt.nativeabi.FastVmtLibrary;

/**
 * A backend whose memory is host memory: {@code cpu} (libfastvmt_cpu) and {@code cudaemu}
 * (the CUDA sources run on CPU threads, for tests).
 */
final class HostBackend implements Backend {

    private static final long ALIGNMENT = 64;

    private final FastVmtLibrary library;
    private final String description;
    private final Scratch workspace = new Scratch(this::allocate);

    HostBackend(FastVmtLibrary library, String description) {
        this.library = library;
        this.description = description;
    }

    @Override
    public String name() {
        return library.build();
    }

    @Override
    public String description() {
        return description;
    }

    @Override
    public FastVmtLibrary library() {
        return library;
    }

    @Override
    public DeviceMemory allocate(long bytes) {
        if (bytes < 0) {
            throw new IllegalArgumentException("bytes must be >= 0, got " + bytes);
        }
        Arena arena = Arena.ofShared();
        try {
            // Arena memory is zero-filled.
            return new HostMemory(arena, arena.allocate(Math.max(bytes, 1), ALIGNMENT), bytes);
        } catch (OutOfMemoryError e) {
            arena.close();
            throw new OutOfMemoryError("cannot allocate " + bytes + " bytes of host memory for " + name());
        }
    }

    @Override
    public void upload(MemorySegment src, DeviceMemory dst, long dstOffset, long bytes) {
        MemorySegment.copy(src, 0, host(dst).segment(), dstOffset, bytes);
    }

    @Override
    public void download(DeviceMemory src, long srcOffset, MemorySegment dst, long bytes) {
        MemorySegment.copy(host(src).segment(), srcOffset, dst, 0, bytes);
    }

    @Override
    public void copy(DeviceMemory src, DeviceMemory dst, long bytes) {
        MemorySegment.copy(host(src).segment(), 0, host(dst).segment(), 0, bytes);
    }

    @Override
    public void zero(DeviceMemory memory) {
        host(memory).segment().fill((byte) 0);
    }

    @Override
    public MemorySegment stream() {
        return MemorySegment.NULL;
    }

    @Override
    public void synchronize() {
        // Host kernels return when they are done.
    }

    @Override
    public MemorySegment workspace(long bytes) {
        return workspace.get(bytes);
    }

    @Override
    public void close() {
        workspace.close();
    }

    private HostMemory host(DeviceMemory memory) {
        if (memory instanceof HostMemory hostMemory) {
            return hostMemory;
        }
        throw new IllegalArgumentException("memory of another backend passed to " + name());
    }

    private static final class HostMemory implements DeviceMemory {
        private final Arena arena;
        private final MemorySegment segment;

        HostMemory(Arena arena, MemorySegment allocated, long bytes) {
            this.arena = arena;
            this.segment = allocated.asSlice(0, bytes);
        }

        @Override
        public MemorySegment segment() {
            return segment;
        }

        @Override
        public MemorySegment segment(long offset) {
            return segment.asSlice(offset);
        }

        @Override
        public long byteSize() {
            return segment.byteSize();
        }

        @Override
        public void close() {
            if (arena.scope().isAlive()) {
                arena.close();
            }
        }
    }
}
