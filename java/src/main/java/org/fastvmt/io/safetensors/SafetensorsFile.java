package org.fastvmt.io.safetensors;

import java.io.Closeable;
import java.io.IOException;
import java.io.StringReader;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

import com.google.gson.Strictness;
import com.google.gson.stream.JsonReader;
import com.google.gson.stream.JsonToken;

import org.fastvmt.backend.Backend;
import org.fastvmt.io.TensorLoading;
import org.fastvmt.tensor.DType;
import org.fastvmt.tensor.Tensor;

/**
 * A .safetensors file, memory-mapped read-only. The format (huggingface/safetensors, README and
 * safetensors/src/tensor.rs): an unsigned 64-bit little-endian header length N, N bytes of UTF-8
 * JSON mapping each tensor name to {dtype, shape, data_offsets: [begin, end)} plus an optional
 * "__metadata__" string map, then the data section, which the tensors' byte ranges cover exactly.
 *
 * <p>{@link #open} validates the whole header against the file before any tensor byte is read, so
 * a file that opens is consistent: every tensor is F32, F16 or BF16, its byte range has exactly
 * the size its shape and dtype need, and the ranges, sorted, tile the data section from its first
 * to its last byte without gaps or overlaps (the reference's {@code Metadata::validate} and its
 * check that the last range ends at the end of the file). Names are unique. Tensors are views on
 * the mapping until asked for: {@link #readF32} copies into a float[], {@link #load} copies into a
 * backend's memory (straight from the mapping when no conversion is needed).
 *
 * <p>Closing unmaps the file; tensors already loaded are independent copies and stay valid.
 */
public final class SafetensorsFile implements Closeable {

    /**
     * The largest header accepted: 100,000,000 bytes, the limit of the reference implementation
     * ({@code MAX_HEADER_SIZE} in huggingface/safetensors safetensors/src/tensor.rs), so every file
     * it reads, this reads too.
     */
    public static final long MAX_HEADER_BYTES = 100_000_000L;

    /** The smallest header: "{}". */
    public static final long MIN_HEADER_BYTES = 2;

    private static final String METADATA_KEY = "__metadata__";

    static {
        // Tensors are uploaded byte for byte; the backends hold native-order values.
        if (ByteOrder.nativeOrder() != ByteOrder.LITTLE_ENDIAN) {
            throw new ExceptionInInitializerError("safetensors data is little-endian; this platform is not");
        }
    }

    private final Path path;
    private final long headerBytes;
    private final Map<String, TensorInfo> tensors;
    private final Map<String, String> metadata;
    private final Arena arena;
    private final MemorySegment data;

    private SafetensorsFile(Path path, long headerBytes, Map<String, TensorInfo> tensors,
            Map<String, String> metadata, Arena arena, MemorySegment data) {
        this.path = path;
        this.headerBytes = headerBytes;
        this.tensors = tensors;
        this.metadata = metadata;
        this.arena = arena;
        this.data = data;
    }

    /**
     * Opens and validates {@code path}.
     *
     * @throws InvalidSafetensorsException if the file does not follow the format or holds a tensor
     *                                     of a type other than F32, F16, BF16; the message names
     *                                     the file, the tensor, and what was expected
     * @throws IOException                 if the file cannot be read
     */
    public static SafetensorsFile open(Path path) throws IOException {
        try (FileChannel channel = FileChannel.open(path, StandardOpenOption.READ)) {
            long size = channel.size();
            if (size < 8) {
                throw new InvalidSafetensorsException(path, "the file has " + size
                        + " bytes, fewer than the 8-byte header length that starts a safetensors file");
            }
            ByteBuffer lengthBytes = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
            readFully(channel, lengthBytes, 0, path);
            long n = lengthBytes.getLong(0);
            // n is unsigned: a negative long is a length above 2^63.
            if (n < 0 || n > MAX_HEADER_BYTES) {
                throw new InvalidSafetensorsException(path, "the header length " + Long.toUnsignedString(n)
                        + " exceeds the limit of " + MAX_HEADER_BYTES + " bytes");
            }
            if (n < MIN_HEADER_BYTES) {
                throw new InvalidSafetensorsException(path, "the header length " + n + " is below "
                        + MIN_HEADER_BYTES + " (the smallest header is {})");
            }
            if (8 + n > size) {
                throw new InvalidSafetensorsException(path, "the header length " + n + " reaches past the end of the file: 8 + "
                        + n + " bytes needed, the file has " + size);
            }
            ByteBuffer headerBuffer = ByteBuffer.allocate((int) n);
            readFully(channel, headerBuffer, 8, path);
            Header header = parseHeader(path, headerBuffer.flip());
            long dataBytes = size - 8 - n;
            Map<String, TensorInfo> tensors = validateLayout(path, header.tensors, dataBytes, n, size);

            Arena arena = Arena.ofShared();
            try {
                MemorySegment mapped = channel.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
                return new SafetensorsFile(path, n, tensors, header.metadata, arena,
                        mapped.asSlice(8 + n, dataBytes).asReadOnly());
            } catch (IOException | RuntimeException e) {
                arena.close();
                throw e;
            }
        }
    }

