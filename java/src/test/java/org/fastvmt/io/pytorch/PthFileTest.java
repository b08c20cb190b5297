package org.fastvmt.io.pytorch;

import static org.fastvmt.io.pytorch.TorchSaveFixture.contiguous;
import static org.fastvmt.io.pytorch.TorchSaveFixture.rounded;
import static org.fastvmt.io.pytorch.TorchSaveFixture.strided;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;
import java.util.SplittableRandom;

import org.fastvmt.backend.Backend;
import org.fastvmt.backend.Device;
import org.fastvmt.io.safetensors.SafetensorsDType;
import org.fastvmt.reference.OpenBackends;
import org.fastvmt.tensor.DType;
import org.fastvmt.tensor.Tensor;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The restricted .pth reader on checkpoints this test builds in the torch.save format: every dtype,
 * a scalar, storage offsets, shared and strided storages, nested dicts, deflated records, loading
 * into backends; and a refusal naming the file and the problem for every way a checkpoint can be
 * malicious or broken, with proof that a malicious pickle ran nothing.
 */
class PthFileTest {

    private static final OpenBackends BACKENDS = new OpenBackends();

    @TempDir
    Path dir;

    @AfterAll
    static void closeBackends() {
        BACKENDS.close();
    }

    private static float[] random(int n, long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        float[] out = new float[n];
        for (int i = 0; i < n; i++) {
            out[i] = (float) (random.nextDouble() * 8 - 4);
        }
        return out;
    }

    private static int[] bits(float[] values) {
        int[] out = new int[values.length];
        for (int i = 0; i < values.length; i++) {
            out[i] = Float.floatToRawIntBits(values[i]);
        }
        return out;
    }

    private static float[] range(float[] values, int from, int count) {
        float[] out = new float[count];
        System.arraycopy(values, from, out, 0, count);
        return out;
    }

    /** A state dict of every kind of tensor the reader must handle. */
    private static TorchSaveFixture everyKind() {
        float[] weight = random(6, 1);
        float[] shared = random(10, 2);
        float[] half = {1.5f, -2f, 65504f, 6.1e-5f, 0.333f, -0f};
        float[] brain = random(4, 3);
        return new TorchSaveFixture()
                .storage("0", SafetensorsDType.F32, weight)
                .storage("1", SafetensorsDType.BF16, brain)
                .storage("2", SafetensorsDType.F16, half)
                .storage("3", SafetensorsDType.F32, 42.5f)
                .storage("4", SafetensorsDType.F32, shared)
                .put("blocks.0.weight", contiguous("0", 0, 2, 3))
                .put("blocks.0.norm", contiguous("1", 0, 4))
                .put("head.half", contiguous("2", 0, 3, 2))
                .put("scale", contiguous("3", 0))
                // two tensors in one storage, the second from a non-zero offset
                .put("shared.a", contiguous("4", 0, 3))
                .put("shared.b", contiguous("4", 5, 2, 2))
                .put("empty", contiguous("4", 0, 0, 7));
    }

    // ---- reading ----

    @Test
    void readsEveryDtypeScalarOffsetAndSharedStorageExactly() throws IOException {
        TorchSaveFixture fixture = everyKind();
        Path file = fixture.write(dir.resolve("model.pth"));
        float[] weight = random(6, 1);
        float[] shared = random(10, 2);
        float[] brain = random(4, 3);
        try (PthFile read = PthFile.open(file)) {
            assertEquals(List.of("blocks.0.weight", "blocks.0.norm", "head.half", "scale", "shared.a", "shared.b",
                    "empty"), read.names());
            assertEquals("archive", read.archiveName());
            assertEquals(OptionalInt.of(3), read.version());
            assertEquals(List.of(), read.skipped());

            assertEquals(SafetensorsDType.F32, read.info("blocks.0.weight").dtype());
            assertArrayEquals(new long[] {2, 3}, read.info("blocks.0.weight").shape());
            assertArrayEquals(bits(weight), bits(read.readF32("blocks.0.weight")));

            assertEquals(SafetensorsDType.BF16, read.info("blocks.0.norm").dtype());
            assertArrayEquals(bits(rounded(SafetensorsDType.BF16, brain)), bits(read.readF32("blocks.0.norm")));

            assertEquals(SafetensorsDType.F16, read.info("head.half").dtype());
            assertArrayEquals(bits(rounded(SafetensorsDType.F16, 1.5f, -2f, 65504f, 6.1e-5f, 0.333f, -0f)),
                    bits(read.readF32("head.half")));

            assertArrayEquals(new long[0], read.info("scale").shape());
            assertArrayEquals(new float[] {42.5f}, read.readF32("scale"));

            assertEquals("4", read.info("shared.b").storageKey());
            assertEquals(5, read.info("shared.b").storageOffset());
            assertArrayEquals(bits(range(shared, 0, 3)), bits(read.readF32("shared.a")));
            assertArrayEquals(bits(range(shared, 5, 4)), bits(read.readF32("shared.b")));

            assertArrayEquals(new long[] {0, 7}, read.info("empty").shape());
            assertEquals(0, read.readF32("empty").length);
            assertEquals(0, read.bytes("empty").byteSize());

            // bytes() is the stored little-endian data of exactly the tensor's size
            MemorySegment bytes = read.bytes("shared.b");
            assertEquals(16, bytes.byteSize());
            assertEquals(shared[5], bytes.get(ValueLayout.JAVA_FLOAT_UNALIGNED, 0));
        }
    }

