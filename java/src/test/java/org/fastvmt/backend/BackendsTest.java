package org.fastvmt.backend;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Optional;
import java.util.function.Supplier;

import org.fastvmt.nativeabi.FastVmtLibrary;
import org.junit.jupiter.api.Test;

/** Device selection with a stand-in GPU probe, and the real probe of this machine. */
class BackendsTest {

    private static final Supplier<Optional<String>> WORKING_GPU = Optional::empty;
    private static final Supplier<Optional<String>> NO_GPU = () -> Optional.of("no CUDA device is visible");
    /** CPU and CUDAEMU requests must not probe the GPU at all. */
    private static final Supplier<Optional<String>> MUST_NOT_PROBE = () -> {
        throw new AssertionError("the GPU was probed for a device that does not need it");
    };

    @Test
    void autoPicksCudaWhenTheProbeFindsAWorkingGpu() {
        Backends.Selection selection = Backends.select(Device.AUTO, WORKING_GPU);
        assertEquals(Device.CUDA, selection.device());
    }

    @Test
    void autoFallsBackToCpuAndSaysWhy() {
        Backends.Selection selection = Backends.select(Device.AUTO, NO_GPU);
        assertEquals(Device.CPU, selection.device());
        assertTrue(selection.reason().contains("no CUDA device is visible"), selection.reason());
    }

    @Test
    void anExplicitCudaRequestFailsWithTheProbesReason() {
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> Backends.select(Device.CUDA, NO_GPU));
        assertTrue(e.getMessage().contains("no CUDA device is visible"), e.getMessage());
        assertEquals(Device.CUDA, Backends.select(Device.CUDA, WORKING_GPU).device());
    }

    @Test
    void cpuAndCudaemuAreTakenAsRequested() {
        assertEquals(Device.CPU, Backends.select(Device.CPU, MUST_NOT_PROBE).device());
        assertEquals(Device.CUDAEMU, Backends.select(Device.CUDAEMU, MUST_NOT_PROBE).device());
    }

    @Test
    void theRealProbeDecidesAuto() {
        Optional<String> problem = CudaProbe.problem();
        Backends.Selection selection = Backends.select(Device.AUTO);
        if (problem.isPresent()) {
            assertEquals(Device.CPU, selection.device());
            assertTrue(selection.reason().contains(problem.get()), selection.reason() + " vs " + problem.get());
        } else {
            assertEquals(Device.CUDA, selection.device());
        }
        List<Device> available = Backends.available();
        assertEquals(Device.CPU, available.getFirst());
        assertEquals(problem.isEmpty(), available.contains(Device.CUDA));
        assertEquals(FastVmtLibrary.locate("cudaemu").isPresent(), available.contains(Device.CUDAEMU));
    }

    @Test
    void devicesParseByName() {
        assertEquals(Device.CUDAEMU, Device.parse(" CudaEmu "));
        assertEquals(Device.AUTO, Device.parse("auto"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Device.parse("gpu"));
        assertTrue(e.getMessage().contains("cpu") && e.getMessage().contains("'gpu'"), e.getMessage());
    }

    @Test
    void theDevicePropertyChoosesTheDefault() {
        String saved = System.getProperty(Backends.DEVICE_PROPERTY);
        try {
            System.setProperty(Backends.DEVICE_PROPERTY, "cpu");
            assertEquals(Device.CPU, Backends.configuredDevice());
            System.setProperty(Backends.DEVICE_PROPERTY, " ");
            assertEquals(Device.AUTO, Backends.configuredDevice());
        } finally {
            if (saved == null) {
                System.clearProperty(Backends.DEVICE_PROPERTY);
            } else {
                System.setProperty(Backends.DEVICE_PROPERTY, saved);
            }
        }
    }

    @Test
    void openedBackendsRunTheirOwnBuild() {
        for (Device device : Backends.available()) {
            try (Backend backend = Backends.open(device)) {
                assertEquals(device.label(), backend.name());
                assertEquals(device.label(), backend.library().build());
                assertTrue(backend.library().runtimeProblem().isEmpty(), device + " reports a runtime problem");
            }
        }
    }
}
