package org.fastvmt.io.pytorch;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.fastvmt.io.pytorch.PickleValues.Global;
import org.fastvmt.io.pytorch.PickleValues.None;
import org.fastvmt.io.pytorch.PickleValues.Storage;
import org.fastvmt.io.pytorch.PickleValues.Tensor;
import org.fastvmt.io.pytorch.PickleValues.Tuple;
import org.fastvmt.io.safetensors.SafetensorsDType;

/**
 * A pickle interpreter that understands only what torch.save writes for a state dict, and runs
 * nothing. Python's pickle is a small stack machine whose GLOBAL and REDUCE opcodes import and
 * call any function; here GLOBAL resolves only a fixed list of names to inert markers and REDUCE
 * only "calls" those markers with checked arguments, building plain data:
 *
 * <ul>
 *   <li>{@code collections.OrderedDict} with no arguments: an empty dict (a state dict is one; its
 *       {@code _metadata} attribute arrives by BUILD and is ignored);</li>
 *   <li>{@code torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad,
 *       backward_hooks[, metadata])}: a strided view of a storage (no hooks, no metadata);</li>
 *   <li>{@code torch._utils._rebuild_parameter(tensor, requires_grad, backward_hooks)} and
 *       {@code _rebuild_parameter_with_state(..., state)}: the tensor itself;</li>
 *   <li>{@code torch.FloatStorage}, {@code torch.HalfStorage}, {@code torch.BFloat16Storage}: element
 *       types, used inside a persistent id ('storage', type, key, location, numel) that BINPERSID
 *       turns into a reference to the record {@code data/<key>}.</li>
 * </ul>
 *
 * Any other global, any other use of these, and any opcode outside the list in {@link #step} (INST,
 * OBJ, NEWOBJ, EXT*, PERSID, the text opcodes of protocol 0, ...) is refused with an error naming
 * the file, the opcode or global, and its byte position in data.pkl. Accepted: protocols 2 to 5
 * (torch.save writes 2), so FRAME, MEMOIZE, STACK_GLOBAL and SHORT_BINUNICODE are understood too.
 */
final class RestrictedUnpickler {

    /** Globals REDUCE may call. */
    static final String ORDERED_DICT = "collections.OrderedDict";
    static final String REBUILD_TENSOR = "torch._utils._rebuild_tensor_v2";
    static final String REBUILD_PARAMETER = "torch._utils._rebuild_parameter";
    static final String REBUILD_PARAMETER_WITH_STATE = "torch._utils._rebuild_parameter_with_state";

    /** Storage classes fastvmt reads, by qualified name. */
    static final Map<String, SafetensorsDType> STORAGE_TYPES = Map.of(
            "torch.FloatStorage", SafetensorsDType.F32,
            "torch.HalfStorage", SafetensorsDType.F16,
            "torch.BFloat16Storage", SafetensorsDType.BF16);

    /** "collections.OrderedDict, torch._utils._rebuild_tensor_v2, ...": for messages. */
    static final String ALLOWED = String.join(", ", ORDERED_DICT, REBUILD_TENSOR, REBUILD_PARAMETER,
            REBUILD_PARAMETER_WITH_STATE, "torch.FloatStorage", "torch.HalfStorage", "torch.BFloat16Storage");

    /** Names of every pickle opcode (pickletools), so a refusal can name what it met. */
    private static final Map<Integer, String> OPCODE_NAMES = opcodeNames();

    /** A marker on the stack: where MARK was. */
    private static final Object MARK_OBJECT = new Object();

    private final Path file;
    private final String record;
    private final byte[] bytes;
    private final List<Object> stack = new ArrayList<>();
    private final List<Integer> marks = new ArrayList<>();
    private final Map<Long, Object> memo = new HashMap<>();
    private final Map<String, Storage> storages = new LinkedHashMap<>();
    private int at;
    private int opcodeAt;

    private RestrictedUnpickler(Path file, String record, byte[] bytes) {
        this.file = file;
        this.record = record;
        this.bytes = bytes;
    }

    /**
     * Interprets {@code bytes} (the record {@code record} of {@code file}) up to STOP and returns
     * the value it built: nested dicts, lists, tuples, scalars, strings and {@link Tensor}s.
     */
    static Object load(Path file, String record, byte[] bytes) throws InvalidPthException {
        return new RestrictedUnpickler(file, record, bytes).run();
    }

