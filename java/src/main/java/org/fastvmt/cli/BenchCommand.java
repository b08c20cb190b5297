package org.fastvmt.cli;

import picocli.CommandLine.Command;

/** {@code fastvmt bench ...}: measurements. */
@Command(name = "bench", mixinStandardHelpOptions = true,
        description = "Measure the kernels on the selected device.",
        subcommands = {BenchAmfCommand.class, BenchDitCommand.class, BenchGuidanceCommand.class})
final class BenchCommand {

    /** Refuses a count option below 1, naming it: "--repeats must be >= 1, got 0". */
    static void requireAtLeastOne(String option, int value) {
        if (value < 1) {
            throw new IllegalArgumentException(option + " must be >= 1, got " + value);
        }
    }
}
