package org.fastvmt.nativeabi;

import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.Locale;
import java.util.Optional;

/**
 * One loaded build of the native kernels ({@code cpu}, {@code cuda} or {@code cudaemu}) with its
 * bindings, and the translation of status codes into exceptions.
 *
 * <p>Libraries are found, in order, in the folder named by the system property
 * {@code fastvmt.native.dir}, then as class-path resources under
 * {@code /native/<os>-<arch>/}. A resource inside a jar is copied once to a per-content folder
 * under {@code java.io.tmpdir}, because the dynamic loader needs a file.
 */
public final class FastVmtLibrary {

    /** System property naming a folder that holds libfastvmt_*.so. */
    public static final String NATIVE_DIR_PROPERTY = "fastvmt.native.dir";

    private final String build;
    private final Path path;
    private final FastVmtH bindings;

    private FastVmtLibrary(String build, Path path, FastVmtH bindings) {
        this.build = build;
        this.path = path;
        this.bindings = bindings;
    }

    /**
     * Loads and binds {@code libfastvmt_<build>}.
     *
     * @throws NativeLibraryException if it is absent or cannot be loaded
     */
    public static FastVmtLibrary load(String build) {
        Path path = locate(build).orElseThrow(() -> new NativeLibraryException("libfastvmt_" + build
                + " was not found for " + platform() + " (looked in -D" + NATIVE_DIR_PROPERTY
                + " and on the class path under /native/" + platform() + "/); build it with mvn package"));
        preferPassiveOpenMpWaiting();
        SymbolLookup lookup;
        try {
            lookup = SymbolLookup.libraryLookup(path, Arena.global());
        } catch (IllegalArgumentException e) {
            throw new NativeLibraryException("cannot load " + path + ": " + e.getMessage(), e);
        }
        FastVmtH bindings = FastVmtH.bind("libfastvmt_" + build, lookup);
        String reported = string(bindings.fvmt_build_name());
        if (!reported.equals(build)) {
            throw new NativeLibraryException(path + " reports build '" + reported + "', expected '" + build + "'");
        }
        return new FastVmtLibrary(build, path, bindings);
    }

    /**
     * Sets OMP_WAIT_POLICY=passive unless the user chose a policy. OpenMP threads otherwise spin
     * for a while after each parallel region, and that spinning takes the cores from the
     * OpenBLAS threads of the GEMM that follows (a DiT block alternates the two: its bf16 1536²
     * GEMMs ran 15% slower). libgomp reads the variable when it is loaded, which is when the
     * first libfastvmt is, so setting it here covers the CLI, the tests and JMH forks alike.
     */
    private static synchronized void preferPassiveOpenMpWaiting() {
        if (System.getenv("OMP_WAIT_POLICY") != null) {
            return;
        }
        Linker linker = Linker.nativeLinker();
        MethodHandle setenv = linker.defaultLookup().find("setenv")
                .map(address -> linker.downcallHandle(address, FunctionDescriptor.of(ValueLayout.JAVA_INT,
                        ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.JAVA_INT)))
                .orElse(null);
        if (setenv == null) {
            return; // not a POSIX libc: the default policy only costs speed
        }
        try (Arena arena = Arena.ofConfined()) {
            // setenv fails only without memory; the default policy then merely costs speed.
            int ignored = (int) setenv.invokeExact(arena.allocateFrom("OMP_WAIT_POLICY"),
                    arena.allocateFrom("passive"), 0);
        } catch (Throwable e) {
            throw new NativeLibraryException("cannot set OMP_WAIT_POLICY: " + e, e);
        }
    }

