package org.fastvmt.backend;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.function.IntSupplier;
import java.util.regex.Pattern;

import org.fastvmt.nativeabi.FastVmtH;
import org.fastvmt.reference.OpenBackends;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Straight through the bindings, past Java's checks: each native build refuses bad scalars and
 * pointers with a status code and an fvmt_last_error sentence naming the argument, never
 * aborting the process; a valid call afterwards succeeds and clears the sentence.
 */
class NativeArgumentTest {

    // A valid problem: 2 frames of 4x5 tokens, C 8 in 2 heads, pairs (0,0) (0,1) (1,1), tiles 2x2, window 3.
    private static final int FRAMES = 2;
    private static final int HEIGHT = 4;
    private static final int WIDTH = 5;
    private static final int CHANNELS = 8;
    private static final int HEADS = 2;
    private static final int TILE = 2;
    private static final int WINDOW = 3;
    private static final int[] PAIRS = {0, 0, 0, 1, 1, 1};
    private static final int PAIR_COUNT = 3;
    private static final int TILES = 2 * 3;
    private static final int QK_ELEMENTS = FRAMES * HEIGHT * WIDTH * CHANNELS;
    private static final int DELTA_ELEMENTS = PAIR_COUNT * HEIGHT * WIDTH * 2;

    private static final OpenBackends BACKENDS = new OpenBackends();

    @AfterAll
    static void closeBackends() {
        BACKENDS.close();
    }

    /** Every buffer a kernel of the header takes, valid for the problem above, in the backend's memory. */
    private static final class Buffers implements AutoCloseable {
        final Backend backend;
        final FastVmtH h;
        final List<DeviceMemory> owned = new ArrayList<>();
        final MemorySegment q;
        final MemorySegment k;
        final MemorySegment pairs;
        final MemorySegment delta;
        final MemorySegment origins;
        final MemorySegment dq;
        final MemorySegment dk;
        final MemorySegment weights;
        final MemorySegment loss;
        final MemorySegment count;
        final MemorySegment workspace;
        final long workspaceBytes;

        Buffers(Backend backend) {
            this.backend = backend;
            this.h = backend.library().h();
            q = floats(QK_ELEMENTS, 0.25f);
            k = floats(QK_ELEMENTS, -0.5f);
            pairs = ints(PAIRS);
            delta = floats(DELTA_ELEMENTS, 0.1f);
            origins = memory(PAIR_COUNT * TILES * 2L * Integer.BYTES);
            dq = floats(QK_ELEMENTS, 0f);
            dk = floats(QK_ELEMENTS, 0f);
            weights = floats(PAIR_COUNT, 1f);
            loss = memory(Float.BYTES);
            count = memory(Long.BYTES);
            workspaceBytes = Math.max(Math.max(fullWorkspace(), windowWorkspace()),
                    Math.max(lossWorkspace(), trackingWorkspace()));
            workspace = workspaceBytes == 0 ? MemorySegment.NULL : memory(workspaceBytes);
        }

        long fullWorkspace() {
            return h.fvmt_amf_full_workspace_bytes(FRAMES, HEIGHT, WIDTH, CHANNELS, PAIR_COUNT);
        }

        long windowWorkspace() {
            return h.fvmt_amf_window_workspace_bytes(FRAMES, HEIGHT, WIDTH, CHANNELS, TILE, TILE, WINDOW, PAIR_COUNT);
        }

        long lossWorkspace() {
            return h.fvmt_window_loss_workspace_bytes(PAIR_COUNT, HEIGHT * WIDTH);
        }

        long trackingWorkspace() {
            return h.fvmt_tracking_loss_workspace_bytes(FRAMES, HEIGHT, WIDTH, CHANNELS, TILE, TILE, PAIR_COUNT);
        }

        private MemorySegment memory(long bytes) {
            DeviceMemory block = backend.allocate(bytes);
            owned.add(block);
            return block.segment();
        }