    private Object run() throws InvalidPthException {
        while (true) {
            if (at >= bytes.length) {
                throw refuse("the pickle ends without its STOP opcode (the record is truncated)");
            }
            opcodeAt = at;
            int opcode = bytes[at++] & 0xFF;
            if (opcode == '.') {
                if (stack.isEmpty() || top() == MARK_OBJECT) {
                    throw refuse("STOP with nothing built");
                }
                return pop();
            }
            step(opcode);
        }
    }

    private void step(int opcode) throws InvalidPthException {
        switch (opcode) {
            case 0x80 -> { // PROTO
                int version = u8();
                if (version < 2 || version > 5) {
                    throw refuse("pickle protocol " + version + " (torch.save writes 2; 2 to 5 are read)");
                }
            }
            case 0x95 -> { // FRAME: a length prefix for buffering; the content follows inline
                long length = u64();
                if (length > bytes.length - at) {
                    throw refuse("FRAME of " + length + " bytes runs past the end of the pickle");
                }
            }
            case '(' -> { // MARK
                marks.add(stack.size());
                stack.add(MARK_OBJECT);
            }
            case '}' -> push(new LinkedHashMap<Object, Object>()); // EMPTY_DICT
            case ']' -> push(new ArrayList<Object>()); // EMPTY_LIST
            case ')' -> push(new Tuple(List.of())); // EMPTY_TUPLE
            case 't' -> push(new Tuple(popToMark())); // TUPLE
            case 0x85 -> push(new Tuple(popItems(1))); // TUPLE1
            case 0x86 -> push(new Tuple(popItems(2))); // TUPLE2
            case 0x87 -> push(new Tuple(popItems(3))); // TUPLE3
            case 'N' -> push(None.NONE);
            case 0x88 -> push(Boolean.TRUE); // NEWTRUE
            case 0x89 -> push(Boolean.FALSE); // NEWFALSE
            case 'K' -> push((long) u8()); // BININT1
            case 'M' -> push((long) u16()); // BININT2
            case 'J' -> push((long) s32()); // BININT
            case 0x8a -> push(long1()); // LONG1
            case 'G' -> push(Double.longBitsToDouble(u64BigEndian())); // BINFLOAT
            case 'X' -> push(text(u32())); // BINUNICODE
            case 0x8c -> push(text(u8())); // SHORT_BINUNICODE
            case 'B' -> push(raw(u32())); // BINBYTES
            case 'C' -> push(raw(u8())); // SHORT_BINBYTES
            case 'q' -> memoize(u8()); // BINPUT
            case 'r' -> memoize(u32()); // LONG_BINPUT
            case 0x94 -> memoize(memo.size()); // MEMOIZE
            case 'h' -> push(recall(u8())); // BINGET
            case 'j' -> push(recall(u32())); // LONG_BINGET
            case 'a' -> { // APPEND
                Object item = pop();
                list(top(), "APPEND").add(item);
            }
            case 'e' -> { // APPENDS
                List<Object> items = popToMark();
                list(top(), "APPENDS").addAll(items);
            }
            case 's' -> { // SETITEM
                Object value = pop();
                Object key = pop();
                put(top(), key, value, "SETITEM");
            }
            case 'u' -> { // SETITEMS
                List<Object> items = popToMark();
                if (items.size() % 2 != 0) {
                    throw refuse("SETITEMS with an odd number (" + items.size() + ") of keys and values");
                }
                Object target = top();
                for (int i = 0; i < items.size(); i += 2) {
                    put(target, items.get(i), items.get(i + 1), "SETITEMS");
                }
            }
            case 'c' -> push(global(line(), line())); // GLOBAL
            case 0x93 -> { // STACK_GLOBAL
                Object name = pop();
                Object module = pop();
                if (!(module instanceof String m) || !(name instanceof String n)) {
                    throw refuse("STACK_GLOBAL needs two strings, got " + describe(module) + " and " + describe(name));
                }
                push(global(m, n));
            }
            case 'Q' -> push(persistentLoad(pop())); // BINPERSID
            case 'R' -> { // REDUCE
                Object arguments = pop();
                Object callable = pop();
                push(reduce(callable, arguments));
            }
            case 'b' -> { // BUILD
                Object state = pop();
                Object target = top();
                // A state dict is an OrderedDict whose __dict__ holds _metadata (versions per module):
                // not tensors, so it is dropped.
                if (!(target instanceof LinkedHashMap<?, ?>) || !(state instanceof Map<?, ?> || state == None.NONE)) {
                    throw refuse("BUILD of " + describe(target) + " with " + describe(state)
                            + " (only a dict's attributes are accepted, and ignored)");
                }
            }
            default -> throw refuse("opcode " + opcodeName(opcode) + " is not accepted (the reader runs only"
                    + " the opcodes torch.save uses for tensors and dicts; nothing was executed)");
        }
    }

