package org.fastvmt.motion;

import org.fastvmt.backend.Backend;
import org.fastvmt.nativeabi.FastVmtH;
import org.fastvmt.nativeabi.FastVmtLibrary;
import org.fastvmt.tensor.DType;
import org.fastvmt.tensor.Tensor;

/**
 * FastVMT's tracking loss: for each query frame and tile, the mean key vector of its search
 * window in successive key frames should change little; the loss is the mean L2 norm of that
 * change (see fastvmt.h). It reads the windows a {@link WindowedFlow} chose.
 */
public final class TrackingLoss {

    private final Backend backend;

    public TrackingLoss(Backend backend) {
        this.backend = backend;
    }

    /** The loss of the keys {@code k} (the K the flow was computed from) over the flow's windows. */
    public float forward(Tensor k, WindowedFlow flow) {
        QkShape s = checkInputs(k, flow);
        AmfParams params = flow.params();
        FastVmtLibrary library = backend.library();
        FastVmtH h = library.h();
        try (Tensor loss = Tensor.zeros(backend, DType.F32, 1)) {
            long workspace = workspace(h, s, flow);
            library.check(h.fvmt_tracking_loss_forward(k.segment(), k.dtype().nativeCode(),
                    s.frames(), s.height(), s.width(), s.channels(), params.tileHeight(), params.tileWidth(),
                    params.window(), flow.pairTensor().segment(), flow.pairs().count(),
                    flow.windowOrigins().segment(), loss.segment(),
                    backend.workspace(workspace), workspace, backend.stream()));
            return loss.toFloatArray()[0];
        }
    }

    /** Adds {@code lossGrad · dL/dK} into {@code dk} (F32 [F, H, W, C]). */
    public void backward(Tensor k, WindowedFlow flow, float lossGrad, Tensor dk) {
        QkShape s = checkInputs(k, flow);
        if (!Float.isFinite(lossGrad)) {
            throw new IllegalArgumentException("lossGrad must be finite, got " + lossGrad);
        }
        Checks.onBackend(backend, dk, "dk");
        Checks.dtype(dk, "dk", DType.F32);
        Checks.shape(dk, "dk", s.dims());
        AmfParams params = flow.params();
        FastVmtLibrary library = backend.library();
        FastVmtH h = library.h();
        long workspace = workspace(h, s, flow);
        library.check(h.fvmt_tracking_loss_backward(k.segment(), k.dtype().nativeCode(),
                s.frames(), s.height(), s.width(), s.channels(), params.tileHeight(), params.tileWidth(),
                params.window(), flow.pairTensor().segment(), flow.pairs().count(),
                flow.windowOrigins().segment(), lossGrad, dk.segment(),
                backend.workspace(workspace), workspace, backend.stream()));
    }

    private static long workspace(FastVmtH h, QkShape s, WindowedFlow flow) {
        return h.fvmt_tracking_loss_workspace_bytes(s.frames(), s.height(), s.width(), s.channels(),
                flow.params().tileHeight(), flow.params().tileWidth(), flow.pairs().count());
    }

    private QkShape checkInputs(Tensor k, WindowedFlow flow) {
        Checks.onBackend(backend, k, "k");
        Checks.onBackend(backend, flow.delta(), "flow");
        QkShape s = QkShape.of(k);
        if (!s.equals(flow.shape())) {
            throw new IllegalArgumentException("k has shape " + s + " but the flow was computed for " + flow.shape());
        }
        Checks.supported(backend, k, "k");
        Checks.finite(k, "k");
        return s;
    }
}
