package org.fastvmt.motion;

import org.fastvmt.backend.Backend;
import org.fastvmt.nativeabi.FastVmtH;
import org.fastvmt.nativeabi.FastVmtLibrary;
import org.fastvmt.tensor.DType;
import org.fastvmt.tensor.Tensor;

/**
 * Attention motion flow (AMF) of Q and K, both [F, H, W, C]: for each frame pair (i, j) the
 * displacement Δ from each token of frame i to its softmax-expected position in frame j.
 * {@link #full} is DiTFlow's dense version; {@link #windowed} is FastVMT's sliding-window
 * version. The math is specified in {@code native/include/fastvmt.h}; this class checks
 * arguments and runs the kernels of its backend.
 */
public final class AttentionMotionFlow {

    private final Backend backend;

    public AttentionMotionFlow(Backend backend) {
        this.backend = backend;
    }

    /** Full AMF: Δ, F32 [pairs, H, W, 2]. The caller owns the result. */
    public Tensor full(Tensor q, Tensor k, FramePairs pairs, AmfParams params) {
        QkShape s = checkInputs(q, k, pairs, params);
        FastVmtLibrary library = backend.library();
        FastVmtH h = library.h();
        Tensor delta = Tensor.zeros(backend, DType.F32, pairs.count(), s.height(), s.width(), 2);
        try (Tensor pairTensor = pairTensor(pairs)) {
            long workspace = h.fvmt_amf_full_workspace_bytes(s.frames(), s.height(), s.width(), s.channels(),
                    pairs.count());
            library.check(h.fvmt_amf_full_forward(q.segment(), k.segment(), q.dtype().nativeCode(),
                    s.frames(), s.height(), s.width(), s.channels(), params.heads(), params.temperature(),
                    pairTensor.segment(), pairs.count(), delta.segment(),
                    backend.workspace(workspace), workspace, backend.stream()));
            return delta;
        } catch (RuntimeException e) {
            delta.close();
            throw e;
        }
    }

    /** Adds dL/dQ and dL/dK of the full AMF, given dL/dΔ, into {@code dq} and {@code dk} (F32 [F, H, W, C]). */
    public void fullBackward(Tensor q, Tensor k, FramePairs pairs, AmfParams params, Tensor dDelta, Tensor dq,
            Tensor dk) {
        QkShape s = checkInputs(q, k, pairs, params);
        checkGradients(s, pairs, dDelta, dq, dk);
        FastVmtLibrary library = backend.library();
        FastVmtH h = library.h();
        try (Tensor pairTensor = pairTensor(pairs)) {
            long workspace = h.fvmt_amf_full_workspace_bytes(s.frames(), s.height(), s.width(), s.channels(),
                    pairs.count());
            library.check(h.fvmt_amf_full_backward(q.segment(), k.segment(), q.dtype().nativeCode(),
                    s.frames(), s.height(), s.width(), s.channels(), params.heads(), params.temperature(),
                    pairTensor.segment(), pairs.count(), dDelta.segment(), dq.segment(), dk.segment(),
                    backend.workspace(workspace), workspace, backend.stream()));
        }
    }

    /** Windowed AMF: Δ and the chosen windows. The caller owns the result. */
    public WindowedFlow windowed(Tensor q, Tensor k, FramePairs pairs, AmfParams params) {
        QkShape s = checkInputs(q, k, pairs, params);
        Checks.tile(params, s);
        FastVmtLibrary library = backend.library();
        FastVmtH h = library.h();
        int tilesH = AmfParams.tilesAlong(s.height(), params.tileHeight());
        int tilesW = AmfParams.tilesAlong(s.width(), params.tileWidth());
        Tensor delta = Tensor.zeros(backend, DType.F32, pairs.count(), s.height(), s.width(), 2);
        Tensor origins = null;
        Tensor pairTensor = null;
        try {
            origins = Tensor.zeros(backend, DType.I32, pairs.count(), tilesH, tilesW, 2);
            pairTensor = pairTensor(pairs);
            long workspace = windowWorkspace(h, s, params, pairs);
            library.check(h.fvmt_amf_window_forward(q.segment(), k.segment(), q.dtype().nativeCode(),
                    s.frames(), s.height(), s.width(), s.channels(), params.heads(), params.temperature(),
                    params.tileHeight(), params.tileWidth(), params.window(),
                    pairTensor.segment(), pairs.count(), delta.segment(), origins.segment(),
                    backend.workspace(workspace), workspace, backend.stream()));
            return new WindowedFlow(delta, origins, pairTensor, pairs, params, s);
        } catch (RuntimeException e) {
            delta.close();
            if (origins != null) {
                origins.close();
            }
            if (pairTensor != null) {
                pairTensor.close();
            }
            throw e;
        }
    }