    // ---- globals and calls ----

    private Global global(String module, String name) throws InvalidPthException {
        String qualified = module + "." + name;
        if (STORAGE_TYPES.containsKey(qualified) || qualified.equals(ORDERED_DICT) || qualified.equals(REBUILD_TENSOR)
                || qualified.equals(REBUILD_PARAMETER) || qualified.equals(REBUILD_PARAMETER_WITH_STATE)) {
            return new Global(module, name);
        }
        if (module.equals("torch") && name.endsWith("Storage")) {
            throw refuse("global " + qualified + ": tensors of this storage type are not read (fastvmt reads "
                    + "torch.FloatStorage as F32, torch.HalfStorage as F16, torch.BFloat16Storage as BF16)");
        }
        throw refuse("global " + qualified + " is not allowed; a checkpoint may only name " + ALLOWED
                + " (nothing was imported or executed)");
    }

    private Object reduce(Object callable, Object arguments) throws InvalidPthException {
        if (!(callable instanceof Global global) || STORAGE_TYPES.containsKey(global.qualified())) {
            throw refuse("REDUCE calls " + describe(callable) + ", which is not a function the reader accepts");
        }
        if (!(arguments instanceof Tuple args)) {
            throw refuse("REDUCE of " + global.qualified() + " with " + describe(arguments) + " instead of a tuple");
        }
        String name = global.qualified();
        switch (name) {
            case ORDERED_DICT -> {
                if (args.size() != 0) {
                    throw refuse(ORDERED_DICT + " with " + args.size() + " arguments (torch.save passes none)");
                }
                return new LinkedHashMap<Object, Object>();
            }
            case REBUILD_TENSOR -> {
                return rebuildTensor(args);
            }
            case REBUILD_PARAMETER, REBUILD_PARAMETER_WITH_STATE -> {
                int expected = name.equals(REBUILD_PARAMETER) ? 3 : 4;
                if (args.size() != expected) {
                    throw refuse(name + " with " + args.size() + " arguments, expected " + expected);
                }
                if (!(args.get(0) instanceof Tensor tensor)) {
                    throw refuse(name + " of " + describe(args.get(0)) + " instead of a tensor");
                }
                requireBoolean(name, "requires_grad", args.get(1));
                requireEmpty(name, "backward_hooks", args.get(2));
                if (expected == 4) {
                    requireEmpty(name, "state", args.get(3));
                }
                return tensor;
            }
            default -> throw new IllegalStateException("unhandled global " + name);
        }
    }

    private Tensor rebuildTensor(Tuple args) throws InvalidPthException {
        String name = REBUILD_TENSOR;
        if (args.size() != 6 && args.size() != 7) {
            throw refuse(name + " with " + args.size() + " arguments, expected (storage, storage_offset, size, stride,"
                    + " requires_grad, backward_hooks[, metadata])");
        }
        if (!(args.get(0) instanceof Storage storage)) {
            throw refuse(name + ": the storage is " + describe(args.get(0)) + ", expected a persistent storage id");
        }
        long offset = nonNegative(name, "storage_offset", args.get(1));
        long[] shape = integers(name, "size", args.get(2));
        long[] strides = integers(name, "stride", args.get(3));
        if (shape.length != strides.length) {
            throw refuse(name + ": size " + Arrays.toString(shape) + " and stride " + Arrays.toString(strides)
                    + " differ in length");
        }
        requireBoolean(name, "requires_grad", args.get(4));
        requireEmpty(name, "backward_hooks", args.get(5));
        if (args.size() == 7) {
            requireEmpty(name, "metadata", args.get(6));
        }
        return new Tensor(storage, offset, shape, strides, opcodeAt);
    }

