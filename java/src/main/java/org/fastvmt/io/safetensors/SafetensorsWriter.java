package org.fastvmt.io.safetensors;

import java.io.IOException;
import java.io.StringWriter;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import com.google.gson.stream.JsonWriter;

import org.fastvmt.io.AtomicFiles;
import org.fastvmt.tensor.BFloat16;
import org.fastvmt.tensor.Tensor;

/**
 * Collects named tensors and writes them as one .safetensors file, atomically (a temporary file
 * beside the target, renamed over it: a reader never sees half a file, and a failed write leaves
 * the target as it was).
 *
 * <p>The layout follows the reference writer (huggingface/safetensors safetensors/src/tensor.rs,
 * {@code prepare}): tensors sorted by descending element size, then by name; data packed in that
 * order; header JSON padded with spaces to a multiple of 8 bytes. Because the data section then
 * starts 8-aligned and wider types come first, every tensor starts aligned to its element size.
 *
 * <p>Tensor sources are kept by reference and read at {@link #write} time: a {@link Tensor} must
 * still be open then, and a byte array or segment must not change in between.
 */
public final class SafetensorsWriter {

    /** Tensors are downloaded from a backend through a host buffer of this many bytes. */
    private static final long COPY_CHUNK_BYTES = 16L << 20;

    /** Writes one tensor's bytes (little-endian, row-major) to the channel. */
    @FunctionalInterface
    interface Source {
        void writeTo(FileChannel channel, MemorySegment scratch) throws IOException;
    }

    /** One tensor to write. */
    record Entry(String name, SafetensorsDType dtype, long[] shape, long byteSize, Source source) {
    }

    private final Map<String, Entry> entries = new LinkedHashMap<>();
    private final Map<String, String> metadata = new TreeMap<>();

    /** Adds a tensor given as its stored bytes (little-endian, row-major). */
    public SafetensorsWriter add(String name, SafetensorsDType dtype, long[] shape, byte[] bytes) {
        long size = checkedByteSize(name, dtype, shape);
        if (bytes.length != size) {
            throw new IllegalArgumentException("tensor '" + name + "': " + bytes.length + " bytes given, shape "
                    + Arrays.toString(shape) + " of " + dtype + " needs " + size);
        }
        byte[] copy = bytes.clone();
        return put(new Entry(name, dtype, shape.clone(), size,
                (channel, scratch) -> writeFully(channel, ByteBuffer.wrap(copy))));
    }

    /** Adds a tensor given as a segment of its stored bytes (read when the file is written). */
    public SafetensorsWriter add(String name, SafetensorsDType dtype, long[] shape, MemorySegment bytes) {
        long size = checkedByteSize(name, dtype, shape);
        if (bytes.byteSize() != size) {
            throw new IllegalArgumentException("tensor '" + name + "': " + bytes.byteSize() + " bytes given, shape "
                    + Arrays.toString(shape) + " of " + dtype + " needs " + size);
        }
        return put(new Entry(name, dtype, shape.clone(), size, (channel, scratch) -> {
            for (long offset = 0; offset < size; offset += scratch.byteSize()) {
                long n = Math.min(scratch.byteSize(), size - offset);
                MemorySegment.copy(bytes, offset, scratch, 0, n);
                writeFully(channel, scratch.asSlice(0, n).asByteBuffer());
            }
        }));
    }

    /** Adds floats, stored as {@code dtype} (F16 and BF16 rounded to nearest even). */
    public SafetensorsWriter addFloats(String name, SafetensorsDType dtype, float[] values, long... shape) {
        long size = checkedByteSize(name, dtype, shape);
        if ((long) values.length * dtype.bytes() != size) {
            throw new IllegalArgumentException("tensor '" + name + "': " + values.length + " values given, shape "
                    + Arrays.toString(shape) + " holds " + size / dtype.bytes());
        }
        ByteBuffer buffer = ByteBuffer.allocate(Math.toIntExact(size)).order(ByteOrder.LITTLE_ENDIAN);
        for (float value : values) {
            switch (dtype) {
                case F32 -> buffer.putFloat(value);
                case F16 -> buffer.putShort(Float.floatToFloat16(value));
                case BF16 -> buffer.putShort(BFloat16.fromFloat(value));
            }
        }
        return add(name, dtype, shape, buffer.array());
    }

    /**
     * Adds a backend tensor (F32 or BF16), stored in its own dtype. It is downloaded when the file
     * is written, so it must still be open then.
     */
    public SafetensorsWriter add(String name, Tensor tensor) {
        SafetensorsDType dtype = SafetensorsDType.of(tensor.dtype());
        long size = checkedByteSize(name, dtype, tensor.shape());
        Tensor flat = tensor.view(tensor.elementCount());
        long elementBytes = dtype.bytes();
        return put(new Entry(name, dtype, tensor.shape(), size, (channel, scratch) -> {
            long chunk = scratch.byteSize() / elementBytes;
            for (long start = 0; start < flat.elementCount(); start += chunk) {
                long n = Math.min(chunk, flat.elementCount() - start);
                MemorySegment host = scratch.asSlice(0, n * elementBytes);
                flat.slice(start, n).copyToHost(host);
                writeFully(channel, host.asByteBuffer());
            }
        }));
    }

