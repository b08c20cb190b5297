package org.fastvmt.cli;

import java.io.PrintStream;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Turns Ctrl-C (SIGINT) or SIGTERM into a clean stop. The JVM runs shutdown hooks on those
 * signals and then halts, whatever the main thread is doing; so the hook installed here only sets
 * a flag (and, for work that cannot poll it, interrupts the worker), then waits until the worker
 * has cleaned up (deleted its temporary files) and {@link #close closed} this, before letting the
 * JVM halt. The worker polls {@link #cancelled()} between units of work and throws
 * {@link CancellationException}. The process then ends with the signal's status (130 for
 * SIGINT).
 */
final class CancelOnSignal implements AutoCloseable {

    /** How long the hook lets the worker finish its current unit of work and clean up. */
    static final long CLEANUP_WAIT_SECONDS = 300;

    private final AtomicBoolean cancelled = new AtomicBoolean();
    private final AtomicBoolean written = new AtomicBoolean();
    private final PrintStream err;
    private final CountDownLatch finished = new CountDownLatch(1);
    private final Thread hook;

    private CancelOnSignal(String what, boolean interruptWorker, PrintStream err) {
        this.err = err;
        Thread worker = Thread.currentThread();
        this.hook = new Thread(() -> {
            cancelled.set(true);
            err.println("fastvmt: interrupted: stopping " + what + " after the current unit of work and cleaning up");
            err.flush();
            if (interruptWorker) {
                worker.interrupt();
            }
            try {
                if (!finished.await(CLEANUP_WAIT_SECONDS, TimeUnit.SECONDS)) {
                    err.println("fastvmt: gave up waiting for the clean-up after " + CLEANUP_WAIT_SECONDS + " s");
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }, "fastvmt-cancel");
        Runtime.getRuntime().addShutdownHook(hook);
    }

    /**
     * Installs the hook for the calling thread's work. With {@code interruptWorker} the hook also
     * interrupts the calling thread (for blocking I/O, which then fails and cleans up).
     */
    static CancelOnSignal install(String what, boolean interruptWorker) {
        return new CancelOnSignal(what, interruptWorker, System.err);
    }

    /** Whether a signal asked to stop. */
    boolean cancelled() {
        return cancelled.get();
    }

    /** Throws {@link CancellationException} when a signal asked to stop. */
    void throwIfCancelled() {
        if (cancelled.get()) {
            throw new CancellationException("interrupted; no output was written");
        }
    }

    /** The output is in place: a signal from now on no longer undoes it. */
    void written() {
        written.set(true);
    }

    /**
     * Work is over (cleaned up or finished): says so when a signal came (the JVM halts as soon as
     * the hook returns, so later messages would be lost), then lets the hook return; without a
     * signal, removes the hook.
     */
    @Override
    public void close() {
        if (cancelled.get()) {
            err.println(written.get() ? "fastvmt: interrupted after the output was written"
                    : "fastvmt: interrupted; no output was written");
            err.flush();
        }
        finished.countDown();
        if (!cancelled.get()) {
            try {
                Runtime.getRuntime().removeShutdownHook(hook);
            } catch (IllegalStateException e) {
                // The JVM is already shutting down; the hook has seen the latch.
            }
        }
    }
}