    /** A persistent id ('storage', type, key, location, numel) names the record data/key. */
    private Storage persistentLoad(Object pid) throws InvalidPthException {
        if (!(pid instanceof Tuple id) || id.size() != 5 || !"storage".equals(id.get(0))) {
            throw refuse("persistent id " + describe(pid) + ", expected ('storage', type, key, location, numel)");
        }
        if (!(id.get(1) instanceof Global type) || !STORAGE_TYPES.containsKey(type.qualified())) {
            throw refuse("persistent id with storage type " + describe(id.get(1)));
        }
        if (!(id.get(2) instanceof String key) || key.isEmpty() || key.contains("/") || key.contains("\\")
                || key.equals(".") || key.equals("..")) {
            throw refuse("persistent id with storage key " + describe(id.get(2)) + ", expected a plain record name");
        }
        if (!(id.get(3) instanceof String location)) {
            throw refuse("persistent id with location " + describe(id.get(3)) + ", expected a string such as 'cpu'");
        }
        long numel = nonNegative("storage '" + key + "'", "numel", id.get(4));
        Storage storage = new Storage(STORAGE_TYPES.get(type.qualified()), type.qualified(), key, location, numel);
        Storage previous = storages.putIfAbsent(key, storage);
        if (previous == null) {
            return storage;
        }
        if (previous.dtype() != storage.dtype() || previous.numel() != numel) {
            throw refuse("storage '" + key + "' is named as " + previous.typeName() + " of " + previous.numel()
                    + " elements and again as " + storage.typeName() + " of " + numel);
        }
        return previous;
    }

    private void requireBoolean(String function, String argument, Object value) throws InvalidPthException {
        if (!(value instanceof Boolean)) {
            throw refuse(function + ": " + argument + " is " + describe(value) + ", expected True or False");
        }
    }

    private void requireEmpty(String function, String argument, Object value) throws InvalidPthException {
        boolean empty = value == None.NONE || value instanceof Map<?, ?> map && map.isEmpty()
                || value instanceof Tuple tuple && tuple.size() == 0;
        if (!empty) {
            throw refuse(function + ": " + argument + " is " + describe(value)
                    + "; only an empty one is accepted (hooks and tensor metadata are not read)");
        }
    }

    private long nonNegative(String function, String argument, Object value) throws InvalidPthException {
        if (!(value instanceof Long number) || number < 0) {
            throw refuse(function + ": " + argument + " is " + describe(value) + ", expected a non-negative integer");
        }
        return number;
    }

    private long[] integers(String function, String argument, Object value) throws InvalidPthException {
        if (!(value instanceof Tuple tuple)) {
            throw refuse(function + ": " + argument + " is " + describe(value) + ", expected a tuple of integers");
        }
        long[] out = new long[tuple.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = nonNegative(function, argument + "[" + i + "]", tuple.get(i));
        }
        return out;
    }

    // ---- stack, memo, containers ----

    private void push(Object value) {
        stack.add(value);
    }

    private Object top() throws InvalidPthException {
        if (stack.isEmpty()) {
            throw refuse(opcodeName(bytes[opcodeAt] & 0xFF) + " on an empty stack");
        }
        return stack.getLast();
    }

    private Object pop() throws InvalidPthException {
        Object value = top();
        if (value == MARK_OBJECT) {
            throw refuse(opcodeName(bytes[opcodeAt] & 0xFF) + " finds a MARK where it expects a value");
        }
        return stack.removeLast();
    }

    private List<Object> popItems(int count) throws InvalidPthException {
        Object[] items = new Object[count];
        for (int i = count - 1; i >= 0; i--) {
            items[i] = pop();
        }
        return Arrays.asList(items);
    }

    private List<Object> popToMark() throws InvalidPthException {
        if (marks.isEmpty()) {
            throw refuse(opcodeName(bytes[opcodeAt] & 0xFF) + " without a MARK before it");
        }
        int mark = marks.removeLast();
        List<Object> items = new ArrayList<>(stack.subList(mark + 1, stack.size()));
        stack.subList(mark, stack.size()).clear();
        return items;
    }

