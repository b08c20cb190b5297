package org.fastvmt.io.pytorch;

import java.io.Closeable;
import java.io.IOException;
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
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;
import java.util.Set;

import org.fastvmt.backend.Backend;
import org.fastvmt.io.TensorLoading;
import org.fastvmt.io.pytorch.PickleValues.Storage;
import org.fastvmt.tensor.DType;
import org.fastvmt.tensor.Tensor;

/**
 * A PyTorch checkpoint written by {@code torch.save} (PyTorch 1.6 and later: a zip archive), read
 * without running Python and without executing anything the file asks for.
 *
 * <p>The format (torch/serialization.py {@code _save}, {@code _load}; torch/_utils.py
 * {@code _rebuild_tensor_v2}): every record sits under one folder, the archive name (the first
 * record's folder, often the file's stem or "archive"). {@code <archive>/data.pkl} is a pickle of the
 * saved object in which each tensor is {@code _rebuild_tensor_v2(storage, storage_offset, size,
 * stride, requires_grad, backward_hooks)} and each storage a persistent id ('storage', storage class,
 * key, location, numel) whose bytes are the record {@code <archive>/data/<key>}: numel elements of
 * the class's type, in the byte order named by {@code <archive>/byteorder} ("little" when the record
 * is absent, as torch.load assumes). {@code <archive>/version} holds the format version.
 *
 * <p>The pickle is interpreted by {@link RestrictedUnpickler}, which accepts only dicts,
 * OrderedDicts, tensors of F32, F16 and BF16 storages, and plain scalars, strings, lists and tuples;
 * anything else (any other global such as builtins.eval or os.system, or opcodes such as INST, OBJ,
 * NEWOBJ, EXT*) is refused with an error naming the file, what was asked for and its byte position.
 * Big-endian checkpoints are refused.
 *
 * <p><b>Nested dicts are flattened with dots</b>: {@code {"model": {"a.weight": t}}} reads as the
 * tensor "model.a.weight", and a plain state dict reads with its own keys; two paths that flatten to
 * the same name are refused. Values that are neither tensors nor dicts (an epoch number, a config
 * string, a list) are not tensors: they are skipped and named by {@link #skipped()}.
 *
 * <p>{@link #open} validates everything before a tensor byte is read: every storage record exists
 * and has exactly the bytes its numel needs, and every element of every tensor lies inside its
 * storage. Tensors may share a storage and may start anywhere in it. The file is memory-mapped;
 * torch.save stores records uncompressed, so a contiguous tensor is a view on the mapping; a
 * deflated record is inflated on first use, and a non-contiguous tensor is copied into row-major
 * order on first use (both kept until {@link #close}).
 */
public final class PthFile implements Closeable {

    /** The largest data.pkl accepted; a state dict's pickle is kilobytes (the tensor data is elsewhere). */
    public static final long MAX_PICKLE_BYTES = 256L << 20;

    /** The largest byteorder or version record accepted. */
    private static final long MAX_MARK_BYTES = 64;

    /** Nested dicts deeper than this are refused (a real checkpoint nests a few levels). */
    private static final int MAX_DEPTH = 64;

    static {
        // Storages are used byte for byte; the backends hold native-order values.
        if (ByteOrder.nativeOrder() != ByteOrder.LITTLE_ENDIAN) {
            throw new ExceptionInInitializerError("PyTorch checkpoints are read as little-endian; this platform is not");
        }
    }

    private final Path path;
    private final String archiveName;
    private final OptionalInt version;
    private final Map<String, PthTensorInfo> tensors;
    private final Map<String, PthArchive.Record> storageRecords;
    private final List<String> skipped;
    private final Arena arena;
    private final PthArchive archive;
    private final Map<String, MemorySegment> storageBytes = new HashMap<>();
    private final Map<String, MemorySegment> gathered = new HashMap<>();

    private PthFile(Path path, String archiveName, OptionalInt version, Map<String, PthTensorInfo> tensors,
            Map<String, PthArchive.Record> storageRecords, List<String> skipped, Arena arena, PthArchive archive) {
        this.path = path;
        this.archiveName = archiveName;
        this.version = version;
        this.tensors = tensors;
        this.storageRecords = storageRecords;
        this.skipped = skipped;
        this.arena = arena;
        this.archive = archive;
    }

