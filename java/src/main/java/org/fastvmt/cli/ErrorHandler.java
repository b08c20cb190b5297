package org.fastvmt.cli;

import java.io.UncheckedIOException;

import picocli.CommandLine;
import picocli.CommandLine.IExecutionExceptionHandler;
import picocli.CommandLine.ParseResult;

/**
 * Turns exceptions into one line on standard error and an exit code: bad input (an argument
 * out of its domain, an unreadable file) is 2 like a usage error, anything else is 1.
 */
final class ErrorHandler implements IExecutionExceptionHandler {

    static final int EXIT_FAILURE = 1;
    static final int EXIT_USAGE = 2;

    @Override
    public int handleExecutionException(Exception e, CommandLine commandLine, ParseResult parseResult) {
        boolean badInput = e instanceof IllegalArgumentException || e instanceof UserInputException;
        String message = e instanceof UncheckedIOException io ? io.getCause().getMessage() : e.getMessage();
        commandLine.getErr().println("fastvmt: error: " + (message == null ? e.toString() : message));
        if (System.getenv("FASTVMT_DEBUG") != null) {
            e.printStackTrace(commandLine.getErr());
        }
        return badInput ? EXIT_USAGE : EXIT_FAILURE;
    }
}
