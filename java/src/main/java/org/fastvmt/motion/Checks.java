package org.fastvmt.motion;

import java.util.Arrays;

import org.fastvmt.backend.Backend;
import org.fastvmt.tensor.DType;
import org.fastvmt.tensor.Tensor;

/** Argument checks made in Java before any native call, each naming the argument. */
final class Checks {

    private Checks() {
    }

    static void onBackend(Backend backend, Tensor tensor, String name) {
        if (tensor.backend() != backend) {
            throw new IllegalArgumentException(name + " is on backend " + tensor.backend().name()
                    + " but this operation runs on " + backend.name());
        }
    }

    static void shape(Tensor tensor, String name, long... expected) {
        if (!Arrays.equals(tensor.shape(), expected)) {
            throw new IllegalArgumentException(name + " must have shape " + Arrays.toString(expected) + ", got "
                    + Arrays.toString(tensor.shape()));
        }
    }

    static void dtype(Tensor tensor, String name, DType expected) {
        if (tensor.dtype() != expected) {
            throw new IllegalArgumentException(name + " must be " + expected + ", got " + tensor.dtype());
        }
    }

    static void supported(Backend backend, Tensor tensor, String name) {
        if (tensor.dtype() == DType.I32 || !backend.library().supportsDtype(tensor.dtype().nativeCode())) {
            throw new IllegalArgumentException(name + " is " + tensor.dtype() + ", which the " + backend.name()
                    + " backend does not accept" + (tensor.dtype() == DType.BF16 ? " (use F32)" : ""));
        }
    }

    static void finite(Tensor tensor, String name) {
        long bad = tensor.nonFiniteCount();
        if (bad > 0) {
            throw new IllegalArgumentException(name + " holds " + bad + " NaN or infinite value(s)");
        }
    }

    static void pairsMatch(FramePairs pairs, QkShape shape) {
        if (pairs.frames() != shape.frames()) {
            throw new IllegalArgumentException("pairs refer to " + pairs.frames() + " frames but q and k have "
                    + shape.frames());
        }
    }

    static void heads(AmfParams params, QkShape shape) {
        if (shape.channels() % params.heads() != 0) {
            throw new IllegalArgumentException("channels (" + shape.channels() + ") must be divisible by heads ("
                    + params.heads() + ")");
        }
    }

    static void tile(AmfParams params, QkShape shape) {
        if (params.tileHeight() > shape.height()) {
            throw new IllegalArgumentException("tileHeight (" + params.tileHeight()
                    + ") is larger than the frame height (" + shape.height() + ")");
        }
        if (params.tileWidth() > shape.width()) {
            throw new IllegalArgumentException("tileWidth (" + params.tileWidth()
                    + ") is larger than the frame width (" + shape.width() + ")");
        }
    }
}