    /**
     * Opens and validates {@code path}.
     *
     * @throws InvalidPthException if the file is not a torch.save zip checkpoint, asks for anything
     *                             the restricted reader refuses, or is inconsistent; the message
     *                             names the file and the problem
     * @throws IOException         if the file cannot be read
     */
    public static PthFile open(Path path) throws IOException {
        Arena arena = Arena.ofShared();
        PthArchive archive = null;
        try {
            MemorySegment mapping;
            try (FileChannel channel = FileChannel.open(path, StandardOpenOption.READ)) {
                checkMagic(path, channel);
                mapping = channel.map(FileChannel.MapMode.READ_ONLY, 0, channel.size(), arena);
            }
            archive = PthArchive.open(path, mapping);
            PthFile file = read(path, archive, arena);
            archive = null;
            return file;
        } catch (IOException | RuntimeException e) {
            if (archive != null) {
                archive.close();
            }
            arena.close();
            throw e;
        }
    }

    /** A zip starts "PK\3\4"; the format before PyTorch 1.6 is a bare pickle (0x80 = PROTO). */
    private static void checkMagic(Path path, FileChannel channel) throws IOException {
        long size = channel.size();
        ByteBuffer head = ByteBuffer.allocate((int) Math.min(4, size));
        while (head.hasRemaining() && channel.read(head, head.position()) >= 0) {
            // read until full or end of file
        }
        byte[] magic = head.array();
        if (magic.length > 0 && (magic[0] & 0xFF) == 0x80) {
            throw new InvalidPthException(path, "is in the legacy torch.save format (a bare pickle, PyTorch before"
                    + " 1.6), which fastvmt does not read; load and re-save it with a recent PyTorch");
        }
        if (magic.length < 4 || magic[0] != 'P' || magic[1] != 'K' || magic[2] != 3 || magic[3] != 4) {
            throw new InvalidPthException(path, "is not a torch.save checkpoint: it does not start like a zip archive"
                    + " (" + size + " bytes)");
        }
    }

    private static PthFile read(Path path, PthArchive archive, Arena arena) throws IOException {
        Map<String, PthArchive.Record> records = archive.records();
        if (records.isEmpty()) {
            throw new InvalidPthException(path, "is an empty zip archive, not a torch.save checkpoint");
        }
        String first = records.keySet().iterator().next();
        int slash = first.indexOf('/');
        if (slash <= 0) {
            throw new InvalidPthException(path, "is not a torch.save checkpoint: its first record '" + first
                    + "' is not inside an archive folder");
        }
        String archiveName = first.substring(0, slash);
        String prefix = archiveName + "/";
        if (records.containsKey(prefix + "constants.pkl")) {
            throw new InvalidPthException(path, "is a TorchScript archive (it has " + prefix
                    + "constants.pkl), not a torch.save checkpoint of tensors");
        }
        PthArchive.Record pickle = records.get(prefix + "data.pkl");
        if (pickle == null) {
            throw new InvalidPthException(path, "has no record " + prefix + "data.pkl; not a torch.save checkpoint");
        }
        checkByteOrder(path, archive, records.get(prefix + "byteorder"));
        OptionalInt version = readVersion(path, archive, records.containsKey(prefix + "version")
                ? records.get(prefix + "version") : records.get(prefix + ".data/version"));

        Object root = RestrictedUnpickler.load(path, pickle.name(), archive.readSmall(pickle, MAX_PICKLE_BYTES));
        if (!(root instanceof Map<?, ?> map)) {
            throw new InvalidPthException(path, "holds " + RestrictedUnpickler.describe(root)
                    + ", not a dict of tensors (a state dict)");
        }
        Map<String, PickleValues.Tensor> found = new LinkedHashMap<>();
        List<String> skipped = new ArrayList<>();
        flatten(path, "", map, found, skipped, Collections.newSetFromMap(new IdentityHashMap<>()));

        Map<String, PthArchive.Record> storageRecords = new HashMap<>();
        Map<String, PthTensorInfo> tensors = new LinkedHashMap<>();
        for (Map.Entry<String, PickleValues.Tensor> entry : found.entrySet()) {
            PickleValues.Tensor tensor = entry.getValue();
            Storage storage = tensor.storage();
            if (!storageRecords.containsKey(storage.key())) {
                storageRecords.put(storage.key(), storageRecord(path, records, prefix, storage));
            }
            PthTensorInfo info = new PthTensorInfo(entry.getKey(), storage.dtype(), tensor.shape(), tensor.strides(),
                    storage.key(), tensor.offset());
            checkExtent(path, info, storage);
            tensors.put(info.name(), info);
        }
        return new PthFile(path, archiveName, version, Collections.unmodifiableMap(tensors),
                Collections.unmodifiableMap(storageRecords), List.copyOf(skipped), arena, archive);
    }

