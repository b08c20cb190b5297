package org.fastvmt.io;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Path;

import org.fastvmt.backend.Backend;
import org.fastvmt.io.safetensors.SafetensorsDType;
import org.fastvmt.tensor.BFloat16;
import org.fastvmt.tensor.DType;
import org.fastvmt.tensor.Tensor;

/**
 * Turns a stored tensor's little-endian bytes (F32, F16 or BF16) into floats or a backend tensor;
 * shared by the .safetensors and .pth readers, which differ only in where the bytes come from.
 */
public final class TensorLoading {

    /** Conversions go through host buffers of this many elements. */
    private static final int CHUNK_ELEMENTS = 1 << 20;

    private static final ValueLayout.OfFloat F32_LE =
            ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort I16_LE =
            ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /**
     * A tensor's stored bytes, fetched only once the arguments are known to be valid (a .pth
     * tensor may have to be inflated or gathered first, which can fail with an IOException).
     */
    @FunctionalInterface
    public interface StoredBytes<E extends Exception> {
        MemorySegment get() throws E;
    }

    private TensorLoading() {
    }

    /** The elements as floats, F16 and BF16 widened exactly; {@code file} names the file in errors. */
    public static <E extends Exception> float[] readF32(Path file, StoredTensor info, StoredBytes<E> stored)
            throws E {
        long count = info.elementCount();
        if (count > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException(file + ": tensor '" + info.name() + "' has " + count
                    + " elements, too many for a Java array; load it into a backend instead");
        }
        MemorySegment bytes = stored.get();
        float[] out = new float[(int) count];
        switch (info.dtype()) {
            case F32 -> MemorySegment.copy(bytes, F32_LE, 0, out, 0, out.length);
            case F16 -> {
                for (int i = 0; i < out.length; i++) {
                    out[i] = Float.float16ToFloat(bytes.getAtIndex(I16_LE, i));
                }
            }
            case BF16 -> {
                for (int i = 0; i < out.length; i++) {
                    out[i] = BFloat16.toFloat(bytes.getAtIndex(I16_LE, i));
                }
            }
        }
        return out;
    }

    /**
     * The tensor in {@code backend}'s memory as {@code target} (F32 or BF16). When the stored type is
     * the target, the bytes go straight to the backend; otherwise they are converted chunk by chunk
     * (F16/BF16 widen exactly; F32 and F16 round to BF16 to nearest even).
     */
    public static <E extends Exception> Tensor load(StoredTensor info, StoredBytes<E> stored, Backend backend,
            DType target) throws E {
        if (target != DType.F32 && target != DType.BF16) {
            throw new IllegalArgumentException("target must be F32 or BF16, got " + target);
        }
        MemorySegment bytes = stored.get();
        Tensor tensor = Tensor.zeros(backend, target, info.shape());
        try {
            if (SafetensorsDType.of(target) == info.dtype()) {
                tensor.copyFromHost(bytes);
            } else {
                convertInto(info.dtype(), bytes, tensor);
            }
            return tensor;
        } catch (RuntimeException e) {
            tensor.close();
            throw e;
        }
    }

    private static void convertInto(SafetensorsDType source, MemorySegment bytes, Tensor tensor) {
        long count = tensor.elementCount();
        Tensor flat = tensor.view(count);
        try (Arena scratch = Arena.ofConfined()) {
            int chunk = (int) Math.min(CHUNK_ELEMENTS, Math.max(count, 1));
            MemorySegment host = scratch.allocate((long) chunk * tensor.dtype().bytes(), 8);
            for (long start = 0; start < count; start += chunk) {
                int n = (int) Math.min(chunk, count - start);
                for (int i = 0; i < n; i++) {
                    long at = start + i;
                    float value = switch (source) {
                        case F32 -> bytes.getAtIndex(F32_LE, at);
                        case F16 -> Float.float16ToFloat(bytes.getAtIndex(I16_LE, at));
                        case BF16 -> BFloat16.toFloat(bytes.getAtIndex(I16_LE, at));
                    };
                    if (tensor.dtype() == DType.F32) {
                        host.setAtIndex(ValueLayout.JAVA_FLOAT, i, value);
                    } else {
                        host.setAtIndex(ValueLayout.JAVA_SHORT, i, BFloat16.fromFloat(value));
                    }
                }
                flat.slice(start, n).copyFromHost(host.asSlice(0, (long) n * tensor.dtype().bytes()));
            }
        }
    }
}
