package org.fastvmt.io.safetensors;

import java.util.Arrays;
import java.util.Optional;
import java.util.stream.Collectors;

import org.fastvmt.tensor.DType;

/**
 * The element types fastvmt reads and writes in safetensors files, by their header names. Other
 * types of the format (F64, I64, U8, BOOL, F8_*, …) are refused when a file is opened.
 */
public enum SafetensorsDType {
    F32(4),
    F16(2),
    BF16(2);

    private final int bytes;

    SafetensorsDType(int bytes) {
        this.bytes = bytes;
    }

    /** Bytes per element. */
    public int bytes() {
        return bytes;
    }

    /** The header name of this type ("F32", "F16", "BF16"). */
    public String headerName() {
        return name();
    }

    /** The type of a header name, if it is one fastvmt supports. */
    public static Optional<SafetensorsDType> fromHeaderName(String name) {
        for (SafetensorsDType type : values()) {
            if (type.name().equals(name)) {
                return Optional.of(type);
            }
        }
        return Optional.empty();
    }

    /** "F32, F16, BF16": for error messages. */
    public static String supportedNames() {
        return Arrays.stream(values()).map(Enum::name).collect(Collectors.joining(", "));
    }

    /** The safetensors type a tensor of {@code dtype} is stored as (F32 or BF16; I32 has none here). */
    public static SafetensorsDType of(DType dtype) {
        return switch (dtype) {
            case F32 -> F32;
            case BF16 -> BF16;
            case I32 -> throw new IllegalArgumentException("I32 tensors cannot be stored (supported: "
                    + supportedNames() + ")");
        };
    }

    /**
     * The tensor type this type loads as when kept "as stored": F32 and BF16 stay, F16 widens to
     * F32 (the kernels have no F16 path).
     */
    public DType loadedAs() {
        return this == BF16 ? DType.BF16 : DType.F32;
    }
}