    private static void readFully(FileChannel channel, ByteBuffer buffer, long position, Path path) throws IOException {
        long at = position;
        while (buffer.hasRemaining()) {
            int read = channel.read(buffer, at);
            if (read < 0) {
                throw new InvalidSafetensorsException(path, "the file ended while reading its header");
            }
            at += read;
        }
    }

    private record Header(List<TensorInfo> tensors, Map<String, String> metadata) {
    }

    /** Parses the JSON of the header: structure and types only; the layout is checked after. */
    private static Header parseHeader(Path path, ByteBuffer bytes) throws InvalidSafetensorsException {
        String text;
        try {
            text = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(bytes).toString();
        } catch (CharacterCodingException e) {
            throw new InvalidSafetensorsException(path, "the header is not valid UTF-8 (" + e.getMessage() + ")");
        }
        List<TensorInfo> tensors = new ArrayList<>();
        Map<String, String> metadata = Map.of();
        boolean sawMetadata = false;
        Set<String> names = new HashSet<>();
        try (JsonReader reader = new JsonReader(new StringReader(text))) {
            reader.setStrictness(Strictness.STRICT);
            JsonToken first = reader.peek();
            if (first != JsonToken.BEGIN_OBJECT) {
                throw new InvalidSafetensorsException(path, "the header is JSON " + describe(first)
                        + ", expected an object of tensors");
            }
            reader.beginObject();
            while (reader.hasNext()) {
                String name = reader.nextName();
                if (name.equals(METADATA_KEY)) {
                    if (sawMetadata) {
                        throw new InvalidSafetensorsException(path, "the header has " + METADATA_KEY + " twice");
                    }
                    sawMetadata = true;
                    metadata = parseMetadata(path, reader);
                } else {
                    if (!names.add(name)) {
                        throw new InvalidSafetensorsException(path, "tensor '" + name
                                + "' appears twice in the header (names must be unique)");
                    }
                    tensors.add(parseTensor(path, name, reader));
                }
            }
            reader.endObject();
            JsonToken after = reader.peek();
            if (after != JsonToken.END_DOCUMENT) {
                throw new InvalidSafetensorsException(path, "the header has " + describe(after)
                        + " after its JSON object (only space padding may follow it)");
            }
        } catch (InvalidSafetensorsException e) {
            throw e;
        } catch (IOException | IllegalStateException | NumberFormatException e) {
            throw new InvalidSafetensorsException(path, "the header is not valid JSON: " + e.getMessage());
        }
        return new Header(tensors, metadata);
    }

    private static Map<String, String> parseMetadata(Path path, JsonReader reader) throws IOException {
        if (reader.peek() != JsonToken.BEGIN_OBJECT) {
            throw new InvalidSafetensorsException(path, METADATA_KEY + " is " + describe(reader.peek())
                    + ", expected an object of strings");
        }
        Map<String, String> metadata = new LinkedHashMap<>();
        reader.beginObject();
        while (reader.hasNext()) {
            String key = reader.nextName();
            if (reader.peek() != JsonToken.STRING) {
                throw new InvalidSafetensorsException(path, METADATA_KEY + " entry '" + key + "' is "
                        + describe(reader.peek()) + ", expected a string");
            }
            if (metadata.put(key, reader.nextString()) != null) {
                throw new InvalidSafetensorsException(path, METADATA_KEY + " has key '" + key + "' twice");
            }
        }
        reader.endObject();
        return Collections.unmodifiableMap(metadata);
    }

