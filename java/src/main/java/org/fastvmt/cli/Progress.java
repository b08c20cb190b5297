package org.fastvmt.cli;

import me.tongfei.progressbar.ConsoleProgressBarConsumer;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;

/**
 * A progress bar on standard error for long work, shown only when the console is a terminal
 * (a bar written into a log or a pipe is noise); otherwise every call does nothing.
 */
final class Progress implements AutoCloseable {

    private final ProgressBar bar;

    private Progress(ProgressBar bar) {
        this.bar = bar;
    }

    /** Starts a bar named {@code task} counting to {@code max} (0 when unknown). */
    static Progress start(String task, long max) {
        if (System.console() == null || !System.console().isTerminal()) {
            return new Progress(null);
        }
        return new Progress(new ProgressBarBuilder()
                .setTaskName(task)
                .setInitialMax(max > 0 ? max : -1)
                .setConsumer(new ConsoleProgressBarConsumer(System.err))
                .setUpdateIntervalMillis(200)
                .build());
    }

    void step() {
        if (bar != null) {
            bar.step();
        }
    }

    /** Moves the bar to {@code done} (for work measured rather than counted). */
    void stepTo(long done) {
        if (bar != null) {
            bar.stepTo(done);
        }
    }

    /** Shows {@code message} after the bar (the state of the current unit of work). */
    void message(String message) {
        if (bar != null) {
            bar.setExtraMessage(message);
        }
    }

    /** Whether a bar is shown (false when the console is not a terminal). */
    boolean visible() {
        return bar != null;
    }

    @Override
    public void close() {
        if (bar != null) {
            bar.close();
        }
    }
}
