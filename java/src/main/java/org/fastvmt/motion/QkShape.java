package org.fastvmt.motion;

import java.util.Arrays;

import org.fastvmt.tensor.Tensor;

/** The [F, H, W, C] shape shared by Q and K. */
record QkShape(int frames, int height, int width, int channels) {

    /** Checks that {@code q} and {@code k} are [F, H, W, C] tensors of one shape, dtype and backend. */
    static QkShape of(Tensor q, Tensor k) {
        if (q.rank() != 4) {
            throw new IllegalArgumentException("q must be [frames, height, width, channels], got shape "
                    + Arrays.toString(q.shape()));
        }
        if (!Arrays.equals(q.shape(), k.shape())) {
            throw new IllegalArgumentException("k must have the shape of q " + Arrays.toString(q.shape())
                    + ", got " + Arrays.toString(k.shape()));
        }
        if (q.dtype() != k.dtype()) {
            throw new IllegalArgumentException("k must have the dtype of q (" + q.dtype() + "), got " + k.dtype());
        }
        if (q.backend() != k.backend()) {
            throw new IllegalArgumentException("q and k must be on the same backend, got "
                    + q.backend().name() + " and " + k.backend().name());
        }
        return new QkShape(Math.toIntExact(q.dim(0)), Math.toIntExact(q.dim(1)), Math.toIntExact(q.dim(2)),
                Math.toIntExact(q.dim(3)));
    }

    /** The [F, H, W, C] shape of the key tensor alone. */
    static QkShape of(Tensor k) {
        return of(k, k);
    }

    int tokensPerFrame() {
        return height * width;
    }

    long[] dims() {
        return new long[] {frames, height, width, channels};
    }
}