    private static TensorInfo parseTensor(Path path, String name, JsonReader reader) throws IOException {
        String what = "tensor '" + name + "'";
        if (reader.peek() != JsonToken.BEGIN_OBJECT) {
            throw new InvalidSafetensorsException(path, what + " is " + describe(reader.peek())
                    + ", expected an object {dtype, shape, data_offsets}");
        }
        String dtypeName = null;
        long[] shape = null;
        long[] offsets = null;
        reader.beginObject();
        while (reader.hasNext()) {
            String field = reader.nextName();
            boolean repeated = switch (field) {
                case "dtype" -> {
                    boolean seen = dtypeName != null;
                    if (reader.peek() != JsonToken.STRING) {
                        throw new InvalidSafetensorsException(path, what + ": dtype is " + describe(reader.peek())
                                + ", expected a string such as \"F32\"");
                    }
                    dtypeName = reader.nextString();
                    yield seen;
                }
                case "shape" -> {
                    boolean seen = shape != null;
                    shape = readIntegers(path, what + ": shape", reader);
                    yield seen;
                }
                case "data_offsets" -> {
                    boolean seen = offsets != null;
                    offsets = readIntegers(path, what + ": data_offsets", reader);
                    yield seen;
                }
                default -> throw new InvalidSafetensorsException(path, what + " has an unknown field '" + field
                        + "' (expected dtype, shape, data_offsets)");
            };
            if (repeated) {
                throw new InvalidSafetensorsException(path, what + " has the field '" + field + "' twice");
            }
        }
        reader.endObject();
        if (dtypeName == null || shape == null || offsets == null) {
            List<String> missing = new ArrayList<>();
            if (dtypeName == null) {
                missing.add("dtype");
            }
            if (shape == null) {
                missing.add("shape");
            }
            if (offsets == null) {
                missing.add("data_offsets");
            }
            throw new InvalidSafetensorsException(path, what + " lacks " + String.join(", ", missing));
        }
        final String finalDtypeName = dtypeName;
        SafetensorsDType dtype = SafetensorsDType.fromHeaderName(dtypeName).orElseThrow(
                () -> new InvalidSafetensorsException(path, what + " has dtype " + finalDtypeName
                        + ", which fastvmt does not read (supported: " + SafetensorsDType.supportedNames() + ")"));
        if (offsets.length != 2) {
            throw new InvalidSafetensorsException(path, what + ": data_offsets has " + offsets.length
                    + " numbers, expected 2 [begin, end]");
        }
        return new TensorInfo(name, dtype, shape, offsets[0], offsets[1]);
    }

    /** A JSON array of non-negative integers (JSON integer literals only: no fractions, no exponents). */
    private static long[] readIntegers(Path path, String what, JsonReader reader) throws IOException {
        if (reader.peek() != JsonToken.BEGIN_ARRAY) {
            throw new InvalidSafetensorsException(path, what + " is " + describe(reader.peek())
                    + ", expected an array of non-negative integers");
        }
        List<Long> values = new ArrayList<>();
        reader.beginArray();
        while (reader.hasNext()) {
            if (reader.peek() != JsonToken.NUMBER) {
                throw new InvalidSafetensorsException(path, what + " holds " + describe(reader.peek())
                        + ", expected non-negative integers");
            }
            String literal = reader.nextString();
            if (literal.startsWith("-") && literal.substring(1).chars().allMatch(Character::isDigit)) {
                throw new InvalidSafetensorsException(path, what + " holds " + literal
                        + ", expected non-negative integers");
            }
            if (literal.isEmpty() || !literal.chars().allMatch(c -> c >= '0' && c <= '9')) {
                throw new InvalidSafetensorsException(path, what + " holds " + literal + ", expected integers");
            }
            try {
                values.add(Long.parseLong(literal));
            } catch (NumberFormatException e) {
                throw new InvalidSafetensorsException(path, what + " holds " + literal + ", which is too large");
            }
        }
        reader.endArray();
        return values.stream().mapToLong(Long::longValue).toArray();
    }

    private static String describe(JsonToken token) {
        return switch (token) {
            case BEGIN_ARRAY -> "an array";
            case BEGIN_OBJECT -> "an object";
            case STRING -> "a string";
            case NUMBER -> "a number";
            case BOOLEAN -> "a boolean";
            case NULL -> "null";
            case END_DOCUMENT -> "nothing";
            default -> token.toString();
        };
    }

