package org.fastvmt.io.pytorch;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.zip.CRC32;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;

import org.fastvmt.io.safetensors.SafetensorsDType;
import org.fastvmt.tensor.BFloat16;

/**
 * Builds small checkpoints in the torch.save zip format, for tests: storages (raw little-endian
 * element bytes), tensors as strided views of them, nested dicts, and the pickle CPython's pickler
 * writes for such an object at protocol 2 ({@code OrderedDict} via REDUCE, each tensor as
 * {@code _rebuild_tensor_v2(persistent storage id, offset, size, stride, False, OrderedDict())},
 * a state dict's {@code _metadata} via BUILD), packed as {@code <archive>/data.pkl},
 * {@code <archive>/byteorder}, {@code <archive>/data/<key>}, {@code <archive>/version}.
 * Switches make each part wrong in one way, for the refusal tests.
 */
public final class TorchSaveFixture {

    /** A dict pickled as collections.OrderedDict (what state_dict() returns). */
    public static final class OrderedDict extends LinkedHashMap<String, Object> {
        private static final long serialVersionUID = 1L;
    }

    /** Raw bytes of a storage record; {@code numel} is what the pickle claims. */
    public record Storage(String key, SafetensorsDType dtype, long numel, byte[] bytes) {
    }

    /** A tensor: {@code shape} elements with {@code strides} from element {@code offset} of a storage. */
    public record TensorRef(String storageKey, long offset, long[] shape, long[] strides) {
    }

    private final Map<String, Storage> storages = new LinkedHashMap<>();
    private final OrderedDict root = new OrderedDict();
    private String archiveName = "archive";
    private String byteOrder = "little";
    private String version = "3\n";
    private boolean deflate;
    private final Set<String> omitted = new HashSet<>();

    /** A row-major view of {@code shape} from element {@code offset}. */
    public static TensorRef contiguous(String storageKey, long offset, long... shape) {
        long[] strides = new long[shape.length];
        long stride = 1;
        for (int axis = shape.length - 1; axis >= 0; axis--) {
            strides[axis] = stride;
            stride *= shape[axis];
        }
        return new TensorRef(storageKey, offset, shape, strides);
    }

    public static TensorRef strided(String storageKey, long offset, long[] shape, long[] strides) {
        return new TensorRef(storageKey, offset, shape, strides);
    }

    /** The storage bytes of {@code values} as {@code dtype} (F16 and BF16 rounded to nearest even). */
    public static byte[] encode(SafetensorsDType dtype, float... values) {
        ByteBuffer buffer = ByteBuffer.allocate(values.length * dtype.bytes()).order(ByteOrder.LITTLE_ENDIAN);
        for (float value : values) {
            switch (dtype) {
                case F32 -> buffer.putFloat(value);
                case F16 -> buffer.putShort(Float.floatToFloat16(value));
                case BF16 -> buffer.putShort(BFloat16.fromFloat(value));
            }
        }
        return buffer.array();
    }

    /** What reading {@code values} stored as {@code dtype} must give back, exactly. */
    public static float[] rounded(SafetensorsDType dtype, float... values) {
        float[] out = new float[values.length];
        for (int i = 0; i < values.length; i++) {
            out[i] = switch (dtype) {
                case F32 -> values[i];
                case F16 -> Float.float16ToFloat(Float.floatToFloat16(values[i]));
                case BF16 -> BFloat16.toFloat(BFloat16.fromFloat(values[i]));
            };
        }
        return out;
    }

    public TorchSaveFixture storage(String key, SafetensorsDType dtype, float... values) {
        return storage(new Storage(key, dtype, values.length, encode(dtype, values)));
    }

    public TorchSaveFixture storage(Storage storage) {
        storages.put(storage.key(), storage);
        return this;
    }

    /** Puts an entry of the saved dict: a TensorRef, a Map (nested dict), or a plain value. */
    public TorchSaveFixture put(String name, Object value) {
        root.put(name, value);
        return this;
    }

    public TorchSaveFixture archiveName(String name) {
        archiveName = name;
        return this;
    }

    /** The byteorder record's text; null leaves the record out. */
    public TorchSaveFixture byteOrder(String order) {
        byteOrder = order;
        return this;
    }

    public TorchSaveFixture version(String text) {
        version = text;
        return this;
    }

    /** Deflate every record (torch.save stores them; a re-packed archive may not). */
    public TorchSaveFixture deflate(boolean on) {
        deflate = on;
        return this;
    }

    /** Leaves the storage record {@code data/<key>} out of the archive. */
    public TorchSaveFixture omitStorageRecord(String key) {
        omitted.add(key);
        return this;
    }

    /** The pickle of the root dict, as CPython writes it. */
    public byte[] pickle() {
        PickleWriter writer = new PickleWriter().proto(2);
        value(writer, root, true);
        return writer.stop().bytes();
    }

