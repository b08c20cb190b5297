package org.fastvmt.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The {@code fastvmt} command line. Exit codes: 0 success, 1 failure, 2 bad usage or input. */
@Command(name = "fastvmt",
        mixinStandardHelpOptions = true,
        versionProvider = Version.class,
        description = "FastVMT video motion transfer on the Wan2.1 DiT: a reference clip and a prompt in, a video of "
                + "the prompt that moves like the clip out (transfer); its kernels and model on CPU and CUDA.",
        subcommands = {TransferCommand.class, MotionCommand.class, InitModelCommand.class, ConvertCommand.class,
            BenchCommand.class, CommandLine.HelpCommand.class})
public final class Main {

    private Main() {
    }

    public static void main(String[] args) {
        System.exit(run(args));
    }

    /** Runs the CLI and returns its exit code (for tests). */
    public static int run(String... args) {
        return commandLine().execute(args);
    }

    static CommandLine commandLine() {
        CommandLine commandLine = new CommandLine(new Main());
        commandLine.setExecutionExceptionHandler(new ErrorHandler());
        commandLine.setCaseInsensitiveEnumValuesAllowed(true);
        return commandLine;
    }
}
