package org.fastvmt.io.pytorch;

import java.io.Closeable;
import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.zip.CRC32;
import java.util.zip.ZipEntry;
import java.util.zip.ZipException;
import java.util.zip.ZipFile;

/**
 * The zip container of a torch.save checkpoint, over a read-only mapping of the whole file.
 *
 * <p>java.util.zip opens the archive (which validates its central directory) and inflates any
 * deflated record. torch.save itself writes every record stored (uncompressed, 64-byte aligned, with
 * a data descriptor, so the local headers carry no sizes), and a stored record is used in place:
 * this class reads the central directory once more (zip64 included) for what ZipFile does not expose,
 * the offset of each record's local header, and checks that both readings agree on every record's
 * name, method and sizes. Every record must lie inside the file before the central directory.
 */
final class PthArchive implements Closeable {

    static final int STORED = 0;
    static final int DEFLATED = 8;

    private static final int EOCD_SIGNATURE = 0x06054b50;
    private static final int EOCD_BYTES = 22;
    private static final int ZIP64_LOCATOR_SIGNATURE = 0x07064b50;
    private static final int ZIP64_LOCATOR_BYTES = 20;
    private static final int ZIP64_EOCD_SIGNATURE = 0x06064b50;
    private static final int CENTRAL_SIGNATURE = 0x02014b50;
    private static final int LOCAL_SIGNATURE = 0x04034b50;
    private static final int ZIP64_EXTRA_ID = 0x0001;
    private static final long U32_MAX = 0xFFFFFFFFL;
    /** Deflate never compresses better than 1032 to 1 (zlib's technical notes), so a larger claim is a lie. */
    private static final long MAX_INFLATION = 1032;

    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /**
     * One record of the archive.
     *
     * @param name           its full name ("archive/data/0")
     * @param method         {@link #STORED} or {@link #DEFLATED}
     * @param compressedSize bytes in the file
     * @param size           bytes once inflated (equal to compressedSize when stored)
     * @param crc            CRC-32 of the inflated bytes
     * @param dataOffset     where its bytes start in the file
     */
    record Record(String name, int method, long compressedSize, long size, long crc, long dataOffset) {
    }

    private final Path path;
    private final ZipFile zip;
    private final MemorySegment file;
    private final Map<String, Record> records;

    private PthArchive(Path path, ZipFile zip, MemorySegment file, Map<String, Record> records) {
        this.path = path;
        this.zip = zip;
        this.file = file;
        this.records = records;
    }

    /** Opens the archive in {@code path}, whose bytes are {@code file} (a mapping of the whole file). */
    static PthArchive open(Path path, MemorySegment file) throws IOException {
        ZipFile zip;
        try {
            zip = new ZipFile(path.toFile());
        } catch (ZipException e) {
            throw new InvalidPthException(path, "is not a readable zip archive (" + e.getMessage()
                    + "); the file may be truncated or damaged", e);
        }
        try {
            Map<String, Record> records = new CentralDirectory(path, file).read();
            crossCheck(path, zip, records);
            return new PthArchive(path, zip, file, records);
        } catch (IOException | RuntimeException e) {
            zip.close();
            throw e;
        }
    }

    /** Every record by full name, in central-directory order. */
    Map<String, Record> records() {
        return records;
    }

    Record record(String name) {
        return records.get(name);
    }

    /**
     * The bytes of a small record (the pickle, the byte-order and version marks), refused when
     * larger than {@code limit}; its CRC-32 is checked.
     */
    byte[] readSmall(Record record, long limit) throws IOException {
        if (record.size() > limit) {
            throw new InvalidPthException(path, "record " + record.name() + " holds " + record.size()
                    + " bytes, more than the " + limit + " accepted for it");
        }
        byte[] bytes = new byte[(int) record.size()];
        if (record.method() == STORED) {
            MemorySegment.copy(file, ValueLayout.JAVA_BYTE, record.dataOffset(), bytes, 0, bytes.length);
        } else {
            MemorySegment target = MemorySegment.ofArray(bytes);
            inflateInto(record, target);
        }
        CRC32 crc = new CRC32();
        crc.update(bytes);
        if (crc.getValue() != record.crc()) {
            throw new InvalidPthException(path, "record " + record.name() + " is damaged: its CRC-32 is "
                    + Long.toHexString(crc.getValue()) + ", the archive says " + Long.toHexString(record.crc()));
        }
        return bytes;
    }