    private void memoize(long index) throws InvalidPthException {
        Object value = top();
        if (value == MARK_OBJECT) {
            throw refuse("memoizing a MARK");
        }
        memo.put(index, value);
    }

    private Object recall(long index) throws InvalidPthException {
        Object value = memo.get(index);
        if (value == null) {
            throw refuse("memo entry " + index + " is read before it is written");
        }
        return value;
    }

    @SuppressWarnings("unchecked")
    private List<Object> list(Object target, String opcode) throws InvalidPthException {
        if (!(target instanceof ArrayList<?>)) {
            throw refuse(opcode + " into " + describe(target) + ", expected a list");
        }
        return (List<Object>) target;
    }

    @SuppressWarnings("unchecked")
    private void put(Object target, Object key, Object value, String opcode) throws InvalidPthException {
        if (!(target instanceof LinkedHashMap<?, ?>)) {
            throw refuse(opcode + " into " + describe(target) + ", expected a dict");
        }
        // Only scalar keys: a container key could contain itself and make hashing recurse forever.
        if (!(key instanceof String || key instanceof Long || key instanceof Boolean || key instanceof Double
                || key == None.NONE)) {
            throw refuse(opcode + " with key " + describe(key) + " (a dict key must be a string or a number)");
        }
        ((Map<Object, Object>) target).put(key, value);
    }

    // ---- reading operands ----

    private void need(long count) throws InvalidPthException {
        if (count > bytes.length - at) {
            throw refuse(opcodeName(bytes[opcodeAt] & 0xFF) + " needs " + count + " bytes, the pickle has "
                    + (bytes.length - at) + " left (the record is truncated)");
        }
    }

    private int u8() throws InvalidPthException {
        need(1);
        return bytes[at++] & 0xFF;
    }

    private int u16() throws InvalidPthException {
        need(2);
        int value = (bytes[at] & 0xFF) | (bytes[at + 1] & 0xFF) << 8;
        at += 2;
        return value;
    }

    private int s32() throws InvalidPthException {
        need(4);
        int value = (bytes[at] & 0xFF) | (bytes[at + 1] & 0xFF) << 8 | (bytes[at + 2] & 0xFF) << 16
                | (bytes[at + 3] & 0xFF) << 24;
        at += 4;
        return value;
    }

    private long u32() throws InvalidPthException {
        return Integer.toUnsignedLong(s32());
    }

    private long u64() throws InvalidPthException {
        need(8);
        long value = 0;
        for (int i = 7; i >= 0; i--) {
            value = value << 8 | (bytes[at + i] & 0xFF);
        }
        at += 8;
        if (value < 0) {
            throw refuse("a length of " + Long.toUnsignedString(value) + " bytes");
        }
        return value;
    }

    private long u64BigEndian() throws InvalidPthException {
        need(8);
        long value = 0;
        for (int i = 0; i < 8; i++) {
            value = value << 8 | (bytes[at + i] & 0xFF);
        }
        at += 8;
        return value;
    }

    /** LONG1: n bytes of two's complement, little-endian. */
    private long long1() throws InvalidPthException {
        int n = u8();
        if (n > 8) {
            throw refuse("LONG1 integer of " + n + " bytes, wider than 64 bits");
        }
        need(n);
        long value = 0;
        for (int i = n - 1; i >= 0; i--) {
            value = value << 8 | (bytes[at + i] & 0xFF);
        }
        if (n > 0 && n < 8 && (bytes[at + n - 1] & 0x80) != 0) {
            value -= 1L << (8 * n); // sign-extend
        }
        at += n;
        return value;
    }

    private String text(long length) throws InvalidPthException {
        need(length);
        String value = new String(bytes, at, (int) length, StandardCharsets.UTF_8);
        at += (int) length;
        return value;
    }

    private byte[] raw(long length) throws InvalidPthException {
        need(length);
        byte[] value = Arrays.copyOfRange(bytes, at, at + (int) length);
        at += (int) length;
        return value;
    }

