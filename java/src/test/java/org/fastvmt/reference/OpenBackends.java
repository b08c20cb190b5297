package org.fastvmt.reference;

import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import org.fastvmt.backend.Backend;
import org.fastvmt.backend.Backends;
import org.fastvmt.backend.Device;
import org.fastvmt.nativeabi.FastVmtH;
import org.fastvmt.nativeabi.FastVmtLibrary;
import org.junit.jupiter.params.provider.Arguments;

/**
 * The backends a test class runs on, opened once per class and closed after it. Tests take a
 * {@link Device} from {@link #devices()} (cpu, cudaemu, and cuda when a GPU works here).
 */
public final class OpenBackends implements AutoCloseable {

    private final Map<Device, Backend> open = new EnumMap<>(Device.class);

    /** Every device that can run here: the parameter source of backend tests. */
    public static Stream<Device> devices() {
        return Backends.available().stream();
    }

    /** (device, case) for every device and each of {@code cases}: the source of case-matrix tests. */
    public static Stream<Arguments> onEveryDevice(List<?> cases) {
        return devices().flatMap(device -> cases.stream().map(c -> Arguments.of(device, c)));
    }

    /** The devices whose build accepts BF16 Q and K (fvmt_supports_dtype). */
    public static Stream<Device> devicesWithBf16() {
        return devices().filter(device -> FastVmtLibrary.load(device.label()).supportsDtype(FastVmtH.FVMT_DTYPE_BF16));
    }

    public Backend get(Device device) {
        return open.computeIfAbsent(device, Backends::open);
    }

    @Override
    public void close() {
        open.values().forEach(Backend::close);
        open.clear();
    }
}