    @Test
    void theFixtureWritesThePickleCPythonWrites() {
        // One tensor, byte for byte what CPython 3 pickles for
        // OrderedDict(w=_rebuild_tensor_v2(storage, 0, (2,), (1,), False, OrderedDict())) at protocol 2,
        // with the state dict's _metadata: the shape of torch.save's data.pkl.
        byte[] pickle = new TorchSaveFixture().storage("0", SafetensorsDType.F32, 1f, 2f)
                .put("w", contiguous("0", 0, 2)).pickle();
        String expected = "\u0080\u0002ccollections\nOrderedDict\nq\u0000)Rq\u0001X\u0001\u0000\u0000\u0000wq\u0002"
                + "ctorch._utils\n_rebuild_tensor_v2\nq\u0003((X\u0007\u0000\u0000\u0000storageq\u0004"
                + "ctorch\nFloatStorage\nq\u0005X\u0001\u0000\u0000\u00000q\u0006X\u0003\u0000\u0000\u0000cpuq\u0007"
                + "K\u0002tq\bQK\u0000K\u0002\u0085q\tK\u0001\u0085q\n\u0089h\u0000)Rq\u000btq\fRq\rs"
                + "}q\u000eX\t\u0000\u0000\u0000_metadataq\u000fh\u0000)Rq\u0010X\u0000\u0000\u0000\u0000q\u0011"
                + "}q\u0012X\u0007\u0000\u0000\u0000versionq\u0013K\u0001sssb.";
        assertEquals(expected, new String(pickle, StandardCharsets.ISO_8859_1));
    }

    @Test
    void aStridedTensorIsCopiedToRowMajorOrder() throws IOException {
        float[] values = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
        Path file = new TorchSaveFixture().storage("0", SafetensorsDType.F32, values)
                // the transpose of the 3x4 matrix at offset 0: shape (4, 3), stride (1, 4)
                .put("transposed", strided("0", 0, new long[] {4, 3}, new long[] {1, 4}))
                // every second column of rows 1..2: shape (2, 2), stride (4, 2), offset 4
                .put("picked", strided("0", 4, new long[] {2, 2}, new long[] {4, 2}))
                // a broadcast row: stride 0
                .put("broadcast", strided("0", 1, new long[] {3, 2}, new long[] {0, 1}))
                .write(dir.resolve("strided.pth"));
        try (PthFile read = PthFile.open(file)) {
            assertFalse(read.info("transposed").contiguous());
            assertArrayEquals(new float[] {0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11}, read.readF32("transposed"));
            assertArrayEquals(new float[] {4, 6, 8, 10}, read.readF32("picked"));
            assertArrayEquals(new float[] {1, 2, 1, 2, 1, 2}, read.readF32("broadcast"));
        }
    }