    private void value(PickleWriter writer, Object value, boolean isRoot) {
        switch (value) {
            case null -> writer.none();
            case TensorRef tensor -> tensor(writer, tensor);
            case Map<?, ?> map -> dict(writer, map, isRoot);
            case List<?> list -> {
                writer.op(']').put();
                if (list.size() == 1) {
                    value(writer, list.getFirst(), false);
                    writer.op('a');
                } else if (!list.isEmpty()) {
                    writer.mark();
                    list.forEach(item -> value(writer, item, false));
                    writer.op('e');
                }
            }
            case Long number -> writer.integer(number);
            case Integer number -> writer.integer(number);
            case Double number -> writer.binfloat(number);
            case Boolean flag -> writer.bool(flag);
            case String text -> writer.string(text);
            default -> throw new IllegalArgumentException("cannot pickle " + value.getClass());
        }
    }

    private void dict(PickleWriter writer, Map<?, ?> map, boolean isRoot) {
        boolean ordered = map instanceof OrderedDict;
        if (ordered) {
            writer.global("collections", "OrderedDict").tuple(0).reduce().put();
        } else {
            writer.op('}').put();
        }
        if (map.size() == 1) {
            Map.Entry<?, ?> entry = map.entrySet().iterator().next();
            writer.string((String) entry.getKey());
            value(writer, entry.getValue(), false);
            writer.op('s');
        } else if (!map.isEmpty()) {
            writer.mark();
            for (Map.Entry<?, ?> entry : map.entrySet()) {
                writer.string((String) entry.getKey());
                value(writer, entry.getValue(), false);
            }
            writer.op('u');
        }
        if (ordered && isRoot) {
            // state_dict()'s _metadata attribute: {"_metadata": OrderedDict({"": {"version": 1}})}
            writer.op('}').put().string("_metadata");
            writer.global("collections", "OrderedDict").tuple(0).reduce().put();
            writer.string("").op('}').put().string("version").integer(1).op('s').op('s');
            writer.op('s').op('b');
        }
    }

    private void tensor(PickleWriter writer, TensorRef tensor) {
        Storage storage = storages.get(tensor.storageKey());
        if (storage == null) {
            throw new IllegalArgumentException("no storage '" + tensor.storageKey() + "'");
        }
        writer.global("torch._utils", "_rebuild_tensor_v2").mark();
        writer.mark().string("storage").global("torch", storageClass(storage.dtype())).string(storage.key())
                .string("cpu").integer(storage.numel()).tuple(5).put().op('Q');
        writer.integer(tensor.offset()).intTuple(tensor.shape()).intTuple(tensor.strides()).bool(false);
        writer.global("collections", "OrderedDict").tuple(0).reduce().put();
        writer.tuple(6).put().reduce().put();
    }

    public static String storageClass(SafetensorsDType dtype) {
        return switch (dtype) {
            case F32 -> "FloatStorage";
            case F16 -> "HalfStorage";
            case BF16 -> "BFloat16Storage";
        };
    }

    /** Writes the checkpoint. */
    public Path write(Path file) throws IOException {
        Map<String, byte[]> records = new LinkedHashMap<>();
        records.put("data.pkl", pickle());
        if (byteOrder != null) {
            records.put("byteorder", byteOrder.getBytes(StandardCharsets.US_ASCII));
        }
        for (Storage storage : new TreeMap<>(storages).values()) {
            if (!omitted.contains(storage.key())) {
                records.put("data/" + storage.key(), storage.bytes());
            }
        }
        if (version != null) {
            records.put("version", version.getBytes(StandardCharsets.US_ASCII));
        }
        return writeArchive(file, archiveName, records, deflate);
    }

    /** A zip of {@code records}, each named {@code <archiveName>/<name>}, stored or deflated. */
    public static Path writeArchive(Path file, String archiveName, Map<String, byte[]> records, boolean deflate)
            throws IOException {
        try (OutputStream stream = Files.newOutputStream(file); ZipOutputStream zip = new ZipOutputStream(stream)) {
            for (Map.Entry<String, byte[]> record : records.entrySet()) {
                ZipEntry entry = new ZipEntry(archiveName + "/" + record.getKey());
                byte[] bytes = record.getValue();
                if (deflate) {
                    entry.setMethod(ZipEntry.DEFLATED);
                } else {
                    CRC32 crc = new CRC32();
                    crc.update(bytes);
                    entry.setMethod(ZipEntry.STORED);
                    entry.setSize(bytes.length);
                    entry.setCompressedSize(bytes.length);
                    entry.setCrc(crc.getValue());
                }
                zip.putNextEntry(entry);
                zip.write(bytes);
                zip.closeEntry();
            }
        }
        return file;
    }

    /** A checkpoint whose data.pkl is {@code pickle} (and nothing else but a byte-order mark). */
    public static Path writePickle(Path file, byte[] pickle) throws IOException {
        Map<String, byte[]> records = new LinkedHashMap<>();
        records.put("data.pkl", pickle);
        records.put("byteorder", "little".getBytes(StandardCharsets.US_ASCII));
        records.put("version", "3\n".getBytes(StandardCharsets.US_ASCII));
        return writeArchive(file, "archive", records, false);
    }
}
