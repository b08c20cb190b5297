package org.fastvmt.cli;

import picocli.CommandLine.Command;

/** {@code fastvmt bench ...}: measurements. */
@Command(name = "bench", mixinStandardHelpOptions = true,
        description = "Measure the kernels on the selected device.",
        subcommands = {BenchAmfCommand.class, BenchDitCommand.class, BenchGuidanceCommand.class})
final class BenchCommand {
}