    @Test
    void nestedDictsAreFlattenedWithDotsAndOtherValuesAreSkipped() throws IOException {
        Map<String, Object> encoder = new LinkedHashMap<>();
        encoder.put("w", contiguous("0", 0, 2));
        Map<String, Object> model = new LinkedHashMap<>();
        model.put("encoder", encoder);
        model.put("bias", contiguous("0", 1, 1));
        Path file = new TorchSaveFixture().storage("0", SafetensorsDType.F32, 3f, 4f)
                .put("model", model)
                .put("epoch", 12L)
                .put("lr", 0.5)
                .put("note", "trained")
                .put("flags", List.of(true, false))
                .put("nothing", null)
                .write(dir.resolve("nested.pth"));
        try (PthFile read = PthFile.open(file)) {
            assertEquals(List.of("model.encoder.w", "model.bias"), read.names());
            assertArrayEquals(new float[] {3f, 4f}, read.readF32("model.encoder.w"));
            assertArrayEquals(new float[] {4f}, read.readF32("model.bias"));
            assertEquals(List.of("epoch (the integer 12)", "lr (the float 0.5)", "note (the string 'trained')",
                    "flags (a list of 2)", "nothing (None)"), read.skipped());
        }
    }

    @Test
    void twoPathsThatFlattenToOneNameAreRefused() throws IOException {
        Map<String, Object> inner = new LinkedHashMap<>();
        inner.put("b", contiguous("0", 0, 1));
        Path file = new TorchSaveFixture().storage("0", SafetensorsDType.F32, 1f)
                .put("a.b", contiguous("0", 0, 1)).put("a", inner).write(dir.resolve("clash.pth"));
        InvalidPthException e = assertThrows(InvalidPthException.class, () -> PthFile.open(file));
        assertTrue(e.getMessage().contains("'a.b'") && e.getMessage().contains("dots"), e.getMessage());
    }

    @ParameterizedTest(name = "deflated={0}")
    @ValueSource(booleans = {false, true})
    void deflatedRecordsAnotherArchiveNameAndNoByteOrderMarkReadTheSame(boolean deflated) throws IOException {
        Path file = everyKind().deflate(deflated).archiveName("Wan2.1_VAE").byteOrder(null).version(null)
                .write(dir.resolve("other.pth"));
        Path reference = everyKind().write(dir.resolve("reference.pth"));
        try (PthFile read = PthFile.open(file); PthFile expected = PthFile.open(reference)) {
            assertEquals("Wan2.1_VAE", read.archiveName());
            assertEquals(OptionalInt.empty(), read.version());
            assertEquals(expected.tensors(), read.tensors());
            for (String name : expected.names()) {
                assertArrayEquals(bits(expected.readF32(name)), bits(read.readF32(name)), name);
            }
        }
    }

    @Test
    void zip64RecordsAsInMultiGigabyteCheckpointsReadTheSame() throws IOException {
        // A checkpoint over 4 GiB (the umT5-XXL encoder is 11 GB) gives its records zip64 sizes and
        // offsets; the same archive rewritten that way must read exactly as before.
        Path plain = everyKind().write(dir.resolve("plain.pth"));
        Path zip64 = Files.write(dir.resolve("zip64.pth"), toZip64(Files.readAllBytes(plain)));
        try (PthFile read = PthFile.open(zip64); PthFile expected = PthFile.open(plain)) {
            assertEquals(expected.tensors(), read.tensors());
            for (String name : expected.names()) {
                assertArrayEquals(bits(expected.readF32(name)), bits(read.readF32(name)), name);
            }
        }
    }