    /**
     * Adds dL/dQ and dL/dK of the windowed AMF (through pass 2, in the windows {@code flow}
     * chose), given dL/dΔ, into {@code dq} and {@code dk}.
     */
    public void windowedBackward(Tensor q, Tensor k, WindowedFlow flow, Tensor dDelta, Tensor dq, Tensor dk) {
        QkShape s = checkInputs(q, k, flow.pairs(), flow.params());
        if (!s.equals(flow.shape())) {
            throw new IllegalArgumentException("q and k have shape " + s + " but the flow was computed for "
                    + flow.shape());
        }
        checkGradients(s, flow.pairs(), dDelta, dq, dk);
        AmfParams params = flow.params();
        FastVmtLibrary library = backend.library();
        FastVmtH h = library.h();
        long workspace = windowWorkspace(h, s, params, flow.pairs());
        library.check(h.fvmt_amf_window_backward(q.segment(), k.segment(), q.dtype().nativeCode(),
                s.frames(), s.height(), s.width(), s.channels(), params.heads(), params.temperature(),
                params.tileHeight(), params.tileWidth(), params.window(),
                flow.pairTensor().segment(), flow.pairs().count(), flow.windowOrigins().segment(),
                dDelta.segment(), dq.segment(), dk.segment(),
                backend.workspace(workspace), workspace, backend.stream()));
    }

    private static long windowWorkspace(FastVmtH h, QkShape s, AmfParams params, FramePairs pairs) {
        return h.fvmt_amf_window_workspace_bytes(s.frames(), s.height(), s.width(), s.channels(),
                params.tileHeight(), params.tileWidth(), params.window(), pairs.count());
    }

    private QkShape checkInputs(Tensor q, Tensor k, FramePairs pairs, AmfParams params) {
        Checks.onBackend(backend, q, "q");
        Checks.onBackend(backend, k, "k");
        QkShape s = QkShape.of(q, k);
        Checks.supported(backend, q, "q");
        Checks.pairsMatch(pairs, s);
        Checks.heads(params, s);
        Checks.finite(q, "q");
        if (k != q) {
            Checks.finite(k, "k");
        }
        return s;
    }

    private void checkGradients(QkShape s, FramePairs pairs, Tensor dDelta, Tensor dq, Tensor dk) {
        Checks.onBackend(backend, dDelta, "dDelta");
        Checks.onBackend(backend, dq, "dq");
        Checks.onBackend(backend, dk, "dk");
        Checks.dtype(dDelta, "dDelta", DType.F32);
        Checks.dtype(dq, "dq", DType.F32);
        Checks.dtype(dk, "dk", DType.F32);
        Checks.shape(dDelta, "dDelta", pairs.count(), s.height(), s.width(), 2);
        Checks.shape(dq, "dq", s.dims());
        Checks.shape(dk, "dk", s.dims());
        if (dq == dk) {
            throw new IllegalArgumentException("dq and dk must be different tensors");
        }
        Checks.finite(dDelta, "dDelta");
    }

    private Tensor pairTensor(FramePairs pairs) {
        return Tensor.ofInts(backend, pairs.flat(), pairs.count(), 2);
    }
}
