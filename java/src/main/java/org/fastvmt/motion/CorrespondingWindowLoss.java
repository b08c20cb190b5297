package org.fastvmt.motion;

import java.util.Arrays;

import org.fastvmt.backend.Backend;
import org.fastvmt.nativeabi.FastVmtH;
import org.fastvmt.nativeabi.FastVmtLibrary;
import org.fastvmt.tensor.DType;
import org.fastvmt.tensor.Tensor;

/**
 * FastVMT's corresponding-window loss between a reference and a generated AMF:
 * {@code L = mean over pairs of w_p · ||Δ_ref[p] − Δ_gen[p]||²}, with the pair weights of
 * {@link FramePairs#weights()} (linspace(1, 0.8, sf) by frame distance for FastVMT's pairs).
 */
public final class CorrespondingWindowLoss {

    private final Backend backend;

    public CorrespondingWindowLoss(Backend backend) {
        this.backend = backend;
    }

    /** The loss of Δ_gen against Δ_ref (both F32 [pairs, H, W, 2]). */
    public float forward(Tensor deltaRef, Tensor deltaGen, FramePairs pairs) {
        int tokens = checkInputs(deltaRef, deltaGen, pairs);
        FastVmtLibrary library = backend.library();
        FastVmtH h = library.h();
        try (Tensor weights = Tensor.of(backend, pairs.weights(), pairs.count());
                Tensor loss = Tensor.zeros(backend, DType.F32, 1)) {
            long workspace = h.fvmt_window_loss_workspace_bytes(pairs.count(), tokens);
            library.check(h.fvmt_window_loss_forward(deltaRef.segment(), deltaGen.segment(), weights.segment(),
                    pairs.count(), tokens, loss.segment(), backend.workspace(workspace), workspace,
                    backend.stream()));
            return loss.toFloatArray()[0];
        }
    }

    /** Adds {@code lossGrad · dL/dΔ_gen} into {@code dDeltaGen} (F32, the shape of Δ_gen). */
    public void backward(Tensor deltaRef, Tensor deltaGen, FramePairs pairs, float lossGrad, Tensor dDeltaGen) {
        int tokens = checkInputs(deltaRef, deltaGen, pairs);
        if (!Float.isFinite(lossGrad)) {
            throw new IllegalArgumentException("lossGrad must be finite, got " + lossGrad);
        }
        Checks.onBackend(backend, dDeltaGen, "dDeltaGen");
        Checks.dtype(dDeltaGen, "dDeltaGen", DType.F32);
        Checks.shape(dDeltaGen, "dDeltaGen", deltaGen.shape());
        FastVmtLibrary library = backend.library();
        try (Tensor weights = Tensor.of(backend, pairs.weights(), pairs.count())) {
            library.check(library.h().fvmt_window_loss_backward(deltaRef.segment(), deltaGen.segment(),
                    weights.segment(), pairs.count(), tokens, lossGrad, dDeltaGen.segment(), backend.stream()));
        }
    }

    private int checkInputs(Tensor deltaRef, Tensor deltaGen, FramePairs pairs) {
        Checks.onBackend(backend, deltaRef, "deltaRef");
        Checks.onBackend(backend, deltaGen, "deltaGen");
        Checks.dtype(deltaRef, "deltaRef", DType.F32);
        Checks.dtype(deltaGen, "deltaGen", DType.F32);
        if (deltaGen.rank() < 2 || deltaGen.dim(0) != pairs.count() || deltaGen.dim(deltaGen.rank() - 1) != 2) {
            throw new IllegalArgumentException("deltaGen must be [pairs=" + pairs.count() + ", ..., 2], got "
                    + Arrays.toString(deltaGen.shape()));
        }
        Checks.shape(deltaRef, "deltaRef", deltaGen.shape());
        Checks.finite(deltaRef, "deltaRef");
        Checks.finite(deltaGen, "deltaGen");
        return Math.toIntExact(deltaGen.elementCount() / (2L * pairs.count()));
    }
}