    /**
     * Rewrites a zip's central directory so that every entry keeps its sizes and local-header
     * offset in a zip64 extra field (0xFFFFFFFF in the classic fields), ending with a zip64
     * end-of-directory record and locator, as writers do past 4 GiB.
     */
    private static byte[] toZip64(byte[] zip) {
        java.nio.ByteBuffer in = java.nio.ByteBuffer.wrap(zip).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        int eocd = zip.length - 22;
        assertEquals(0x06054b50, in.getInt(eocd));
        int count = Short.toUnsignedInt(in.getShort(eocd + 10));
        int cdOffset = in.getInt(eocd + 16);
        java.io.ByteArrayOutputStream directory = new java.io.ByteArrayOutputStream();
        int at = cdOffset;
        for (int i = 0; i < count; i++) {
            int nameLength = Short.toUnsignedInt(in.getShort(at + 28));
            int extraLength = Short.toUnsignedInt(in.getShort(at + 30));
            int commentLength = Short.toUnsignedInt(in.getShort(at + 32));
            long compressed = Integer.toUnsignedLong(in.getInt(at + 20));
            long size = Integer.toUnsignedLong(in.getInt(at + 24));
            long local = Integer.toUnsignedLong(in.getInt(at + 42));
            java.nio.ByteBuffer header = java.nio.ByteBuffer.allocate(46).order(java.nio.ByteOrder.LITTLE_ENDIAN);
            header.put(zip, at, 46);
            header.putShort(6, (short) 45).putInt(20, -1).putInt(24, -1).putInt(42, -1)
                    .putShort(30, (short) (extraLength + 28));
            directory.writeBytes(header.array());
            directory.write(zip, at + 46, nameLength);
            java.nio.ByteBuffer extra = java.nio.ByteBuffer.allocate(28).order(java.nio.ByteOrder.LITTLE_ENDIAN);
            extra.putShort((short) 1).putShort((short) 24).putLong(size).putLong(compressed).putLong(local);
            directory.writeBytes(extra.array());
            directory.write(zip, at + 46 + nameLength, extraLength + commentLength);
            at += 46 + nameLength + extraLength + commentLength;
        }
        byte[] cd = directory.toByteArray();
        java.nio.ByteBuffer out = java.nio.ByteBuffer.allocate(cdOffset + cd.length + 56 + 20 + 22)
                .order(java.nio.ByteOrder.LITTLE_ENDIAN);
        out.put(zip, 0, cdOffset).put(cd);
        long zip64End = out.position();
        out.putInt(0x06064b50).putLong(44).putShort((short) 45).putShort((short) 45).putInt(0).putInt(0)
                .putLong(count).putLong(count).putLong(cd.length).putLong(cdOffset);
        out.putInt(0x07064b50).putInt(0).putLong(zip64End).putInt(1);
        out.putInt(0x06054b50).putShort((short) 0).putShort((short) 0).putShort((short) -1).putShort((short) -1)
                .putInt(-1).putInt(-1).putShort((short) 0);
        return out.array();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("org.fastvmt.reference.OpenBackends#devices")
    void loadsIntoABackendAsStoredOrConverted(Device device) throws IOException {
        Backend backend = BACKENDS.get(device);
        float[] values = random(12, 7);
        Path file = new TorchSaveFixture()
                .storage("0", SafetensorsDType.F32, values)
                .storage("1", SafetensorsDType.F16, values)
                .storage("2", SafetensorsDType.BF16, values)
                .put("f32", contiguous("0", 0, 3, 4))
                .put("f16", contiguous("1", 0, 3, 4))
                .put("bf16", contiguous("2", 0, 3, 4))
                .put("f32t", strided("0", 0, new long[] {4, 3}, new long[] {1, 4}))
                .write(dir.resolve("load.pth"));
        try (PthFile read = PthFile.open(file);
                Tensor f32 = read.load("f32", backend);
                Tensor f16 = read.load("f16", backend);
                Tensor bf16 = read.load("bf16", backend);
                Tensor narrowed = read.load("f32", backend, DType.BF16);
                Tensor transposed = read.load("f32t", backend)) {
            assertEquals(DType.F32, f32.dtype());
            assertArrayEquals(new long[] {3, 4}, f32.shape());
            assertArrayEquals(bits(values), bits(f32.toFloatArray()));
            assertEquals(DType.F32, f16.dtype());
            assertArrayEquals(bits(rounded(SafetensorsDType.F16, values)), bits(f16.toFloatArray()));
            assertEquals(DType.BF16, bf16.dtype());
            assertArrayEquals(bits(rounded(SafetensorsDType.BF16, values)), bits(bf16.toFloatArray()));
            assertArrayEquals(bits(rounded(SafetensorsDType.BF16, values)), bits(narrowed.toFloatArray()));
            assertArrayEquals(bits(read.readF32("f32t")), bits(transposed.toFloatArray()));
            assertThrows(IllegalArgumentException.class, () -> read.load("f32", backend, DType.I32));
        }
    }

    @Test
    void afterCloseTheMappingIsGone() throws IOException {
        Path file = everyKind().write(dir.resolve("close.pth"));
        PthFile read = PthFile.open(file);
        read.close();
        assertThrows(IllegalStateException.class, () -> read.bytes("scale"));
        read.close();
    }

    // ---- refusals: code the pickle asks to run ----

    /** A pickle that calls {@code module.name(argument)}: the classic payload. */
    private static byte[] calling(String module, String name, String argument, boolean stackGlobal) {
        PickleWriter writer = new PickleWriter().proto(stackGlobal ? 4 : 2);
        if (stackGlobal) {
            byte[] m = module.getBytes(StandardCharsets.UTF_8);
            byte[] n = name.getBytes(StandardCharsets.UTF_8);
            writer.op(0x8c, m.length).raw(m).op(0x8c, n.length).raw(n).op(0x93);
        } else {
            writer.global(module, name);
        }
        return writer.unmemoizedString(argument).tuple(1).reduce().stop().bytes();
    }

    private static String quoted(Path path) {
        return path.toString().replace("\\", "\\\\").replace("'", "\\'");
    }

    @Test
    void builtinsEvalIsRefusedAndNothingRuns() throws IOException {
        Path victim = dir.resolve("pwned-by-eval");
        Path file = TorchSaveFixture.writePickle(dir.resolve("eval.pth"),
                calling("builtins", "eval", "open('" + quoted(victim) + "', 'w').close()", false));
        InvalidPthException e = assertThrows(InvalidPthException.class, () -> PthFile.open(file));
        assertTrue(e.getMessage().startsWith(file.toString()), e.getMessage());
        assertTrue(e.getMessage().contains("global builtins.eval is not allowed"), e.getMessage());
        assertTrue(e.getMessage().contains("archive/data.pkl byte 2"), e.getMessage());
        assertFalse(Files.exists(victim), "the payload ran");
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"os.system", "posix.system", "nt.system", "subprocess.call", "__builtin__.getattr",
        "builtins.exec", "torch.load", "torch._utils._rebuild_device_tensor_from_numpy"})
    void anyOtherGlobalIsRefusedAndNothingRuns(String global) throws IOException {
        int dot = global.lastIndexOf('.');
        for (boolean stackGlobal : new boolean[] {false, true}) {
            Path victim = dir.resolve("pwned-" + stackGlobal);
            Path file = TorchSaveFixture.writePickle(dir.resolve("evil.pth"),
                    calling(global.substring(0, dot), global.substring(dot + 1), "touch " + quoted(victim), stackGlobal));
            InvalidPthException e = assertThrows(InvalidPthException.class, () -> PthFile.open(file));
            assertTrue(e.getMessage().contains("global " + global + " is not allowed"), e.getMessage());
            assertTrue(e.getMessage().contains(file.toString()), e.getMessage());
            assertTrue(e.getMessage().contains("byte "), e.getMessage());
            assertFalse(Files.exists(victim), "the payload ran");
        }
    }