        private MemorySegment floats(int n, float value) {
            MemorySegment segment = memory((long) n * Float.BYTES);
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment host = arena.allocate(ValueLayout.JAVA_FLOAT, n);
                for (int i = 0; i < n; i++) {
                    host.setAtIndex(ValueLayout.JAVA_FLOAT, i, value);
                }
                backend.upload(host, owned.getLast(), 0, host.byteSize());
            }
            return segment;
        }

        private MemorySegment ints(int[] values) {
            MemorySegment segment = memory((long) values.length * Integer.BYTES);
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment host = arena.allocateFrom(ValueLayout.JAVA_INT, values);
                backend.upload(host, owned.getLast(), 0, host.byteSize());
            }
            return segment;
        }

        @Override
        public void close() {
            owned.forEach(DeviceMemory::close);
        }
    }

    // ------------------------------------------------------------------------------- the calls

    private static int fullForward(Buffers b, MemorySegment q, int dtype, int heads, MemorySegment delta,
            MemorySegment workspace, long workspaceBytes) {
        return b.h.fvmt_amf_full_forward(q, b.k, dtype, FRAMES, HEIGHT, WIDTH, CHANNELS, heads, 1f, b.pairs,
                PAIR_COUNT, delta, workspace, workspaceBytes, b.backend.stream());
    }

    private static int fullBackward(Buffers b, MemorySegment k, MemorySegment dq, MemorySegment workspace,
            long workspaceBytes) {
        return b.h.fvmt_amf_full_backward(b.q, k, FastVmtH.FVMT_DTYPE_F32, FRAMES, HEIGHT, WIDTH, CHANNELS, HEADS,
                1f, b.pairs, PAIR_COUNT, b.delta, dq, b.dk, workspace, workspaceBytes, b.backend.stream());
    }

    private static int windowForward(Buffers b, int tileH, int tileW, int window, float temperature,
            MemorySegment origins, MemorySegment workspace, long workspaceBytes) {
        return b.h.fvmt_amf_window_forward(b.q, b.k, FastVmtH.FVMT_DTYPE_F32, FRAMES, HEIGHT, WIDTH, CHANNELS,
                HEADS, temperature, tileH, tileW, window, b.pairs, PAIR_COUNT, b.delta, origins, workspace,
                workspaceBytes, b.backend.stream());
    }

    private static int windowBackward(Buffers b, int window, MemorySegment origins, MemorySegment dk,
            MemorySegment workspace, long workspaceBytes) {
        return b.h.fvmt_amf_window_backward(b.q, b.k, FastVmtH.FVMT_DTYPE_F32, FRAMES, HEIGHT, WIDTH, CHANNELS,
                HEADS, 1f, TILE, TILE, window, b.pairs, PAIR_COUNT, origins, b.delta, b.dq, dk, workspace,
                workspaceBytes, b.backend.stream());
    }

    private static int trackingForward(Buffers b, int window, int tileW, MemorySegment loss,
            MemorySegment workspace, long workspaceBytes) {
        return b.h.fvmt_tracking_loss_forward(b.k, FastVmtH.FVMT_DTYPE_F32, FRAMES, HEIGHT, WIDTH, CHANNELS, TILE,
                tileW, window, b.pairs, PAIR_COUNT, b.origins, loss, workspace, workspaceBytes,
                b.backend.stream());
    }

    private static int trackingBackward(Buffers b, int window, MemorySegment dk, MemorySegment workspace,
            long workspaceBytes) {
        return b.h.fvmt_tracking_loss_backward(b.k, FastVmtH.FVMT_DTYPE_F32, FRAMES, HEIGHT, WIDTH, CHANNELS, TILE,
                TILE, window, b.pairs, PAIR_COUNT, b.origins, 1f, dk, workspace, workspaceBytes,
                b.backend.stream());
    }

    private static int lossForward(Buffers b, int pairCount, MemorySegment loss, MemorySegment workspace,
            long workspaceBytes) {
        return b.h.fvmt_window_loss_forward(b.delta, b.delta, b.weights, pairCount, HEIGHT * WIDTH, loss,
                workspace, workspaceBytes, b.backend.stream());
    }

    private static int adamw(Buffers b, MemorySegment param, MemorySegment gradCache, long n) {
        return b.h.fvmt_adamw_step(param, b.delta, gradCache, b.dq, b.dk, n, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, 1,
                b.backend.stream());
    }

    // ------------------------------------------------------------------------------- the tests

    @ParameterizedTest(name = "{0}")
    @MethodSource("org.fastvmt.reference.OpenBackends#devices")
    void evenWindowsAreRefused(Device device) {
        try (Buffers b = new Buffers(BACKENDS.get(device))) {
            long ws = b.workspaceBytes;
            assertRefused(b, FastVmtH.FVMT_ERR_INVALID_ARGUMENT, "window",
                    () -> windowForward(b, TILE, TILE, 4, 1f, b.origins, b.workspace, ws));
            assertRefused(b, FastVmtH.FVMT_ERR_INVALID_ARGUMENT, "window",
                    () -> windowForward(b, TILE, TILE, 0, 1f, b.origins, b.workspace, ws));
            assertRefused(b, FastVmtH.FVMT_ERR_INVALID_ARGUMENT, "window",
                    () -> windowBackward(b, 4, b.origins, b.dk, b.workspace, ws));
            assertRefused(b, FastVmtH.FVMT_ERR_INVALID_ARGUMENT, "window",
                    () -> trackingForward(b, 4, TILE, b.loss, b.workspace, ws));
            assertRefused(b, FastVmtH.FVMT_ERR_INVALID_ARGUMENT, "window",
                    () -> trackingBackward(b, -1, b.dk, b.workspace, ws));
            assertValidCallSucceeds(b);
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("org.fastvmt.reference.OpenBackends#devices")
    void headsMustDivideTheChannels(Device device) {
        try (Buffers b = new Buffers(BACKENDS.get(device))) {
            assertRefused(b, FastVmtH.FVMT_ERR_INVALID_ARGUMENT, "heads",
                    () -> fullForward(b, b.q, FastVmtH.FVMT_DTYPE_F32, 3, b.delta, b.workspace, b.workspaceBytes));
            assertRefused(b, FastVmtH.FVMT_ERR_INVALID_ARGUMENT, "heads",
                    () -> fullForward(b, b.q, FastVmtH.FVMT_DTYPE_F32, 0, b.delta, b.workspace, b.workspaceBytes));
            assertRefused(b, FastVmtH.FVMT_ERR_INVALID_ARGUMENT, "temperature",
                    () -> windowForward(b, TILE, TILE, WINDOW, Float.NaN, b.origins, b.workspace, b.workspaceBytes));
            assertRefused(b, FastVmtH.FVMT_ERR_INVALID_ARGUMENT, "temperature",
                    () -> windowForward(b, TILE, TILE, WINDOW, -1f, b.origins, b.workspace, b.workspaceBytes));
            assertValidCallSucceeds(b);
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("org.fastvmt.reference.OpenBackends#devices")
    void tilesMustFitTheFrame(Device device) {
        try (Buffers b = new Buffers(BACKENDS.get(device))) {
            long ws = b.workspaceBytes;
            assertRefused(b, FastVmtH.FVMT_ERR_INVALID_ARGUMENT, "tile_h",
                    () -> windowForward(b, 0, TILE, WINDOW, 1f, b.origins, b.workspace, ws));
            assertRefused(b, FastVmtH.FVMT_ERR_INVALID_ARGUMENT, "tile_w",
                    () -> windowForward(b, TILE, 0, WINDOW, 1f, b.origins, b.workspace, ws));
            assertRefused(b, FastVmtH.FVMT_ERR_INVALID_ARGUMENT, "tile_h",
                    () -> windowForward(b, HEIGHT + 1, TILE, WINDOW, 1f, b.origins, b.workspace, ws));
            assertRefused(b, FastVmtH.FVMT_ERR_INVALID_ARGUMENT, "tile_w",
                    () -> trackingForward(b, WINDOW, WIDTH + 1, b.loss, b.workspace, ws));
            assertValidCallSucceeds(b);
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("org.fastvmt.reference.OpenBackends#devices")
    void nullPointersAreRefused(Device device) {
        try (Buffers b = new Buffers(BACKENDS.get(device))) {
            MemorySegment nil = MemorySegment.NULL;
            long ws = b.workspaceBytes;
            int f32 = FastVmtH.FVMT_DTYPE_F32;
            int invalid = FastVmtH.FVMT_ERR_INVALID_ARGUMENT;
            assertRefused(b, invalid, "q", () -> fullForward(b, nil, f32, HEADS, b.delta, b.workspace, ws));
            assertRefused(b, invalid, "delta", () -> fullForward(b, b.q, f32, HEADS, nil, b.workspace, ws));
            assertRefused(b, invalid, "k", () -> fullBackward(b, nil, b.dq, b.workspace, ws));
            assertRefused(b, invalid, "dq", () -> fullBackward(b, b.k, nil, b.workspace, ws));
            assertRefused(b, invalid, "window_origins",
                    () -> windowForward(b, TILE, TILE, WINDOW, 1f, nil, b.workspace, ws));
            assertRefused(b, invalid, "window_origins",
                    () -> windowBackward(b, WINDOW, nil, b.dk, b.workspace, ws));
            assertRefused(b, invalid, "dk", () -> windowBackward(b, WINDOW, b.origins, nil, b.workspace, ws));
            assertRefused(b, invalid, "loss", () -> trackingForward(b, WINDOW, TILE, nil, b.workspace, ws));
            assertRefused(b, invalid, "dk", () -> trackingBackward(b, WINDOW, nil, b.workspace, ws));
            assertRefused(b, invalid, "loss", () -> lossForward(b, PAIR_COUNT, nil, b.workspace, ws));
            assertRefused(b, invalid, "param", () -> adamw(b, nil, b.weights, 3));
            assertRefused(b, invalid, "grad_cache", () -> adamw(b, b.loss, nil, 1));
            assertRefused(b, invalid, "count",
                    () -> b.h.fvmt_count_nonfinite(b.q, f32, QK_ELEMENTS, nil, b.backend.stream()));
            assertRefused(b, invalid, "pair_count", () -> lossForward(b, 0, b.loss, b.workspace, ws));
            assertValidCallSucceeds(b);
        }
    }

    /**
     * A kernel that needs workspace refuses a smaller size and a NULL pointer; one that needs none
     * (its *_workspace_bytes is 0) runs with NULL and 0, as the header allows.
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("org.fastvmt.reference.OpenBackends#devices")
    void workspacesAreCheckedAgainstTheirSize(Device device) {
        try (Buffers b = new Buffers(BACKENDS.get(device))) {
            int f32 = FastVmtH.FVMT_DTYPE_F32;
            checkWorkspace(b, "fvmt_amf_full_forward", b.fullWorkspace(),
                    (ws, bytes) -> fullForward(b, b.q, f32, HEADS, b.delta, ws, bytes));
            checkWorkspace(b, "fvmt_amf_full_backward", b.fullWorkspace(),
                    (ws, bytes) -> fullBackward(b, b.k, b.dq, ws, bytes));
            checkWorkspace(b, "fvmt_amf_window_forward", b.windowWorkspace(),
                    (ws, bytes) -> windowForward(b, TILE, TILE, WINDOW, 1f, b.origins, ws, bytes));
            checkWorkspace(b, "fvmt_amf_window_backward", b.windowWorkspace(),
                    (ws, bytes) -> windowBackward(b, WINDOW, b.origins, b.dk, ws, bytes));
            checkWorkspace(b, "fvmt_window_loss_forward", b.lossWorkspace(),
                    (ws, bytes) -> lossForward(b, PAIR_COUNT, b.loss, ws, bytes));
            checkWorkspace(b, "fvmt_tracking_loss_forward", b.trackingWorkspace(),
                    (ws, bytes) -> trackingForward(b, WINDOW, TILE, b.loss, ws, bytes));
            checkWorkspace(b, "fvmt_tracking_loss_backward", b.trackingWorkspace(),
                    (ws, bytes) -> trackingBackward(b, WINDOW, b.dk, ws, bytes));
            assertValidCallSucceeds(b);
        }
    }

    private interface WorkspaceCall {
        int run(MemorySegment workspace, long workspaceBytes);
    }

    private static void checkWorkspace(Buffers b, String function, long needed, WorkspaceCall call) {
        if (needed == 0) {
            assertEquals(FastVmtH.FVMT_OK, call.run(MemorySegment.NULL, 0),
                    function + " needs no workspace, so NULL and 0 must do: " + lastError(b.h));
            b.backend.synchronize();
            return;
        }
        assertRefused(b, FastVmtH.FVMT_ERR_WORKSPACE_TOO_SMALL, "workspace_bytes",
                () -> call.run(b.workspace, needed - 1));
        assertRefused(b, FastVmtH.FVMT_ERR_INVALID_ARGUMENT, "workspace", () -> call.run(MemorySegment.NULL, needed));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("org.fastvmt.reference.OpenBackends#devices")
    void dtypesAreChecked(Device device) {
        try (Buffers b = new Buffers(BACKENDS.get(device))) {
            assertRefused(b, FastVmtH.FVMT_ERR_INVALID_ARGUMENT, "dtype",
                    () -> fullForward(b, b.q, 7, HEADS, b.delta, b.workspace, b.workspaceBytes));
            if (!b.backend.library().supportsDtype(FastVmtH.FVMT_DTYPE_BF16)) {
                assertRefused(b, FastVmtH.FVMT_ERR_UNSUPPORTED, "bf16",
                        () -> fullForward(b, b.q, FastVmtH.FVMT_DTYPE_BF16, HEADS, b.delta, b.workspace,
                                b.workspaceBytes));
            }
            assertValidCallSucceeds(b);
        }
    }

    /**
     * The cpu build reads pairs on the host and checks them (validate.hpp: check_pairs). The CUDA
     * sources leave that to the caller (pairs are device memory there), so only cpu is asked.
     */
    @Test
    void theCpuBuildChecksThePairIndices() {
        try (Buffers b = new Buffers(BACKENDS.get(Device.CPU))) {
            MemorySegment outOfRange = b.ints(new int[] {0, 0, 0, 2, 1, 1});
            assertRefused(b, FastVmtH.FVMT_ERR_INVALID_ARGUMENT, "pairs",
                    () -> b.h.fvmt_amf_full_forward(b.q, b.k, FastVmtH.FVMT_DTYPE_F32, FRAMES, HEIGHT, WIDTH,
                            CHANNELS, HEADS, 1f, outOfRange, PAIR_COUNT, b.delta, b.workspace, b.workspaceBytes,
                            b.backend.stream()));
            assertValidCallSucceeds(b);
        }
    }

    // ------------------------------------------------------------------------------- assertions

    private static String lastError(FastVmtH h) {
        return h.fvmt_last_error().reinterpret(4096).getString(0);
    }

    private static void assertRefused(Buffers b, int status, String argument, IntSupplier call) {
        int got = call.getAsInt();
        String message = lastError(b.h);
        assertEquals(status, got, "status of a call with a bad " + argument + " (last error: " + message + ")");
        assertTrue(Pattern.compile("(?<![\\w])" + Pattern.quote(argument) + "(?![\\w])").matcher(message).find(),
                "fvmt_last_error should name " + argument + ": '" + message + "'");
    }

    /** The process is alive and the library usable: a valid call succeeds and leaves no error behind. */
    private static void assertValidCallSucceeds(Buffers b) {
        int status = windowForward(b, TILE, TILE, WINDOW, 1f, b.origins, b.workspace, b.workspaceBytes);
        assertEquals(FastVmtH.FVMT_OK, status, "a valid call after the refusals: " + lastError(b.h));
        b.backend.synchronize();
        assertEquals("", lastError(b.h), "fvmt_last_error after a successful call");
    }
}
