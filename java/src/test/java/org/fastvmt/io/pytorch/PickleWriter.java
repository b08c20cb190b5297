package org.fastvmt.io.pytorch;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;

/**
 * Writes pickle opcodes the way CPython's pickle.Pickler does at protocol 2 (the test's own
 * writer, for building checkpoints byte by byte): globals and strings are memoized on first use
 * (BINPUT) and recalled after (BINGET), integers take the shortest of BININT1, BININT2, BININT
 * and LONG1. Raw opcodes can be written too, for pickles the reader must refuse.
 */
public final class PickleWriter {

    private final ByteArrayOutputStream out = new ByteArrayOutputStream();
    private final Map<String, Integer> memo = new HashMap<>();
    private int memoSize;

    public PickleWriter proto(int version) {
        return op(0x80, version);
    }

    /** Raw bytes (an opcode and its operands). */
    public PickleWriter op(int... bytes) {
        for (int b : bytes) {
            out.write(b);
        }
        return this;
    }

    public PickleWriter raw(byte[] bytes) {
        out.writeBytes(bytes);
        return this;
    }

    public PickleWriter mark() {
        return op('(');
    }

    /** A fresh memo slot for the value on top of the stack (BINPUT, LONG_BINPUT past 255). */
    public PickleWriter put() {
        int index = memoSize++;
        if (index < 256) {
            return op('q', index);
        }
        op('r');
        return le32(index);
    }

    /** GLOBAL module\nname\n, memoized: the second use is a BINGET. */
    public PickleWriter global(String module, String name) {
        String key = "global:" + module + "\n" + name;
        Integer index = memo.get(key);
        if (index != null) {
            return get(index);
        }
        op('c');
        out.writeBytes((module + "\n" + name + "\n").getBytes(StandardCharsets.UTF_8));
        memo.put(key, memoSize);
        return put();
    }

    /** BINUNICODE, memoized like CPython does. */
    public PickleWriter string(String value) {
        String key = "str:" + value;
        Integer index = memo.get(key);
        if (index != null) {
            return get(index);
        }
        unmemoizedString(value);
        memo.put(key, memoSize);
        return put();
    }

    public PickleWriter unmemoizedString(String value) {
        byte[] bytes = value.getBytes(StandardCharsets.UTF_8);
        op('X');
        le32(bytes.length);
        out.writeBytes(bytes);
        return this;
    }

    public PickleWriter get(int index) {
        if (index < 256) {
            return op('h', index);
        }
        op('j');
        return le32(index);
    }

    public PickleWriter integer(long value) {
        if (value >= 0 && value < 256) {
            return op('K', (int) value);
        }
        if (value >= 0 && value < 65536) {
            return op('M', (int) (value & 0xFF), (int) (value >>> 8));
        }
        if (value >= Integer.MIN_VALUE && value <= Integer.MAX_VALUE) {
            op('J');
            return le32((int) value);
        }
        // LONG1: the shortest two's-complement little-endian form
        int n = 1;
        while (n < 8 && (value >> (8 * n - 1)) != 0 && (value >> (8 * n - 1)) != -1) {
            n++;
        }
        op(0x8a, n);
        for (int i = 0; i < n; i++) {
            out.write((int) (value >>> (8 * i)) & 0xFF);
        }
        return this;
    }

    public PickleWriter bool(boolean value) {
        return op(value ? 0x88 : 0x89);
    }

    public PickleWriter none() {
        return op('N');
    }

    public PickleWriter binfloat(double value) {
        op('G');
        long bits = Double.doubleToLongBits(value);
        for (int i = 7; i >= 0; i--) {
            out.write((int) (bits >>> (8 * i)) & 0xFF);
        }
        return this;
    }

    /** Closes a tuple of {@code n} items: EMPTY_TUPLE, TUPLE1..3, or TUPLE after a MARK (the caller wrote it). */
    public PickleWriter tuple(int n) {
        return switch (n) {
            case 0 -> op(')');
            case 1 -> op(0x85);
            case 2 -> op(0x86);
            case 3 -> op(0x87);
            default -> op('t');
        };
    }

    /** A tuple of integers, as CPython writes a shape: (MARK if more than 3) items, TUPLEn, BINPUT. */
    public PickleWriter intTuple(long... values) {
        if (values.length > 3) {
            mark();
        }
        for (long value : values) {
            integer(value);
        }
        tuple(values.length);
        return values.length == 0 ? this : put();
    }

    public PickleWriter reduce() {
        return op('R');
    }

    public PickleWriter stop() {
        return op('.');
    }

    private PickleWriter le32(int value) {
        for (int i = 0; i < 4; i++) {
            out.write((value >>> (8 * i)) & 0xFF);
        }
        return this;
    }

    public byte[] bytes() {
        return out.toByteArray();
    }
}