    @Test
    void aGlobalHiddenAfterRealTensorsIsRefusedAtItsPosition() throws IOException {
        // A valid state dict whose last value is os.system('touch victim'): refused where it appears.
        Path victim = dir.resolve("pwned-late");
        byte[] valid = new TorchSaveFixture().storage("0", SafetensorsDType.F32, 1f)
                .put("w", contiguous("0", 0, 1)).pickle();
        // Rebuild: the state dict up to its SETITEM of "w", then key "evil" = os.system(...), SETITEM, STOP.
        PickleWriter writer = new PickleWriter().raw(java.util.Arrays.copyOf(valid, indexOfBuild(valid)));
        int position = writer.bytes().length + 1 + 4 + 4; // after X, length, "evil"
        writer.unmemoizedString("evil").op('c').raw("os\nsystem\n".getBytes(StandardCharsets.US_ASCII))
                .unmemoizedString("touch " + quoted(victim)).tuple(1).reduce().op('s').stop();
        Path file = TorchSaveFixture.writePickle(dir.resolve("late.pth"), writer.bytes());
        InvalidPthException e = assertThrows(InvalidPthException.class, () -> PthFile.open(file));
        assertTrue(e.getMessage().contains("byte " + position + ": global os.system is not allowed"), e.getMessage());
        assertFalse(Files.exists(victim));
    }

