package org.fastvmt.backend;

/**
 * Counts a backend's live allocation and its peak. A backend is used from one thread at a time,
 * but blocks may be freed from another (a cleaner), hence the synchronisation.
 */
final class MemoryMeter {

    private long allocated;
    private long peak;

    synchronized void allocated(long bytes) {
        allocated += bytes;
        peak = Math.max(peak, allocated);
    }

    synchronized void freed(long bytes) {
        allocated -= bytes;
    }

    synchronized long current() {
        return allocated;
    }

    synchronized long peak() {
        return peak;
    }

    synchronized void resetPeak() {
        peak = allocated;
    }
}