    /**
     * Checks every tensor's size and range against the data section, then that the ranges, sorted,
     * tile it exactly. Returns the tensors by name in the order of their data.
     */
    private static Map<String, TensorInfo> validateLayout(Path path, List<TensorInfo> tensors, long dataBytes,
            long headerBytes, long fileBytes) throws InvalidSafetensorsException {
        for (TensorInfo tensor : tensors) {
            String what = "tensor '" + tensor.name() + "'";
            String shape = Arrays.toString(tensor.shape());
            long needed;
            try {
                needed = Math.multiplyExact(tensor.elementCount(), (long) tensor.dtype().bytes());
            } catch (ArithmeticException e) {
                throw new InvalidSafetensorsException(path, what + " has shape " + shape + " of " + tensor.dtype()
                        + ", whose size in bytes overflows 64 bits");
            }
            if (tensor.end() < tensor.begin()) {
                throw new InvalidSafetensorsException(path, what + " has data_offsets [" + tensor.begin() + ", "
                        + tensor.end() + "] whose end comes before its begin");
            }
            if (tensor.end() - tensor.begin() != needed) {
                throw new InvalidSafetensorsException(path, what + " claims bytes [" + tensor.begin() + ", "
                        + tensor.end() + ") but shape " + shape + " of " + tensor.dtype() + " needs " + needed
                        + " bytes");
            }
            if (tensor.end() > dataBytes) {
                throw new InvalidSafetensorsException(path, what + " claims bytes [" + tensor.begin() + ", "
                        + tensor.end() + ") but the data section has only " + dataBytes + " bytes (file of "
                        + fileBytes + " bytes, 8 + " + headerBytes + " of them header)");
            }
        }
        List<TensorInfo> sorted = new ArrayList<>(tensors);
        sorted.sort(Comparator.comparingLong(TensorInfo::begin).thenComparingLong(TensorInfo::end)
                .thenComparing(TensorInfo::name));
        long covered = 0;
        TensorInfo previous = null;
        for (TensorInfo tensor : sorted) {
            if (tensor.begin() < covered) {
                throw new InvalidSafetensorsException(path, "tensor '" + tensor.name() + "' at bytes ["
                        + tensor.begin() + ", " + tensor.end() + ") overlaps tensor '" + previous.name() + "' at ["
                        + previous.begin() + ", " + previous.end() + ")");
            }
            if (tensor.begin() > covered) {
                throw new InvalidSafetensorsException(path, "bytes [" + covered + ", " + tensor.begin()
                        + ") of the data section belong to no tensor; the format requires the tensors to cover"
                        + " it without holes");
            }
            covered = tensor.end();
            previous = tensor;
        }
        if (covered != dataBytes) {
            throw new InvalidSafetensorsException(path, "bytes [" + covered + ", " + dataBytes
                    + ") at the end of the data section belong to no tensor; the format requires the last tensor"
                    + " to end where the file ends");
        }
        Map<String, TensorInfo> byName = new LinkedHashMap<>();
        for (TensorInfo tensor : sorted) {
            byName.put(tensor.name(), tensor);
        }
        return Collections.unmodifiableMap(byName);
    }

    /** The file this was opened from. */
    public Path path() {
        return path;
    }

    /** N: bytes of JSON header (padding included). */
    public long headerBytes() {
        return headerBytes;
    }

    /** Bytes of tensor data after the header. */
    public long dataBytes() {
        return data.byteSize();
    }

    /** Every tensor name, in the order of the tensors' data in the file. */
    public List<String> names() {
        return List.copyOf(tensors.keySet());
    }

    /** Every tensor by name, in the order of their data in the file. */
    public Map<String, TensorInfo> tensors() {
        return tensors;
    }

    public boolean contains(String name) {
        return tensors.containsKey(name);
    }

    /** The dtype, shape and byte range of a tensor. */
    public TensorInfo info(String name) {
        TensorInfo info = tensors.get(name);
        if (info == null) {
            throw new IllegalArgumentException(path + ": no tensor named '" + name + "'");
        }
        return info;
    }

    /** The "__metadata__" map of the header (empty when the header has none). */
    public Map<String, String> metadata() {
        return metadata;
    }

    /** The tensor's bytes as stored (little-endian), a read-only view on the mapping; valid until close. */
    public MemorySegment bytes(String name) {
        TensorInfo info = info(name);
        requireOpen();
        return data.asSlice(info.begin(), info.byteSize());
    }

    /** The elements as floats, F16 and BF16 widened exactly. */
    public float[] readF32(String name) {
        return TensorLoading.readF32(path, info(name), () -> bytes(name));
    }

    /** The tensor in {@code backend}'s memory as stored: F32 and BF16 stay, F16 widens to F32. */
    public Tensor load(String name, Backend backend) {
        return load(name, backend, info(name).dtype().loadedAs());
    }

    /**
     * The tensor in {@code backend}'s memory as {@code target} (F32 or BF16); see
     * {@link TensorLoading#load}.
     */
    public Tensor load(String name, Backend backend, DType target) {
        return TensorLoading.load(info(name), () -> bytes(name), backend, target);
    }

    private void requireOpen() {
        if (!arena.scope().isAlive()) {
            throw new IllegalStateException(path + " is closed");
        }
    }

    /** Unmaps the file. Views from {@link #bytes} become invalid; loaded tensors do not. */
    @Override
    public void close() {
        if (arena.scope().isAlive()) {
            arena.close();
        }
    }

    @Override
    public String toString() {
        return "SafetensorsFile[" + path + ", " + tensors.size() + " tensors]";
    }
}
