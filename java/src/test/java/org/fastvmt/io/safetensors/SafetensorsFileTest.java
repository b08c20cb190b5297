package org.fastvmt.io.safetensors;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import org.fastvmt.backend.Backend;
import org.fastvmt.backend.Device;
import org.fastvmt.reference.OpenBackends;
import org.fastvmt.tensor.BFloat16;
import org.fastvmt.tensor.DType;
import org.fastvmt.tensor.Tensor;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * SafetensorsFile and SafetensorsWriter: byte-exact agreement with the reference writer, round
 * trips of every dtype and edge shape, loading into backends, and a refusal (with a message naming
 * the file and the problem) for each way a file can be malformed.
 */
class SafetensorsFileTest {

    private static final float[] SPECIAL = {0f, -0f, 1f, -2.5f, 65504f, 1e-5f, -3.1415927f, Float.MIN_NORMAL,
        Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, 123456.78f, 6.1e-5f};

    private static final OpenBackends BACKENDS = new OpenBackends();

    @TempDir
    Path dir;

    @AfterAll
    static void closeBackends() {
        BACKENDS.close();
    }

    // ---- helpers ----

    /** A file of 8-byte length, header text, then data, written verbatim. */
    private Path raw(String header, byte[] data) throws IOException {
        return raw(header.getBytes(StandardCharsets.UTF_8), data);
    }

    private Path raw(byte[] header, byte[] data) throws IOException {
        ByteBuffer bytes = ByteBuffer.allocate(8 + header.length + data.length).order(ByteOrder.LITTLE_ENDIAN);
        bytes.putLong(header.length).put(header).put(data);
        Path file = dir.resolve("model.safetensors");
        Files.write(file, bytes.array());
        return file;
    }

    private static byte[] f32(float... values) {
        ByteBuffer bytes = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        for (float value : values) {
            bytes.putFloat(value);
        }
        return bytes.array();
    }

    private static float[] random(int n, long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        float[] out = new float[n];
        for (int i = 0; i < n; i++) {
            out[i] = (float) (random.nextDouble() * 8 - 4);
        }
        System.arraycopy(SPECIAL, 0, out, 0, Math.min(n, SPECIAL.length));
        return out;
    }

    private static int[] bits(float[] values) {
        int[] out = new int[values.length];
        for (int i = 0; i < values.length; i++) {
            out[i] = Float.floatToRawIntBits(values[i]);
        }
        return out;
    }

    private static float[] rounded(SafetensorsDType dtype, float[] values) {
        float[] out = new float[values.length];
        for (int i = 0; i < values.length; i++) {
            out[i] = switch (dtype) {
                case F32 -> values[i];
                case F16 -> Float.float16ToFloat(Float.floatToFloat16(values[i]));
                case BF16 -> BFloat16.round(values[i]);
            };
        }
        return out;
    }

    private InvalidSafetensorsException refused(Path file) {
        InvalidSafetensorsException e = assertThrows(InvalidSafetensorsException.class, () -> SafetensorsFile.open(file));
        assertTrue(e.getMessage().startsWith(file + ": "), e.getMessage());
        return e;
    }

    private static void assertMentions(Exception e, String... parts) {
        for (String part : parts) {
            assertTrue(e.getMessage().contains(part), "expected '" + part + "' in: " + e.getMessage());
        }
    }

    // ---- agreement with the reference writer ----

    /** The bytes huggingface/safetensors' own tests expect (safetensors/src/tensor.rs test_serialization). */
    @Test
    void writesTheReferenceBytesForOneTensor() throws IOException {
        Path file = dir.resolve("one.safetensors");
        new SafetensorsWriter().addFloats("attn.0", SafetensorsDType.F32, new float[] {0, 1, 2, 3, 4, 5}, 1, 2, 3)
                .write(file);
        String header = "{\"attn.0\":{\"dtype\":\"F32\",\"shape\":[1,2,3],\"data_offsets\":[0,24]}}";
        assertEquals(64, header.length());
        ByteBuffer expected = ByteBuffer.allocate(8 + 64 + 24).order(ByteOrder.LITTLE_ENDIAN);
        expected.putLong(64).put(header.getBytes(StandardCharsets.UTF_8)).put(f32(0, 1, 2, 3, 4, 5));
        assertArrayEquals(expected.array(), Files.readAllBytes(file));
    }