    /** Where {@code libfastvmt_<build>} is, if it was built. */
    public static Optional<Path> locate(String build) {
        String fileName = "libfastvmt_" + build + ".so";
        String dir = System.getProperty(NATIVE_DIR_PROPERTY);
        if (dir != null && !dir.isBlank()) {
            Path candidate = Path.of(dir).resolve(fileName);
            return Files.isRegularFile(candidate) ? Optional.of(candidate) : Optional.empty();
        }
        URL resource = FastVmtLibrary.class.getResource("/native/" + platform() + "/" + fileName);
        if (resource == null) {
            return Optional.empty();
        }
        if ("file".equals(resource.getProtocol())) {
            try {
                return Optional.of(Path.of(resource.toURI()));
            } catch (URISyntaxException e) {
                throw new NativeLibraryException("bad resource URL " + resource, e);
            }
        }
        return Optional.of(extract(resource, fileName));
    }

    /** {@code linux-x86_64}, {@code linux-aarch64}, ...: the resource folder of this platform. */
    public static String platform() {
        String os = System.getProperty("os.name").toLowerCase(Locale.ROOT);
        String arch = System.getProperty("os.arch").toLowerCase(Locale.ROOT);
        String osName = os.contains("linux") ? "linux" : os.contains("mac") ? "macosx" : os.split("\\s+")[0];
        String archName = switch (arch) {
            case "amd64", "x86_64" -> "x86_64";
            case "aarch64", "arm64" -> "aarch64";
            default -> arch;
        };
        return osName + "-" + archName;
    }

    private static Path extract(URL resource, String fileName) {
        try {
            byte[] content;
            try (InputStream in = resource.openStream()) {
                content = in.readAllBytes();
            }
            String digest = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(content), 0, 8);
            Path dir = Path.of(System.getProperty("java.io.tmpdir"),
                    "fastvmt-native-" + System.getProperty("user.name"), digest);
            Path target = dir.resolve(fileName);
            if (Files.isRegularFile(target) && Files.size(target) == content.length) {
                return target;
            }
            Files.createDirectories(dir);
            // Write beside the target and move, so a concurrent loader never sees half a file.
            Path temp = Files.createTempFile(dir, fileName, ".part");
            Files.write(temp, content);
            Files.move(temp, target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
            return target;
        } catch (IOException | NoSuchAlgorithmException e) {
            throw new NativeLibraryException("cannot extract " + resource + ": " + e.getMessage(), e);
        }
    }

    /** "cpu", "cuda" or "cudaemu". */
    public String build() {
        return build;
    }

    /** The shared library file. */
    public Path path() {
        return path;
    }

    /** The raw bindings. */
    public FastVmtH h() {
        return bindings;
    }

    /** Whether Q/K of this FVMT_DTYPE_* are accepted. */
    public boolean supportsDtype(int dtype) {
        return bindings.fvmt_supports_dtype(dtype) == 1;
    }

    /** Why this build cannot run here, or empty when it can (fvmt_runtime_check). */
    public Optional<String> runtimeProblem() {
        int status = bindings.fvmt_runtime_check();
        if (status == FastVmtH.FVMT_OK) {
            return Optional.empty();
        }
        return Optional.of(describe(status));
    }

    /**
     * Throws {@link NativeCallException} with the library's own sentence when {@code status} is
     * not FVMT_OK. Call it on the thread that made the call (the sentence is thread-local).
     */
    public void check(int status) {
        if (status != FastVmtH.FVMT_OK) {
            throw new NativeCallException(status, describe(status));
        }
    }

    private String describe(int status) {
        String detail = string(bindings.fvmt_last_error());
        String kind = string(bindings.fvmt_status_message(status));
        return "libfastvmt_" + build + ": " + (detail.isEmpty() ? kind : detail) + " (" + kind + ")";
    }

    /** Reads a NUL-terminated C string returned by the library. */
    static String string(MemorySegment cString) {
        if (cString.equals(MemorySegment.NULL)) {
            return "";
        }
        return cString.reinterpret(Long.MAX_VALUE).getString(0);
    }

    @Override
    public String toString() {
        return "libfastvmt_" + build + " (" + path + ")";
    }
}
