package org.fastvmt.bench;

import java.util.SplittableRandom;

import org.fastvmt.backend.Backend;
import org.fastvmt.motion.AttentionMotionFlow;
import org.fastvmt.motion.FramePairs;
import org.fastvmt.motion.WindowedFlow;
import org.fastvmt.tensor.DType;
import org.fastvmt.tensor.Tensor;

/**
 * The inputs of one AMF benchmark on a backend, and the four runs it times: full and windowed
 * AMF, forward alone and forward + backward. Q, K and the incoming gradients dΔ are random
 * (uniform in [-1, 1), seeded) F32 tensors uploaded once, so a run is kernel calls only: each
 * returns after {@link Backend#synchronize()}. A run goes through the public
 * {@link AttentionMotionFlow} API, so it includes that API's argument checks (a non-finite scan
 * of Q and K) and the allocation of the small Δ outputs, as a caller would see.
 */
public final class AmfWorkload implements AutoCloseable {

    private final Backend backend;
    private final AmfBenchShape shape;
    private final AttentionMotionFlow amf;
    private final FramePairs fullPairs;
    private final FramePairs windowPairs;
    private final Tensor q;
    private final Tensor k;
    private final Tensor fullDDelta;
    private final Tensor windowDDelta;
    private final Tensor dq;
    private final Tensor dk;

    private AmfWorkload(Backend backend, AmfBenchShape shape, long seed, Tensor[] owned) {
        this.backend = backend;
        this.shape = shape;
        this.amf = new AttentionMotionFlow(backend);
        this.fullPairs = shape.fullPairs();
        this.windowPairs = shape.windowPairs();
        SplittableRandom random = new SplittableRandom(seed);
        long[] qkShape = {shape.frames(), shape.height(), shape.width(), shape.channels()};
        int n = 0;
        owned[n++] = this.q = random(backend, random, qkShape);
        owned[n++] = this.k = random(backend, random, qkShape);
        owned[n++] = this.fullDDelta = random(backend, random, fullPairs.count(), shape.height(), shape.width(), 2);
        owned[n++] = this.windowDDelta = random(backend, random, windowPairs.count(), shape.height(), shape.width(), 2);
        owned[n++] = this.dq = Tensor.zeros(backend, DType.F32, qkShape);
        owned[n] = this.dk = Tensor.zeros(backend, DType.F32, qkShape);
    }

    /** Uploads random inputs of {@code shape} to {@code backend}. */
    public static AmfWorkload create(Backend backend, AmfBenchShape shape, long seed) {
        Tensor[] owned = new Tensor[6];
        try {
            return new AmfWorkload(backend, shape, seed, owned);
        } catch (RuntimeException | OutOfMemoryError e) {
            for (Tensor tensor : owned) {
                if (tensor != null) {
                    tensor.close();
                }
            }
            throw e;
        }
    }

    private static Tensor random(Backend backend, SplittableRandom random, long... dims) {
        long count = 1;
        for (long dim : dims) {
            count = Math.multiplyExact(count, dim);
        }
        if (count > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("a benchmark tensor of " + count + " elements is too large");
        }
        float[] values = new float[(int) count];
        for (int i = 0; i < values.length; i++) {
            values[i] = (float) random.nextDouble(-1, 1);
        }
        return Tensor.of(backend, values, dims);
    }

    public AmfBenchShape shape() {
        return shape;
    }

    public FramePairs fullPairs() {
        return fullPairs;
    }

    public FramePairs windowPairs() {
        return windowPairs;
    }

    /** Full AMF forward over all pairs. */
    public void fullForward() {
        try (Tensor _ = amf.full(q, k, fullPairs, shape.params())) {
            backend.synchronize();
        }
    }

    /** Windowed AMF forward over FastVMT's pairs. */
    public void windowForward() {
        try (WindowedFlow _ = amf.windowed(q, k, windowPairs, shape.params())) {
            backend.synchronize();
        }
    }

    /** Full AMF forward then backward (dΔ → dQ, dK accumulated); call {@link #zeroGradients} first. */
    public void fullForwardBackward() {
        try (Tensor _ = amf.full(q, k, fullPairs, shape.params())) {
            amf.fullBackward(q, k, fullPairs, shape.params(), fullDDelta, dq, dk);
            backend.synchronize();
        }
    }

    /** Windowed AMF forward then backward in the windows it chose; call {@link #zeroGradients} first. */
    public void windowForwardBackward() {
        try (WindowedFlow flow = amf.windowed(q, k, windowPairs, shape.params())) {
            amf.windowedBackward(q, k, flow, windowDDelta, dq, dk);
            backend.synchronize();
        }
    }

    /** Zeroes dQ and dK, as a training step would before its backward (not part of a timed run). */
    public void zeroGradients() {
        dq.zero();
        dk.zero();
        backend.synchronize();
    }

    @Override
    public void close() {
        q.close();
        k.close();
        fullDDelta.close();
        windowDDelta.close();
        dq.close();
        dk.close();
    }
}