    /** test_empty of the reference: "{}" padded to 8, and a metadata-only header padded to 40. */
    @Test
    void writesTheReferenceBytesForEmptyFiles() throws IOException {
        Path empty = dir.resolve("empty.safetensors");
        new SafetensorsWriter().write(empty);
        assertArrayEquals(new byte[] {8, 0, 0, 0, 0, 0, 0, 0, '{', '}', ' ', ' ', ' ', ' ', ' ', ' '},
                Files.readAllBytes(empty));

        Path metadataOnly = dir.resolve("metadata.safetensors");
        new SafetensorsWriter().metadata("framework", "pt").write(metadataOnly);
        byte[] bytes = Files.readAllBytes(metadataOnly);
        assertEquals(48, bytes.length);
        assertEquals(40, bytes[0]);
        assertEquals("{\"__metadata__\":{\"framework\":\"pt\"}}     ",
                new String(bytes, 8, 40, StandardCharsets.UTF_8));
        try (SafetensorsFile file = SafetensorsFile.open(metadataOnly)) {
            assertEquals(List.of(), file.names());
            assertEquals(Map.of("framework", "pt"), file.metadata());
            assertEquals(0, file.dataBytes());
        }
    }

    // ---- round trips ----

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"F32", "F16", "BF16"})
    void everyDtypeRoundTripsAndReadsWidened(String dtypeName) throws IOException {
        SafetensorsDType dtype = SafetensorsDType.valueOf(dtypeName);
        float[] values = random(5 * 7, 3);
        Path file = dir.resolve("rt.safetensors");
        new SafetensorsWriter().addFloats("w", dtype, values, 5, 7).metadata("k", "v").write(file);
        try (SafetensorsFile read = SafetensorsFile.open(file)) {
            TensorInfo info = read.info("w");
            assertEquals(dtype, info.dtype());
            assertArrayEquals(new long[] {5, 7}, info.shape());
            assertEquals(35L * dtype.bytes(), info.byteSize());
            assertArrayEquals(bits(rounded(dtype, values)), bits(read.readF32("w")));
            assertEquals(Map.of("k", "v"), read.metadata());
            // The stored bytes are what was written, bit for bit.
            byte[] stored = read.bytes("w").toArray(ValueLayout.JAVA_BYTE);
            Path again = dir.resolve("again.safetensors");
            new SafetensorsWriter().add("w", dtype, new long[] {5, 7}, stored).metadata("k", "v").write(again);
            assertArrayEquals(Files.readAllBytes(file), Files.readAllBytes(again));
        }
    }

    @Test
    void scalarsAndZeroSizeTensorsRoundTrip() throws IOException {
        Path file = dir.resolve("edges.safetensors");
        new SafetensorsWriter()
                .addFloats("scalar", SafetensorsDType.F32, new float[] {42.5f})
                .addFloats("empty", SafetensorsDType.BF16, new float[0], 0, 5)
                .addFloats("empty_too", SafetensorsDType.F32, new float[0], 3, 0)
                .addFloats("half", SafetensorsDType.F16, new float[] {1.5f, -2f}, 2)
                .write(file);
        try (SafetensorsFile read = SafetensorsFile.open(file)) {
            assertArrayEquals(new long[0], read.info("scalar").shape());
            assertArrayEquals(new float[] {42.5f}, read.readF32("scalar"));
            assertArrayEquals(new long[] {0, 5}, read.info("empty").shape());
            assertEquals(0, read.readF32("empty").length);
            assertEquals(0, read.info("empty_too").byteSize());
            assertArrayEquals(new float[] {1.5f, -2f}, read.readF32("half"));
            Backend backend = BACKENDS.get(Device.CPU);
            try (Tensor scalar = read.load("scalar", backend); Tensor empty = read.load("empty", backend)) {
                assertEquals(0, scalar.rank());
                assertArrayEquals(new float[] {42.5f}, scalar.toFloatArray());
                assertEquals(DType.BF16, empty.dtype());
                assertEquals(0, empty.elementCount());
            }
        }
    }

    @Test
    void wideTypesComeFirstSoEveryTensorIsAlignedToItsElementSize() throws IOException {
        Path file = dir.resolve("order.safetensors");
        SafetensorsWriter writer = new SafetensorsWriter()
                .addFloats("b_half", SafetensorsDType.F16, random(3, 1), 3)
                .addFloats("z_float", SafetensorsDType.F32, random(5, 2), 5)
                .addFloats("a_brain", SafetensorsDType.BF16, random(7, 3), 7)
                .addFloats("a_float", SafetensorsDType.F32, random(1, 4), 1);
        writer.write(file);
        try (SafetensorsFile read = SafetensorsFile.open(file)) {
            // Descending element size, then name (the reference's order); F16 sorts by name with BF16.
            assertEquals(List.of("a_float", "z_float", "a_brain", "b_half"), read.names());
            assertEquals(writer.layout(), List.copyOf(read.tensors().values()));
            assertEquals(0, read.headerBytes() % 8);
            for (TensorInfo info : read.tensors().values()) {
                assertEquals(0, (8 + read.headerBytes() + info.begin()) % info.dtype().bytes(), info.toString());
            }
        }
    }

    @Test
    void readsTensorsWrittenInAnyHeaderOrderAndSkipsPadding() throws IOException {
        // Header order need not be data order; trailing spaces pad the header.
        String header = "{\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]},"
                + "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}   ";
        Path file = raw(header, f32(1f, 2f));
        try (SafetensorsFile read = SafetensorsFile.open(file)) {
            assertEquals(List.of("a", "b"), read.names());
            assertArrayEquals(new float[] {2f}, read.readF32("b"));
        }
    }

    // ---- loading into backends ----

    @ParameterizedTest(name = "{0}")
    @MethodSource("org.fastvmt.reference.OpenBackends#devices")
    void loadsKeepingOrConvertingTheType(Device device) throws IOException {
        Backend backend = BACKENDS.get(device);
        float[] values = random(6 * 4, 9);
        Path file = dir.resolve("load.safetensors");
        new SafetensorsWriter()
                .addFloats("f32", SafetensorsDType.F32, values, 6, 4)
                .addFloats("f16", SafetensorsDType.F16, values, 6, 4)
                .addFloats("bf16", SafetensorsDType.BF16, values, 6, 4)
                .write(file);
        try (SafetensorsFile read = SafetensorsFile.open(file)) {
            try (Tensor f32 = read.load("f32", backend); Tensor f16 = read.load("f16", backend);
                    Tensor bf16 = read.load("bf16", backend)) {
                assertEquals(DType.F32, f32.dtype());
                assertEquals(DType.F32, f16.dtype());
                assertEquals(DType.BF16, bf16.dtype());
                assertArrayEquals(new long[] {6, 4}, bf16.shape());
                assertArrayEquals(bits(values), bits(f32.toFloatArray()));
                assertArrayEquals(bits(rounded(SafetensorsDType.F16, values)), bits(f16.toFloatArray()));
                assertArrayEquals(bits(rounded(SafetensorsDType.BF16, values)), bits(bf16.toFloatArray()));
            }
            try (Tensor widened = read.load("bf16", backend, DType.F32);
                    Tensor narrowed = read.load("f32", backend, DType.BF16);
                    Tensor halfToBrain = read.load("f16", backend, DType.BF16)) {
                assertEquals(DType.F32, widened.dtype());
                assertArrayEquals(bits(rounded(SafetensorsDType.BF16, values)), bits(widened.toFloatArray()));
                assertEquals(DType.BF16, narrowed.dtype());
                assertArrayEquals(bits(rounded(SafetensorsDType.BF16, values)), bits(narrowed.toFloatArray()));
                assertArrayEquals(bits(rounded(SafetensorsDType.BF16, rounded(SafetensorsDType.F16, values))),
                        bits(halfToBrain.toFloatArray()));
            }
            assertThrows(IllegalArgumentException.class, () -> read.load("f32", backend, DType.I32));
        }
    }

    @Test
    void aTensorWrittenFromABackendComesBackBitForBit() throws IOException {
        Backend backend = BACKENDS.get(Device.CPU);
        float[] values = random(3 * 11, 5);
        Path file = dir.resolve("tensors.safetensors");
        try (Tensor f32 = Tensor.of(backend, values, 3, 11); Tensor bf16 = Tensor.of(backend, DType.BF16, values, 33)) {
            new SafetensorsWriter().add("a", f32).add("b", bf16).write(file);
        }
        try (SafetensorsFile read = SafetensorsFile.open(file)) {
            assertEquals(SafetensorsDType.F32, read.info("a").dtype());
            assertEquals(SafetensorsDType.BF16, read.info("b").dtype());
            assertArrayEquals(bits(values), bits(read.readF32("a")));
            assertArrayEquals(bits(rounded(SafetensorsDType.BF16, values)), bits(read.readF32("b")));
        }
    }

    @Test
    void afterCloseTheMappingIsGoneButLoadedTensorsStay() throws IOException {
        Path file = dir.resolve("close.safetensors");
        new SafetensorsWriter().addFloats("x", SafetensorsDType.F32, new float[] {7f, 8f}, 2).write(file);
        SafetensorsFile read = SafetensorsFile.open(file);
        try (Tensor x = read.load("x", BACKENDS.get(Device.CPU))) {
            read.close();
            assertThrows(IllegalStateException.class, () -> read.bytes("x"));
            assertArrayEquals(new float[] {7f, 8f}, x.toFloatArray());
        }
        read.close();
    }

    // ---- the writer refuses, and leaves nothing behind ----

    @Test
    void theWriterRefusesBadEntries() {
        SafetensorsWriter writer = new SafetensorsWriter().addFloats("a", SafetensorsDType.F32, new float[2], 2);
        assertMentions(assertThrows(IllegalArgumentException.class,
                () -> writer.addFloats("a", SafetensorsDType.F32, new float[2], 2)), "'a'", "twice");
        assertMentions(assertThrows(IllegalArgumentException.class,
                () -> writer.add("b", SafetensorsDType.F32, new long[] {3}, new byte[8])), "'b'", "8 bytes", "12");
        assertMentions(assertThrows(IllegalArgumentException.class,
                () -> writer.addFloats("c", SafetensorsDType.F32, new float[0], -1, 0)), "'c'", "negative");
        assertMentions(assertThrows(IllegalArgumentException.class,
                () -> writer.addFloats("__metadata__", SafetensorsDType.F32, new float[1])), "reserved");
    }

    @Test
    void aFailedWriteLeavesNoFile() throws IOException {
        Path file = dir.resolve("failed.safetensors");
        Tensor closed = Tensor.of(BACKENDS.get(Device.CPU), new float[] {1f, 2f}, 2);
        SafetensorsWriter writer = new SafetensorsWriter().addFloats("ok", SafetensorsDType.F32, new float[4], 4)
                .add("gone", closed);
        closed.close();
        assertThrows(RuntimeException.class, () -> writer.write(file));
        try (Stream<Path> left = Files.list(dir)) {
            assertEquals(List.of(), left.toList());
        }
    }

    // ---- refusals ----

    @Test
    void refusesAFileShorterThanTheLengthField() throws IOException {
        Path file = dir.resolve("model.safetensors");
        Files.write(file, new byte[] {5, 0, 0});
        assertMentions(refused(file), "3 bytes", "8-byte header length");
    }

    @Test
    void refusesAHeaderLengthBeyondTheFile() throws IOException {
        Path file = dir.resolve("model.safetensors");
        ByteBuffer bytes = ByteBuffer.allocate(8 + 4).order(ByteOrder.LITTLE_ENDIAN).putLong(64).put("{}  ".getBytes());
        Files.write(file, bytes.array());
        assertMentions(refused(file), "header length 64", "past the end of the file", "12");
    }

    @Test
    void refusesATruncatedFile() throws IOException {
        Path good = dir.resolve("good.safetensors");
        new SafetensorsWriter().addFloats("w", SafetensorsDType.F32, random(16, 1), 16).write(good);
        byte[] bytes = Files.readAllBytes(good);
        Path file = dir.resolve("model.safetensors");
        Files.write(file, java.util.Arrays.copyOf(bytes, bytes.length - 4));
        assertMentions(refused(file), "tensor 'w'", "claims bytes [0, 64)", "only 60 bytes");
        Files.write(file, java.util.Arrays.copyOf(bytes, 20));
        assertMentions(refused(file), "past the end of the file");
    }

    @Test
    void refusesHeaderLengthsOutsideTheLimits() throws IOException {
        Path file = dir.resolve("model.safetensors");
        Files.write(file, ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(100_000_001L).array());
        assertMentions(refused(file), "100000001", "exceeds the limit of 100000000");
        Files.write(file, ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(-1L).array());
        assertMentions(refused(file), "18446744073709551615", "exceeds");
        Files.write(file, ByteBuffer.allocate(9).order(ByteOrder.LITTLE_ENDIAN).putLong(1L).put((byte) '{').array());
        assertMentions(refused(file), "header length 1 is below 2");
    }

    @Test
    void refusesInvalidJson() throws IOException {
        assertMentions(refused(raw("{\"a\": {\"dtype\": \"F32\",", new byte[0])), "not valid JSON");
        assertMentions(refused(raw("{'a': 1}", new byte[0])), "not valid JSON");
        assertMentions(refused(raw(new byte[] {'{', '"', (byte) 0xC3, '"', '}'}, new byte[0])), "not valid UTF-8");
        assertMentions(refused(raw("{} x", new byte[0])), "model.safetensors: the header");
    }

    @ParameterizedTest
    @ValueSource(strings = {"[1, 2]", "\"text\"", "42", "null"})
    void refusesAHeaderThatIsNotAnObject(String header) throws IOException {
        assertMentions(refused(raw(header + "        ", new byte[0])), "expected an object of tensors");
    }

    @ParameterizedTest
    @ValueSource(strings = {"F64", "I64", "U8", "BOOL", "F8_E4M3", "I32", "float32"})
    void refusesUnsupportedDtypesNamingTheTensor(String dtype) throws IOException {
        String header = "{\"blocks.0.w\":{\"dtype\":\"" + dtype + "\",\"shape\":[1],\"data_offsets\":[0,8]}}";
        assertMentions(refused(raw(header, new byte[8])), "tensor 'blocks.0.w'", "dtype " + dtype,
                "supported: F32, F16, BF16");
    }

    @Test
    void refusesAShapeThatDoesNotMatchTheBytes() throws IOException {
        String header = "{\"x\":{\"dtype\":\"F32\",\"shape\":[32,64],\"data_offsets\":[0,4096]}}";
        InvalidSafetensorsException e = refused(raw(header, new byte[4096]));
        assertTrue(e.getMessage().endsWith(
                "model.safetensors: tensor 'x' claims bytes [0, 4096) but shape [32, 64] of F32 needs 8192 bytes"),
                e.getMessage());
    }

    @Test
    void refusesOverlappingRanges() throws IOException {
        String header = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                + "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}";
        assertMentions(refused(raw(header, new byte[12])), "tensor 'b' at bytes [4, 12) overlaps tensor 'a' at [0, 8)");
    }

    @Test
    void refusesHolesAndTrailingBytesLikeTheReference() throws IOException {
        String hole = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                + "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}";
        assertMentions(refused(raw(hole, new byte[12])), "bytes [4, 8)", "belong to no tensor");
        String late = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}";
        assertMentions(refused(raw(late, new byte[8])), "bytes [0, 4)", "belong to no tensor");
        String trailing = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
        assertMentions(refused(raw(trailing, new byte[6])), "bytes [4, 6) at the end", "belong to no tensor");
    }

    @Test
    void refusesARangePastTheEnd() throws IOException {
        String header = "{\"a\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[0,8]}}";
        assertMentions(refused(raw(header, new byte[6])), "tensor 'a' claims bytes [0, 8)",
                "data section has only 6 bytes");
    }

    @Test
    void refusesDuplicateNames() throws IOException {
        String header = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                + "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}";
        assertMentions(refused(raw(header, new byte[8])), "tensor 'a' appears twice");
        String metadata = "{\"__metadata__\":{},\"__metadata__\":{}}";
        assertMentions(refused(raw(metadata, new byte[0])), "__metadata__ twice");
    }

    @Test
    void refusesMalformedEntries() throws IOException {
        assertMentions(refused(raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,0]}}", new byte[0])),
                "tensor 'a': shape", "-1", "non-negative");
        assertMentions(refused(raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", new byte[4])),
                "shape holds 1.5");
        assertMentions(refused(raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", new byte[4])),
                "end comes before its begin");
        assertMentions(refused(raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", new byte[4])),
                "data_offsets has 1 numbers");
        assertMentions(refused(raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", new byte[4])), "lacks data_offsets");
        assertMentions(refused(raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1}}",
                new byte[4])), "unknown field 'x'");
        assertMentions(refused(raw("{\"a\":[1]}", new byte[0])), "tensor 'a' is an array");
        assertMentions(refused(raw("{\"__metadata__\":{\"n\":1}}", new byte[0])), "entry 'n' is a number");
        String huge = "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,4]}}";
        assertMentions(refused(raw(huge, new byte[4])), "overflows");
    }

    @Test
    void aFileThatOpensIsNotChangedByOpening() throws IOException {
        Path file = dir.resolve("ro.safetensors");
        new SafetensorsWriter().addFloats("w", SafetensorsDType.BF16, random(8, 2), 8).write(file);
        byte[] before = Files.readAllBytes(file);
        try (SafetensorsFile read = SafetensorsFile.open(file)) {
            assertTrue(read.bytes("w").isReadOnly(), "the mapping is read-only");
        }
        assertArrayEquals(before, Files.readAllBytes(file));
    }
}