    /** Where the state dict's BUILD of _metadata starts: its EMPTY_DICT after the items' SETITEM. */
    private static int indexOfBuild(byte[] pickle) {
        for (int i = 0; i + 1 < pickle.length; i++) {
            if (pickle[i] == 's' && pickle[i + 1] == '}') {
                return i + 1;
            }
        }
        throw new AssertionError("no BUILD state in the pickle");
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"INST", "OBJ", "NEWOBJ", "NEWOBJ_EX", "EXT1", "EXT2", "EXT4", "PERSID", "INT", "STRING",
        "DICT", "POP", "DUP", "unknown"})
    void opcodesOutsideTheListAreRefusedByName(String opcode) throws IOException {
        PickleWriter writer = new PickleWriter().proto(2);
        switch (opcode) {
            case "INST" -> writer.mark().op('i').raw("os\nsystem\n".getBytes(StandardCharsets.US_ASCII));
            case "OBJ" -> writer.mark().op('o');
            case "NEWOBJ" -> writer.op(')', ')', 0x81);
            case "NEWOBJ_EX" -> writer.op(')', ')', '}', 0x92);
            case "EXT1" -> writer.op(0x82, 1);
            case "EXT2" -> writer.op(0x83, 1, 0);
            case "EXT4" -> writer.op(0x84, 1, 0, 0, 0);
            case "PERSID" -> writer.op('P').raw("0\n".getBytes(StandardCharsets.US_ASCII));
            case "INT" -> writer.op('I').raw("1\n".getBytes(StandardCharsets.US_ASCII));
            case "STRING" -> writer.op('S').raw("'x'\n".getBytes(StandardCharsets.US_ASCII));
            case "DICT" -> writer.mark().op('d');
            case "POP" -> writer.op('N', '0');
            case "DUP" -> writer.op('N', '2');
            default -> writer.op(0xff);
        }
        byte[] pickle = writer.stop().bytes();
        int position = pickle.length - 2 - (opcode.equals("INST") ? 10 : opcode.equals("EXT1") ? 1
                : opcode.equals("EXT2") ? 2 : opcode.equals("EXT4") ? 4 : opcode.equals("PERSID") || opcode.equals("INT")
                ? 2 : opcode.equals("STRING") ? 4 : 0);
        Path file = TorchSaveFixture.writePickle(dir.resolve("opcode.pth"), pickle);
        InvalidPthException e = assertThrows(InvalidPthException.class, () -> PthFile.open(file));
        String name = opcode.equals("unknown") ? "unknown 0xff" : opcode + " (";
        assertTrue(e.getMessage().contains("byte " + position + ": opcode " + name), e.getMessage());
        assertTrue(e.getMessage().contains("is not accepted"), e.getMessage());
    }

    @Test
    void storageTypesOtherThanF32F16Bf16AreRefused() throws IOException {
        byte[] pickle = new PickleWriter().proto(2).op('}').global("torch", "LongStorage").stop().bytes();
        Path file = TorchSaveFixture.writePickle(dir.resolve("long.pth"), pickle);
        InvalidPthException e = assertThrows(InvalidPthException.class, () -> PthFile.open(file));
        assertTrue(e.getMessage().contains("global torch.LongStorage: tensors of this storage type are not read"),
                e.getMessage());
    }

    @Test
    void allowedGlobalsUsedOtherwiseThanTorchSaveDoesAreRefused() throws IOException {
        // REDUCE of a storage class (a call torch.save never writes)
        byte[] callStorage = new PickleWriter().proto(2).global("torch", "FloatStorage").tuple(0).reduce().stop().bytes();
        assertRefused(callStorage, "REDUCE calls the global torch.FloatStorage");
        // OrderedDict with arguments
        byte[] orderedWithArgs = new PickleWriter().proto(2).global("collections", "OrderedDict")
                .op(']').tuple(1).reduce().stop().bytes();
        assertRefused(orderedWithArgs, "collections.OrderedDict with 1 arguments");
        // a tensor with backward hooks
        byte[] hooks = new TorchSaveFixture().storage("0", SafetensorsDType.F32, 1f).put("w", contiguous("0", 0, 1))
                .pickle();
        String text = new String(hooks, StandardCharsets.ISO_8859_1).replace("\u0089h\u0000)R", "\u0089h\u0000)R"
                + "(K\u0001K\u0002u");
        assertRefused(text.getBytes(StandardCharsets.ISO_8859_1), "backward_hooks is a dict of 1");
        // BUILD on a tensor
        byte[] buildTensor = new String(hooks, StandardCharsets.ISO_8859_1).replace("Rq\rs", "Rq\r}b" + "s")
                .getBytes(StandardCharsets.ISO_8859_1);
        assertRefused(buildTensor, "BUILD of a tensor");
    }

    private void assertRefused(byte[] pickle, String expected) throws IOException {
        Path file = TorchSaveFixture.writePickle(dir.resolve("misuse.pth"), pickle);
        InvalidPthException e = assertThrows(InvalidPthException.class, () -> PthFile.open(file));
        assertTrue(e.getMessage().contains(expected), e.getMessage());
        assertTrue(e.getMessage().contains("refused: archive/data.pkl byte "), e.getMessage());
    }

    @Test
    void aTruncatedOrMalformedPickleIsRefused() throws IOException {
        byte[] pickle = everyKind().pickle();
        assertRefused(java.util.Arrays.copyOf(pickle, pickle.length - 1), "without its STOP opcode");
        assertRefused(java.util.Arrays.copyOf(pickle, 40), "truncated");
        assertRefused(new PickleWriter().proto(2).op('h', 9).stop().bytes(), "memo entry 9 is read before it is written");
        assertRefused(new PickleWriter().proto(2).op('u').stop().bytes(), "SETITEMS (");
        assertRefused(new PickleWriter().proto(9).op('N').stop().bytes(), "pickle protocol 9");
        assertRefused(new PickleWriter().proto(2).op('N', 'N', 'N', 's').stop().bytes(), "SETITEM into None");
    }

    @Test
    void aDictKeyThatIsAContainerIsRefused() throws IOException {
        // {(L,): None} where L contains itself: hashing the key would never end
        byte[] pickle = new PickleWriter().proto(2).op('}').op(']').put().get(0).op('a').tuple(1).none().op('s')
                .stop().bytes();
        assertRefused(pickle, "SETITEM with key a tuple of 1 (a dict key must be a string or a number)");
    }

    @Test
    void aDeflatedRecordClaimingAnImpossibleSizeIsRefused() throws IOException {
        byte[] zip = Files.readAllBytes(everyKind().deflate(true).write(dir.resolve("deflated.pth")));
        // the central-directory entry of archive/data/4: set its uncompressed size to 2^31 - 1
        byte[] name = "archive/data/4".getBytes(StandardCharsets.US_ASCII);
        int at = lastIndexOf(zip, name) - 46;
        assertEquals(0x02014b50, java.nio.ByteBuffer.wrap(zip).order(java.nio.ByteOrder.LITTLE_ENDIAN).getInt(at));
        java.nio.ByteBuffer.wrap(zip).order(java.nio.ByteOrder.LITTLE_ENDIAN).putInt(at + 24, Integer.MAX_VALUE);
        Path file = Files.write(dir.resolve("bomb.pth"), zip);
        InvalidPthException e = assertThrows(InvalidPthException.class, () -> PthFile.open(file));
        assertTrue(e.getMessage().contains("record archive/data/4 claims to inflate")
                && e.getMessage().contains("beyond deflate's largest ratio"), e.getMessage());
    }

    private static int lastIndexOf(byte[] haystack, byte[] needle) {
        for (int i = haystack.length - needle.length; i >= 0; i--) {
            if (java.util.Arrays.equals(haystack, i, i + needle.length, needle, 0, needle.length)) {
                return i;
            }
        }
        throw new AssertionError("not found");
    }

    @Test
    void aRootThatIsNotADictIsRefused() throws IOException {
        Path file = TorchSaveFixture.writePickle(dir.resolve("list.pth"),
                new PickleWriter().proto(2).op(']').stop().bytes());
        InvalidPthException e = assertThrows(InvalidPthException.class, () -> PthFile.open(file));
        assertTrue(e.getMessage().contains("holds a list of 0, not a dict of tensors"), e.getMessage());
    }

    // ---- refusals: broken containers ----

    @Test
    void aTruncatedZipIsRefused() throws IOException {
        Path whole = everyKind().write(dir.resolve("whole.pth"));
        byte[] bytes = Files.readAllBytes(whole);
        for (int keep : new int[] {bytes.length - 10, bytes.length / 2, 100}) {
            Path cut = Files.write(dir.resolve("cut.pth"), java.util.Arrays.copyOf(bytes, keep));
            InvalidPthException e = assertThrows(InvalidPthException.class, () -> PthFile.open(cut));
            assertTrue(e.getMessage().startsWith(cut.toString()), e.getMessage());
            assertTrue(e.getMessage().contains("truncated"), e.getMessage());
        }
    }

    @Test
    void filesThatAreNotZipCheckpointsAreRefused() throws IOException {
        Path text = Files.writeString(dir.resolve("text.pth"), "hello");
        assertTrue(assertThrows(InvalidPthException.class, () -> PthFile.open(text)).getMessage()
                .contains("does not start like a zip archive"));
        Path legacy = Files.write(dir.resolve("legacy.pth"), new PickleWriter().proto(2).op('N').stop().bytes());
        assertTrue(assertThrows(InvalidPthException.class, () -> PthFile.open(legacy)).getMessage()
                .contains("legacy torch.save format"));
        Path noPickle = TorchSaveFixture.writeArchive(dir.resolve("nopickle.pth"), "archive",
                Map.of("version", "3\n".getBytes(StandardCharsets.US_ASCII)), false);
        assertTrue(assertThrows(InvalidPthException.class, () -> PthFile.open(noPickle)).getMessage()
                .contains("has no record archive/data.pkl"));
        Map<String, byte[]> script = new LinkedHashMap<>();
        script.put("data.pkl", new PickleWriter().proto(2).op('}').stop().bytes());
        script.put("constants.pkl", new byte[] {(byte) 0x80, 2, ')', '.'});
        Path torchScript = TorchSaveFixture.writeArchive(dir.resolve("script.pt"), "archive", script, false);
        assertTrue(assertThrows(InvalidPthException.class, () -> PthFile.open(torchScript)).getMessage()
                .contains("TorchScript archive"));
    }

    @Test
    void aMissingStorageRecordIsRefused() throws IOException {
        Path file = everyKind().omitStorageRecord("4").write(dir.resolve("missing.pth"));
        InvalidPthException e = assertThrows(InvalidPthException.class, () -> PthFile.open(file));
        assertTrue(e.getMessage().contains("storage '4' (torch.FloatStorage of 10 elements) has no record"
                + " archive/data/4"), e.getMessage());
    }

    @Test
    void aStorageTooSmallForTheShapeIsRefused() throws IOException {
        Path file = new TorchSaveFixture().storage("0", SafetensorsDType.F32, 1f, 2f, 3f, 4f, 5f, 6f)
                .put("w", contiguous("0", 1, 2, 3)).write(dir.resolve("small.pth"));
        // one element past the end: the last one the tensor addresses is 1 + 3 + 2 = 6
        InvalidPthException e = assertThrows(InvalidPthException.class, () -> PthFile.open(file));
        assertTrue(e.getMessage().contains("tensor 'w' (F32 [2, 3], stride [3, 1], from element 1) needs elements up"
                + " to 6 of storage '0', which holds only 6"), e.getMessage());
        Path strided = new TorchSaveFixture().storage("0", SafetensorsDType.F32, 1f, 2f, 3f, 4f, 5f, 6f)
                .put("t", strided("0", 0, new long[] {3, 2}, new long[] {1, 3})).put("u", strided("0", 1,
                        new long[] {3, 2}, new long[] {1, 3})).write(dir.resolve("strided-small.pth"));
        e = assertThrows(InvalidPthException.class, () -> PthFile.open(strided));
        assertTrue(e.getMessage().contains("tensor 'u'") && e.getMessage().contains("up to 6 of storage '0'"),
                e.getMessage());
    }

    @Test
    void aStorageRecordOfTheWrongSizeIsRefused() throws IOException {
        Path file = new TorchSaveFixture()
                .storage(new TorchSaveFixture.Storage("0", SafetensorsDType.BF16, 4, new byte[6]))
                .put("w", contiguous("0", 0, 3)).write(dir.resolve("size.pth"));
        InvalidPthException e = assertThrows(InvalidPthException.class, () -> PthFile.open(file));
        assertTrue(e.getMessage().contains("record archive/data/0 holds 6 bytes, but storage '0' declares 4 elements"
                + " of BF16 = 8 bytes"), e.getMessage());
    }

    @Test
    void aBigEndianCheckpointIsRefused() throws IOException {
        Path file = everyKind().byteOrder("big").write(dir.resolve("big.pth"));
        InvalidPthException e = assertThrows(InvalidPthException.class, () -> PthFile.open(file));
        assertTrue(e.getMessage().contains("big-endian"), e.getMessage());
        Path odd = everyKind().byteOrder("middle").write(dir.resolve("odd.pth"));
        assertTrue(assertThrows(InvalidPthException.class, () -> PthFile.open(odd)).getMessage()
                .contains("names the byte order 'middle'"));
    }
}