    /**
     * The bytes of a record: a view on the mapping when stored, inflated into {@code arena} when
     * deflated (never more than the size the archive declares; CRC-checked). Stored records are
     * not CRC-checked: that would read every byte of a many-gigabyte file at open.
     */
    MemorySegment bytes(Record record, Arena arena) throws IOException {
        if (record.method() == STORED) {
            return file.asSlice(record.dataOffset(), record.size());
        }
        MemorySegment target = arena.allocate(Math.max(1, record.size()), 8).asSlice(0, record.size());
        long crc = inflateInto(record, target);
        if (crc != record.crc()) {
            throw new InvalidPthException(path, "record " + record.name() + " is damaged: its CRC-32 is "
                    + Long.toHexString(crc) + ", the archive says " + Long.toHexString(record.crc()));
        }
        return target.asReadOnly();
    }

    /** Inflates a deflated record into {@code target} (exactly its declared size); returns the CRC-32. */
    private long inflateInto(Record record, MemorySegment target) throws IOException {
        ZipEntry entry = zip.getEntry(record.name());
        CRC32 crc = new CRC32();
        byte[] buffer = new byte[1 << 20];
        long filled = 0;
        try (InputStream in = zip.getInputStream(entry)) {
            while (true) {
                int n = in.read(buffer, 0, (int) Math.min(buffer.length, Math.max(1, record.size() - filled)));
                if (n < 0) {
                    break;
                }
                if (filled + n > record.size()) {
                    throw new InvalidPthException(path, "record " + record.name()
                            + " inflates to more than the " + record.size() + " bytes the archive declares");
                }
                MemorySegment.copy(buffer, 0, target, ValueLayout.JAVA_BYTE, filled, n);
                crc.update(buffer, 0, n);
                filled += n;
            }
        } catch (ZipException e) {
            throw new InvalidPthException(path, "record " + record.name() + " cannot be inflated ("
                    + e.getMessage() + ")", e);
        }
        if (filled != record.size()) {
            throw new InvalidPthException(path, "record " + record.name() + " inflates to " + filled
                    + " bytes, the archive declares " + record.size());
        }
        return crc.getValue();
    }

    /** The archive and our own reading of its directory must agree on every record. */
    private static void crossCheck(Path path, ZipFile zip, Map<String, Record> records) throws IOException {
        if (zip.size() != records.size()) {
            throw new InvalidPthException(path, "the zip directory lists " + records.size()
                    + " records but java.util.zip reads " + zip.size() + " (duplicate or malformed names)");
        }
        for (Record record : records.values()) {
            ZipEntry entry = zip.getEntry(record.name());
            if (entry == null || entry.getMethod() != record.method() || entry.getSize() != record.size()
                    || entry.getCompressedSize() != record.compressedSize() || entry.getCrc() != record.crc()) {
                throw new InvalidPthException(path, "record " + record.name()
                        + " is described differently by the zip directory and java.util.zip");
            }
        }
    }

    @Override
    public void close() throws IOException {
        zip.close();
    }

    /** Reads the end-of-central-directory records, then every central-directory entry. */
    private static final class CentralDirectory {
        private final Path path;
        private final MemorySegment file;
        private final long size;

        CentralDirectory(Path path, MemorySegment file) {
            this.path = path;
            this.file = file;
            this.size = file.byteSize();
        }

