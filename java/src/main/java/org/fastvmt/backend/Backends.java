package org.fastvmt.backend;

import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.function.Supplier;

import org.fastvmt.nativeabi.FastVmtLibrary;

/** Chooses and opens backends. */
public final class Backends {

    /** System property with the default device: auto, cpu, cuda or cudaemu. */
    public static final String DEVICE_PROPERTY = "fastvmt.device";

    private Backends() {
    }

    /** The device a choice resolves to, and why (for the CLI to tell the user). */
    public record Selection(Device device, String reason) {
    }

    /** The device named by {@code -Dfastvmt.device}, AUTO when unset. */
    public static Device configuredDevice() {
        String value = System.getProperty(DEVICE_PROPERTY);
        return value == null || value.isBlank() ? Device.AUTO : Device.parse(value);
    }

    /** Resolves {@code requested} against what this machine can run. */
    public static Selection select(Device requested) {
        return select(requested, CudaProbe::problem);
    }

    /**
     * The selection rule, with the GPU probe passed in: AUTO becomes CUDA only when the probe
     * finds no problem; an explicit CUDA request on a machine without a working GPU fails.
     */
    static Selection select(Device requested, Supplier<Optional<String>> cudaProblem) {
        return switch (requested) {
            case CPU -> new Selection(Device.CPU, "requested");
            case CUDAEMU -> new Selection(Device.CUDAEMU, "requested (emulated CUDA: slow, for testing)");
            case CUDA -> {
                Optional<String> problem = cudaProblem.get();
                if (problem.isPresent()) {
                    throw new IllegalStateException("--device cuda was requested but " + problem.get());
                }
                yield new Selection(Device.CUDA, "requested");
            }
            case AUTO -> {
                Optional<String> problem = cudaProblem.get();
                yield problem.map(p -> new Selection(Device.CPU, "auto: " + p))
                        .orElseGet(() -> new Selection(Device.CUDA, "auto: a working GPU was found"));
            }
        };
    }

    /** Opens the backend of a resolved device (not AUTO). */
    public static Backend open(Device device) {
        return switch (device) {
            case CPU -> openCpu();
            case CUDAEMU -> new HostBackend(FastVmtLibrary.load("cudaemu"),
                    "cudaemu (libfastvmt_cudaemu: the CUDA kernels emulated on CPU threads)");
            case CUDA -> new CudaBackend(FastVmtLibrary.load("cuda"));
            case AUTO -> open(select(Device.AUTO).device());
        };
    }

    private static Backend openCpu() {
        FastVmtLibrary library = FastVmtLibrary.load("cpu");
        library.runtimeProblem().ifPresent(problem -> {
            throw new IllegalStateException("the cpu backend cannot run here: " + problem);
        });
        return new HostBackend(library, "cpu (libfastvmt_cpu, " + Runtime.getRuntime().availableProcessors()
                + " hardware threads)");
    }

    /** Every device that can run here now, in the order cpu, cudaemu, cuda (tests run on each). */
    public static List<Device> available() {
        List<Device> devices = new ArrayList<>();
        devices.add(Device.CPU);
        if (FastVmtLibrary.locate("cudaemu").isPresent()) {
            devices.add(Device.CUDAEMU);
        }
        if (CudaProbe.problem().isEmpty()) {
            devices.add(Device.CUDA);
        }
        return devices;
    }
}
