package org.fastvmt.cli;

import java.io.PrintWriter;

import picocli.CommandLine.Option;

import org.fastvmt.backend.Backend;
import org.fastvmt.backend.Backends;
import org.fastvmt.backend.Device;

/** {@code --device}: shared by every command that runs kernels. */
final class DeviceOptions {

    @Option(names = "--device", paramLabel = "auto|cpu|cuda|cudaemu",
            description = "Where kernels run: auto (cuda when a GPU works, else cpu), cpu, cuda, "
                    + "or cudaemu (the CUDA kernels emulated on the CPU, for testing). "
                    + "Default: -Dfastvmt.device, else auto.")
    private String device;

    /** Opens the chosen backend and says on {@code err} which one runs and why. */
    Backend open(PrintWriter err) {
        Device requested = device == null ? Backends.configuredDevice() : Device.parse(device);
        Backends.Selection selection = Backends.select(requested);
        Backend backend = Backends.open(selection.device());
        err.println("fastvmt: device " + backend.description() + " [" + selection.reason() + "]");
        err.flush();
        return backend;
    }
}