    /** Sets one entry of the header's "__metadata__" string map (written sorted by key). */
    public SafetensorsWriter metadata(String key, String value) {
        if (key == null || value == null) {
            throw new IllegalArgumentException("metadata key and value must not be null");
        }
        metadata.put(key, value);
        return this;
    }

    /** Sets every entry of {@code values} as metadata. */
    public SafetensorsWriter metadata(Map<String, String> values) {
        values.forEach(this::metadata);
        return this;
    }

    SafetensorsWriter put(Entry entry) {
        if (entries.putIfAbsent(entry.name(), entry) != null) {
            throw new IllegalArgumentException("tensor '" + entry.name() + "' was added twice");
        }
        return this;
    }

    private static long checkedByteSize(String name, SafetensorsDType dtype, long[] shape) {
        if (name == null) {
            throw new IllegalArgumentException("tensor name must not be null");
        }
        if (name.equals("__metadata__")) {
            throw new IllegalArgumentException("'__metadata__' is reserved for the metadata map, not a tensor name");
        }
        long count = 1;
        for (long size : shape) {
            if (size < 0) {
                throw new IllegalArgumentException("tensor '" + name + "' has a negative size in shape "
                        + Arrays.toString(shape));
            }
            count = Math.multiplyExact(count, size);
        }
        return Math.multiplyExact(count, (long) dtype.bytes());
    }

    /** Entries in file order: descending element size, then name. */
    List<Entry> entries() {
        List<Entry> sorted = new ArrayList<>(entries.values());
        sorted.sort(Comparator.comparingInt((Entry e) -> -e.dtype().bytes()).thenComparing(Entry::name));
        return sorted;
    }

    /** The metadata map as it will be written. */
    Map<String, String> metadataMap() {
        return Collections.unmodifiableMap(metadata);
    }

    /** How many tensors have been added. */
    public int size() {
        return entries.size();
    }

    /** Bytes of tensor data the file will hold. */
    public long dataBytes() {
        return entries.values().stream().mapToLong(Entry::byteSize).sum();
    }

    /** The header entries as they will be written: file order, offsets within the data section. */
    public List<TensorInfo> layout() {
        List<TensorInfo> layout = new ArrayList<>();
        long offset = 0;
        for (Entry entry : entries()) {
            layout.add(new TensorInfo(entry.name(), entry.dtype(), entry.shape(), offset, offset + entry.byteSize()));
            offset += entry.byteSize();
        }
        return layout;
    }

    /** The header bytes (JSON padded with spaces to a multiple of 8). */
    byte[] header() {
        StringWriter text = new StringWriter();
        try (JsonWriter json = new JsonWriter(text)) {
            json.setHtmlSafe(false);
            json.beginObject();
            if (!metadata.isEmpty()) {
                json.name("__metadata__").beginObject();
                for (Map.Entry<String, String> entry : metadata.entrySet()) {
                    json.name(entry.getKey()).value(entry.getValue());
                }
                json.endObject();
            }
            for (TensorInfo info : layout()) {
                json.name(info.name()).beginObject();
                json.name("dtype").value(info.dtype().headerName());
                json.name("shape").beginArray();
                for (long size : info.shape()) {
                    json.value(size);
                }
                json.endArray();
                json.name("data_offsets").beginArray().value(info.begin()).value(info.end()).endArray();
                json.endObject();
            }
            json.endObject();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        byte[] bytes = text.toString().getBytes(StandardCharsets.UTF_8);
        int padded = (bytes.length + 7) / 8 * 8;
        byte[] out = Arrays.copyOf(bytes, padded);
        Arrays.fill(out, bytes.length, padded, (byte) ' ');
        if (out.length > SafetensorsFile.MAX_HEADER_BYTES) {
            throw new IllegalStateException("the header would have " + out.length + " bytes, above the format's limit of "
                    + SafetensorsFile.MAX_HEADER_BYTES);
        }
        return out;
    }

    /** Writes the file atomically; the target's folder must exist. */
    public void write(Path target) throws IOException {
        byte[] header = header();
        List<Entry> order = entries();
        AtomicFiles.write(target, file -> {
            try (FileChannel channel = FileChannel.open(file, StandardOpenOption.WRITE,
                    StandardOpenOption.TRUNCATE_EXISTING); Arena arena = Arena.ofConfined()) {
                ByteBuffer length = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(0, header.length);
                writeFully(channel, length);
                writeFully(channel, ByteBuffer.wrap(header));
                long largest = order.stream().mapToLong(Entry::byteSize).max().orElse(0);
                MemorySegment scratch = arena.allocate(Math.max(8, Math.min(COPY_CHUNK_BYTES, largest)), 8);
                long expected = 8 + header.length;
                for (Entry entry : order) {
                    entry.source().writeTo(channel, scratch);
                    expected += entry.byteSize();
                    if (channel.position() != expected) {
                        throw new IOException(target + ": tensor '" + entry.name() + "' wrote "
                                + (channel.position() - expected + entry.byteSize()) + " bytes, expected "
                                + entry.byteSize());
                    }
                }
            }
        });
    }

    private static void writeFully(FileChannel channel, ByteBuffer buffer) throws IOException {
        while (buffer.hasRemaining()) {
            channel.write(buffer);
        }
    }
}
