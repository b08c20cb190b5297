package org.fastvmt.pipeline;

import org.fastvmt.backend.Backend;
import org.fastvmt.motion.AmfParams;
import org.fastvmt.motion.AttentionMotionFlow;
import org.fastvmt.motion.CorrespondingWindowLoss;
import org.fastvmt.motion.FramePairs;
import org.fastvmt.motion.TrackingLoss;
import org.fastvmt.motion.WindowedFlow;
import org.fastvmt.tensor.DType;
import org.fastvmt.tensor.Tensor;

/**
 * The motion loss of one guidance mode and its gradient with respect to the self-attention Q and
 * K of the generated latents, given the reference's AMF:
 * <ul>
 * <li>fastvmt: Δ = windowed AMF over {@link FramePairs#forward}(F', sf) (pair weights
 * linspace(1, 0.8, sf)); loss = w_win · window loss(Δ_ref, Δ_gen) + w_track · tracking loss(K, the
 * windows Δ_gen chose);</li>
 * <li>ditflow: Δ = full AMF over {@link FramePairs#all}(F') (weights 1); loss = w_win · window
 * loss(Δ_ref, Δ_gen). DiTFlow's loss is this AMF matching term alone; the tracking loss is not
 * applied because it is defined over the windows of the windowed AMF, which the full AMF has
 * none of.</li>
 * </ul>
 * Q and K are [F', H', W', dim] F32 on the backend. Not used in mode none.
 */
final class MotionGuidance {

    private final Backend backend;
    private final boolean windowed;
    private final FramePairs pairs;
    private final AmfParams params;
    private final float windowLossWeight;
    private final float trackingLossWeight;
    private final AttentionMotionFlow amf;
    private final CorrespondingWindowLoss windowLoss;
    private final TrackingLoss trackingLoss;

    /** Guidance in the mode of {@code settings} for a token grid of {@code frames} frames. */
    MotionGuidance(Backend backend, TransferSettings settings, int frames) {
        if (!settings.mode().guides()) {
            throw new IllegalArgumentException("mode " + settings.mode().label() + " computes no motion loss");
        }
        this.backend = backend;
        this.windowed = settings.mode() == GuidanceMode.FASTVMT;
        this.pairs = windowed ? FramePairs.forward(frames, settings.sf()) : FramePairs.all(frames);
        this.params = settings.amf();
        this.windowLossWeight = settings.windowLossWeight();
        this.trackingLossWeight = windowed ? settings.trackingLossWeight() : 0f;
        this.amf = new AttentionMotionFlow(backend);
        this.windowLoss = new CorrespondingWindowLoss(backend);
        this.trackingLoss = new TrackingLoss(backend);
    }

    FramePairs pairs() {
        return pairs;
    }

    boolean windowed() {
        return windowed;
    }

    /** The reference AMF of the reference's Q and K. */
    Reference reference(Tensor q, Tensor k) {
        if (windowed) {
            WindowedFlow flow = amf.windowed(q, k, pairs, params);
            return new Reference(flow.delta(), flow);
        }
        Tensor delta = amf.full(q, k, pairs, params);
        return new Reference(delta, delta);
    }

    /** The loss of the generated Q and K against {@code reference}, with dL/dQ and dL/dK. */
    Gradient gradient(Tensor q, Tensor k, Reference reference) {
        long[] qkShape = q.shape();
        Tensor dq = null;
        Tensor dk = null;
        try {
            dq = Tensor.zeros(backend, DType.F32, qkShape);
            dk = Tensor.zeros(backend, DType.F32, qkShape);
            if (windowed) {
                try (WindowedFlow flow = amf.windowed(q, k, pairs, params);
                        Tensor dDelta = Tensor.zeros(backend, DType.F32, flow.delta().shape())) {
                    double window = windowLoss.forward(reference.delta(), flow.delta(), pairs);
                    double tracking = trackingLossWeight > 0 ? trackingLoss.forward(k, flow) : 0;
                    windowLoss.backward(reference.delta(), flow.delta(), pairs, windowLossWeight, dDelta);
                    amf.windowedBackward(q, k, flow, dDelta, dq, dk);
                    if (trackingLossWeight > 0) {
                        trackingLoss.backward(k, flow, trackingLossWeight, dk);
                    }
                    return new Gradient(windowLossWeight * window + trackingLossWeight * tracking, window, tracking,
                            dq, dk);
                }
            }
            try (Tensor delta = amf.full(q, k, pairs, params);
                    Tensor dDelta = Tensor.zeros(backend, DType.F32, delta.shape())) {
                double window = windowLoss.forward(reference.delta(), delta, pairs);
                windowLoss.backward(reference.delta(), delta, pairs, windowLossWeight, dDelta);
                amf.fullBackward(q, k, pairs, params, dDelta, dq, dk);
                return new Gradient(windowLossWeight * window, window, 0, dq, dk);
            }
        } catch (RuntimeException | Error e) {
            if (dq != null) {
                dq.close();
            }
            if (dk != null) {
                dk.close();
            }
            throw e;
        }
    }

    /** The reference's Δ [pairs, H', W', 2], with what owns it. */
    record Reference(Tensor delta, AutoCloseable owner) implements AutoCloseable {
        @Override
        public void close() {
            try {
                owner.close();
            } catch (RuntimeException e) {
                throw e;
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        }
    }

    /**
     * The weighted loss, its unweighted window and tracking terms, and dL/dQ, dL/dK (owned:
     * close).
     */
    record Gradient(double loss, double windowLoss, double trackingLoss, Tensor dq, Tensor dk)
            implements AutoCloseable {
        @Override
        public void close() {
            dq.close();
            dk.close();
        }
    }
}