    /** One line of GLOBAL's operand: a module or a name, ended by a newline. */
    private String line() throws InvalidPthException {
        int start = at;
        while (at < bytes.length && bytes[at] != '\n') {
            if (at - start > 256) {
                throw refuse("GLOBAL with a name longer than 256 bytes");
            }
            at++;
        }
        if (at >= bytes.length) {
            throw refuse("GLOBAL without the newline that ends its name (the record is truncated)");
        }
        String value = new String(bytes, start, at - start, StandardCharsets.UTF_8);
        at++;
        return value;
    }

    // ---- messages ----

    private InvalidPthException refuse(String reason) {
        return new InvalidPthException(file, "refused: " + record + " byte " + opcodeAt + ": " + reason);
    }

    static String describe(Object value) {
        if (value == null) {
            return "nothing";
        }
        if (value == MARK_OBJECT) {
            return "a MARK";
        }
        return switch (value) {
            case String s -> "the string '" + (s.length() > 60 ? s.substring(0, 60) + "..." : s) + "'";
            case Long l -> "the integer " + l;
            case Double d -> "the float " + d;
            case Boolean b -> b ? "True" : "False";
            case None n -> "None";
            case byte[] b -> "bytes of length " + b.length;
            case Tuple t -> "a tuple of " + t.size();
            case ArrayList<?> l -> "a list of " + l.size();
            case Map<?, ?> m -> "a dict of " + m.size();
            case Global g -> "the global " + g.qualified();
            case Storage s -> "a storage " + s.typeName();
            case Tensor t -> "a " + t;
            default -> value.getClass().getSimpleName();
        };
    }

    private static String opcodeName(int opcode) {
        String name = OPCODE_NAMES.get(opcode);
        String shown = opcode >= 0x20 && opcode < 0x7f ? "'" + (char) opcode + "'" : String.format("0x%02x", opcode);
        return (name == null ? "unknown " + shown : name + " (" + shown + ")");
    }

    private static Map<Integer, String> opcodeNames() {
        Object[] table = {
            '(', "MARK", '.', "STOP", '0', "POP", '1', "POP_MARK", '2', "DUP", 'F', "FLOAT", 'I', "INT",
            'J', "BININT", 'K', "BININT1", 'L', "LONG", 'M', "BININT2", 'N', "NONE", 'P', "PERSID",
            'Q', "BINPERSID", 'R', "REDUCE", 'S', "STRING", 'T', "BINSTRING", 'U', "SHORT_BINSTRING",
            'V', "UNICODE", 'X', "BINUNICODE", 'a', "APPEND", 'b', "BUILD", 'c', "GLOBAL", 'd', "DICT",
            '}', "EMPTY_DICT", 'e', "APPENDS", 'g', "GET", 'h', "BINGET", 'i', "INST", 'j', "LONG_BINGET",
            'l', "LIST", ']', "EMPTY_LIST", 'o', "OBJ", 'p', "PUT", 'q', "BINPUT", 'r', "LONG_BINPUT",
            's', "SETITEM", 't', "TUPLE", ')', "EMPTY_TUPLE", 'u', "SETITEMS", 'G', "BINFLOAT",
            'B', "BINBYTES", 'C', "SHORT_BINBYTES",
            0x80, "PROTO", 0x81, "NEWOBJ", 0x82, "EXT1", 0x83, "EXT2", 0x84, "EXT4", 0x85, "TUPLE1",
            0x86, "TUPLE2", 0x87, "TUPLE3", 0x88, "NEWTRUE", 0x89, "NEWFALSE", 0x8a, "LONG1", 0x8b, "LONG4",
            0x8c, "SHORT_BINUNICODE", 0x8d, "BINUNICODE8", 0x8e, "BINBYTES8", 0x8f, "EMPTY_SET",
            0x90, "ADDITEMS", 0x91, "FROZENSET", 0x92, "NEWOBJ_EX", 0x93, "STACK_GLOBAL", 0x94, "MEMOIZE",
            0x95, "FRAME", 0x96, "BYTEARRAY8", 0x97, "NEXT_BUFFER", 0x98, "READONLY_BUFFER",
        };
        Map<Integer, String> names = new HashMap<>();
        for (int i = 0; i < table.length; i += 2) {
            int code = table[i] instanceof Character c ? c : (Integer) table[i];
            names.put(code, (String) table[i + 1]);
        }
        return Map.copyOf(names);
    }
}