    private static void checkByteOrder(Path path, PthArchive archive, PthArchive.Record record) throws IOException {
        if (record == null) {
            return; // torch.load reads a checkpoint without the mark as little-endian
        }
        String order = new String(archive.readSmall(record, MAX_MARK_BYTES), StandardCharsets.US_ASCII);
        if (order.equals("big")) {
            throw new InvalidPthException(path, "was written on a big-endian machine (" + record.name()
                    + " says 'big'); fastvmt reads little-endian checkpoints only: load and re-save it on a"
                    + " little-endian machine");
        }
        if (!order.equals("little")) {
            throw new InvalidPthException(path, record.name() + " names the byte order '" + order
                    + "', expected 'little' or 'big'");
        }
    }

    private static OptionalInt readVersion(Path path, PthArchive archive, PthArchive.Record record) throws IOException {
        if (record == null) {
            return OptionalInt.empty();
        }
        String text = new String(archive.readSmall(record, MAX_MARK_BYTES), StandardCharsets.US_ASCII).strip();
        if (text.isEmpty() || text.length() > 9 || !text.chars().allMatch(c -> c >= '0' && c <= '9')) {
            throw new InvalidPthException(path, record.name() + " holds '" + text + "', expected a format version number");
        }
        return OptionalInt.of(Integer.parseInt(text));
    }

    /** Collects the tensors of nested dicts under dotted names; everything else is skipped. */
    private static void flatten(Path path, String prefix, Map<?, ?> map, Map<String, PickleValues.Tensor> found,
            List<String> skipped, Set<Object> open) throws InvalidPthException {
        if (open.size() >= MAX_DEPTH) {
            throw new InvalidPthException(path, "nests dicts more than " + MAX_DEPTH + " deep at '" + prefix + "'");
        }
        if (!open.add(map)) {
            throw new InvalidPthException(path, "the dict at '" + prefix + "' contains itself");
        }
        for (Map.Entry<?, ?> entry : map.entrySet()) {
            String key = switch (entry.getKey()) {
                case String s -> s;
                case Long l -> Long.toString(l);
                default -> throw new InvalidPthException(path, "the dict at '" + prefix + "' has the key "
                        + RestrictedUnpickler.describe(entry.getKey()) + "; only string and integer keys name tensors");
            };
            String name = prefix.isEmpty() ? key : prefix + "." + key;
            Object value = entry.getValue();
            if (value instanceof PickleValues.Tensor tensor) {
                if (found.put(name, tensor) != null) {
                    throw new InvalidPthException(path, "two tensors are named '" + name
                            + "' once nested dicts are joined with dots");
                }
            } else if (value instanceof Map<?, ?> inner) {
                flatten(path, name, inner, found, skipped, open);
            } else {
                skipped.add(name + " (" + RestrictedUnpickler.describe(value) + ")");
            }
        }
        open.remove(map);
    }

    private static PthArchive.Record storageRecord(Path path, Map<String, PthArchive.Record> records, String prefix,
            Storage storage) throws InvalidPthException {
        String name = prefix + "data/" + storage.key();
        PthArchive.Record record = records.get(name);
        if (record == null) {
            throw new InvalidPthException(path, "storage '" + storage.key() + "' (" + storage.typeName() + " of "
                    + storage.numel() + " elements) has no record " + name + " in the archive");
        }
        long needed;
        try {
            needed = Math.multiplyExact(storage.numel(), (long) storage.dtype().bytes());
        } catch (ArithmeticException e) {
            throw new InvalidPthException(path, "storage '" + storage.key() + "' declares " + storage.numel()
                    + " elements, whose size in bytes overflows 64 bits");
        }
        if (record.size() != needed) {
            throw new InvalidPthException(path, "record " + name + " holds " + record.size() + " bytes, but storage '"
                    + storage.key() + "' declares " + storage.numel() + " elements of " + storage.dtype() + " = "
                    + needed + " bytes");
        }
        return record;
    }

    /** Every element the tensor addresses must lie inside its storage. */
    private static void checkExtent(Path path, PthTensorInfo info, Storage storage) throws InvalidPthException {
        String what = "tensor '" + info.name() + "' (" + info.dtype() + " " + Arrays.toString(info.shape()) + ", stride "
                + Arrays.toString(info.strides()) + ", from element " + info.storageOffset() + ")";
        long count;
        try {
            count = info.elementCount();
            info.byteSize();
        } catch (ArithmeticException e) {
            throw new InvalidPthException(path, what + " has a size in bytes that overflows 64 bits");
        }
        if (count == 0) {
            return;
        }
        long last = info.storageOffset();
        long[] shape = info.shape();
        long[] strides = info.strides();
        try {
            for (int axis = 0; axis < shape.length; axis++) {
                last = Math.addExact(last, Math.multiplyExact(shape[axis] - 1, strides[axis]));
            }
        } catch (ArithmeticException e) {
            throw new InvalidPthException(path, what + " reaches past 2^63 elements");
        }
        if (last >= storage.numel()) {
            throw new InvalidPthException(path, what + " needs elements up to " + last + " of storage '" + storage.key()
                    + "', which holds only " + storage.numel() + " (the storage is too small for the shape)");
        }
    }