        Map<String, Record> read() throws IOException {
            long eocd = findEndOfDirectory();
            long count = u16(eocd + 10);
            long directoryBytes = u32(eocd + 12);
            long directoryOffset = u32(eocd + 16);
            long locator = eocd - ZIP64_LOCATOR_BYTES;
            if (locator >= 0 && u32(locator) == ZIP64_LOCATOR_SIGNATURE) {
                long zip64 = u64(locator + 8, "zip64 end-of-directory offset");
                require(zip64, 56, "the zip64 end-of-directory record");
                if (u32(zip64) != ZIP64_EOCD_SIGNATURE) {
                    throw invalid("the zip64 end-of-directory record is missing at byte " + zip64);
                }
                count = u64(zip64 + 32, "zip64 record count");
                directoryBytes = u64(zip64 + 40, "zip64 directory size");
                directoryOffset = u64(zip64 + 48, "zip64 directory offset");
            }
            if (directoryOffset > size || directoryBytes > size - directoryOffset) {
                throw invalid("the zip directory claims bytes [" + directoryOffset + ", +" + directoryBytes
                        + ") of a " + size + "-byte file");
            }
            Map<String, Record> records = new LinkedHashMap<>();
            long at = directoryOffset;
            long end = directoryOffset + directoryBytes;
            for (long i = 0; i < count; i++) {
                require(at, 46, "zip directory entry " + i);
                if (at + 46 > end || u32(at) != CENTRAL_SIGNATURE) {
                    throw invalid("zip directory entry " + i + " is missing at byte " + at);
                }
                int flags = u16(at + 8);
                int method = u16(at + 10);
                long crc = u32(at + 16);
                long compressed = u32(at + 20);
                long uncompressed = u32(at + 24);
                int nameLength = u16(at + 28);
                int extraLength = u16(at + 30);
                int commentLength = u16(at + 32);
                long local = u32(at + 42);
                require(at + 46, (long) nameLength + extraLength + commentLength, "zip directory entry " + i);
                byte[] nameBytes = new byte[nameLength];
                MemorySegment.copy(file, ValueLayout.JAVA_BYTE, at + 46, nameBytes, 0, nameLength);
                String name = new String(nameBytes, StandardCharsets.UTF_8);
                // zip64: the fields set to 0xFFFFFFFF follow in the 0x0001 extra field, in this order.
                long extra = at + 46 + nameLength;
                long extraEnd = extra + extraLength;
                while (extra + 4 <= extraEnd) {
                    int id = u16(extra);
                    int length = u16(extra + 2);
                    if (extra + 4 + length > extraEnd) {
                        throw invalid("record " + name + " has an extra field that runs past its directory entry");
                    }
                    if (id == ZIP64_EXTRA_ID) {
                        long field = extra + 4;
                        long fieldEnd = field + length;
                        if (uncompressed == U32_MAX) {
                            uncompressed = zip64Field(name, field, fieldEnd);
                            field += 8;
                        }
                        if (compressed == U32_MAX) {
                            compressed = zip64Field(name, field, fieldEnd);
                            field += 8;
                        }
                        if (local == U32_MAX) {
                            local = zip64Field(name, field, fieldEnd);
                        }
                    }
                    extra += 4 + length;
                }
                if ((flags & 1) != 0) {
                    throw invalid("record " + name + " is encrypted");
                }
                if (method != STORED && method != DEFLATED) {
                    throw invalid("record " + name + " uses zip compression method " + method
                            + " (only stored (0) and deflated (8) are read)");
                }
                if (method == DEFLATED && uncompressed > MAX_INFLATION * compressed + 1024) {
                    throw invalid("record " + name + " claims to inflate " + compressed + " bytes to " + uncompressed
                            + ", beyond deflate's largest ratio of " + MAX_INFLATION + " to 1");
                }
                if (method == STORED && compressed != uncompressed) {
                    throw invalid("record " + name + " is stored but its sizes differ (" + compressed + " and "
                            + uncompressed + " bytes)");
                }
                long data = dataOffset(name, local, directoryOffset);
                if (compressed > directoryOffset - data) {
                    throw invalid("record " + name + " claims " + compressed + " bytes from byte " + data
                            + ", past the zip directory at byte " + directoryOffset + " (the file may be truncated)");
                }
                if (records.put(name, new Record(name, method, compressed, uncompressed, crc, data)) != null) {
                    throw invalid("the zip archive holds record " + name + " twice");
                }
                at += 46L + nameLength + extraLength + commentLength;
            }
            return Collections.unmodifiableMap(records);
        }

        /** The last end-of-directory signature whose comment ends exactly at the end of the file. */
        private long findEndOfDirectory() throws IOException {
            long lowest = Math.max(0, size - EOCD_BYTES - 0xFFFF);
            for (long at = size - EOCD_BYTES; at >= lowest; at--) {
                if (u32(at) == EOCD_SIGNATURE && at + EOCD_BYTES + u16(at + 20) == size) {
                    return at;
                }
            }
            throw invalid("has no zip end-of-directory record (the file may be truncated)");
        }

        private long dataOffset(String name, long local, long directoryOffset) throws IOException {
            if (local > directoryOffset - 30 || local < 0) {
                throw invalid("record " + name + " has its local header at byte " + local
                        + ", outside the records before the zip directory at byte " + directoryOffset);
            }
            if (u32(local) != LOCAL_SIGNATURE) {
                throw invalid("record " + name + " has no local header at byte " + local);
            }
            return local + 30 + u16(local + 26) + u16(local + 28);
        }

        private long zip64Field(String name, long field, long fieldEnd) throws IOException {
            if (field + 8 > fieldEnd) {
                throw invalid("record " + name + " has a zip64 extra field too short for its sizes");
            }
            return u64(field, "zip64 size of " + name);
        }

        private void require(long at, long bytes, String what) throws IOException {
            if (at < 0 || bytes < 0 || at > size || bytes > size - at) {
                throw invalid(what + " reaches past the end of the " + size + "-byte file (the file may be truncated)");
            }
        }

        private int u16(long at) throws IOException {
            require(at, 2, "a zip field at byte " + at);
            return Short.toUnsignedInt(file.get(U16, at));
        }

        private long u32(long at) throws IOException {
            require(at, 4, "a zip field at byte " + at);
            return Integer.toUnsignedLong(file.get(U32, at));
        }

        private long u64(long at, String what) throws IOException {
            require(at, 8, what);
            long value = file.get(U64, at);
            if (value < 0) {
                throw invalid(what + " is " + Long.toUnsignedString(value) + ", beyond any file");
            }
            return value;
        }

        private InvalidPthException invalid(String reason) {
            return new InvalidPthException(path, reason);
        }
    }
}
