package org.fastvmt.backend;

import java.util.Arrays;
import java.util.Locale;
import java.util.stream.Collectors;

/** What a user asks for with {@code --device} or {@code -Dfastvmt.device}. */
public enum Device {
    /** cuda when a GPU really works, else cpu. */
    AUTO,
    CPU,
    CUDA,
    /** The CUDA kernels emulated on CPU threads: slow, for testing the CUDA sources without a GPU. */
    CUDAEMU;

    /** Parses "auto", "cpu", "cuda" or "cudaemu" (any case). */
    public static Device parse(String text) {
        for (Device device : values()) {
            if (device.name().equalsIgnoreCase(text.strip())) {
                return device;
            }
        }
        throw new IllegalArgumentException("device must be one of " + Arrays.stream(values())
                .map(Device::label).collect(Collectors.joining(", ")) + "; got '" + text + "'");
    }

    /** The lower-case name used on the command line. */
    public String label() {
        return name().toLowerCase(Locale.ROOT);
    }
}