    /** The file this was opened from. */
    public Path path() {
        return path;
    }

    /** The folder every record of the archive sits in. */
    public String archiveName() {
        return archiveName;
    }

    /** The number in the archive's version record, when it has one. */
    public OptionalInt version() {
        return version;
    }

    /** Every tensor name, in the order of the pickle. */
    public List<String> names() {
        return List.copyOf(tensors.keySet());
    }

    /** Every tensor by name, in the order of the pickle. */
    public Map<String, PthTensorInfo> tensors() {
        return tensors;
    }

    public boolean contains(String name) {
        return tensors.containsKey(name);
    }

    public PthTensorInfo info(String name) {
        PthTensorInfo info = tensors.get(name);
        if (info == null) {
            throw new IllegalArgumentException(path + ": no tensor named '" + name + "'");
        }
        return info;
    }

    /** Entries of the pickled dicts that are not tensors, as "name (what it is)": not read. */
    public List<String> skipped() {
        return skipped;
    }

    /**
     * The tensor's elements in row-major order, little-endian, as a read-only segment of
     * {@link PthTensorInfo#byteSize()} bytes: a view on the mapping for a contiguous tensor of a
     * stored record, else a copy kept until close. Valid until close.
     */
    public synchronized MemorySegment bytes(String name) throws IOException {
        PthTensorInfo info = info(name);
        requireOpen();
        long elementBytes = info.dtype().bytes();
        if (info.elementCount() == 0) {
            return MemorySegment.ofArray(new byte[0]).asReadOnly();
        }
        MemorySegment storage = storage(info.storageKey());
        if (info.contiguous()) {
            return storage.asSlice(info.storageOffset() * elementBytes, info.byteSize());
        }
        MemorySegment copy = gathered.get(name);
        if (copy == null) {
            copy = gather(info, storage);
            gathered.put(name, copy);
        }
        return copy;
    }

    private MemorySegment storage(String key) throws IOException {
        MemorySegment bytes = storageBytes.get(key);
        if (bytes == null) {
            bytes = archive.bytes(storageRecords.get(key), arena);
            storageBytes.put(key, bytes);
        }
        return bytes;
    }

    /** Copies a strided tensor into row-major order, one innermost row at a time. */
    private MemorySegment gather(PthTensorInfo info, MemorySegment storage) {
        long[] shape = info.shape();
        long[] strides = info.strides();
        int rank = shape.length;
        long elementBytes = info.dtype().bytes();
        MemorySegment out = arena.allocate(info.byteSize(), 8);
        long rowLength = shape[rank - 1];
        long innerStride = strides[rank - 1] * elementBytes;
        long rows = info.elementCount() / rowLength;
        long[] index = new long[rank];
        long written = 0;
        for (long row = 0; row < rows; row++) {
            long source = info.storageOffset();
            for (int axis = 0; axis < rank - 1; axis++) {
                source += index[axis] * strides[axis];
            }
            long sourceByte = source * elementBytes;
            for (long i = 0; i < rowLength; i++) {
                MemorySegment.copy(storage, sourceByte + i * innerStride, out, written, elementBytes);
                written += elementBytes;
            }
            for (int axis = rank - 2; axis >= 0; axis--) {
                if (++index[axis] < shape[axis]) {
                    break;
                }
                index[axis] = 0;
            }
        }
        return out.asReadOnly();
    }

    /** The elements as floats, F16 and BF16 widened exactly. */
    public float[] readF32(String name) throws IOException {
        return TensorLoading.readF32(path, info(name), () -> bytes(name));
    }

    /** The tensor in {@code backend}'s memory as stored: F32 and BF16 stay, F16 widens to F32. */
    public Tensor load(String name, Backend backend) throws IOException {
        return load(name, backend, info(name).dtype().loadedAs());
    }

    /**
     * The tensor in {@code backend}'s memory as {@code target} (F32 or BF16); see
     * {@link TensorLoading#load}.
     */
    public Tensor load(String name, Backend backend, DType target) throws IOException {
        return TensorLoading.load(info(name), () -> bytes(name), backend, target);
    }

    private void requireOpen() {
        if (!arena.scope().isAlive()) {
            throw new IllegalStateException(path + " is closed");
        }
    }

    /** Unmaps the file and frees inflated or copied tensors; loaded backend tensors stay valid. */
    @Override
    public synchronized void close() throws IOException {
        if (arena.scope().isAlive()) {
            try {
                archive.close();
            } finally {
                arena.close();
            }
        }
    }

    @Override
    public String toString() {
        return "PthFile[" + path + ", " + tensors.size() + " tensors]";
    }
}
