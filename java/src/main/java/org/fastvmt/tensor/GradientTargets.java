package org.fastvmt.tensor;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

import org.fastvmt.backend.Backend;
import org.fastvmt.nativeabi.FastVmtLibrary;

/**
 * The gradient buffers one backward call writes, one per input of the op: the input's gradient
 * (accumulated into directly), or nothing when the input needs no gradient.
 *
 * <p>Two inputs may share memory (add(x, x), attention(x, x, x), two overlapping slices of one
 * tensor); a kernel must not receive overlapping outputs, so a later input whose gradient range
 * overlaps an earlier one's gets a zero-filled temporary instead, added into the real gradient
 * on {@link #close()}. {@link #required} gives a temporary also to an input that needs no gradient,
 * for kernels whose gradient outputs may not be NULL; it is dropped on close.
 */
final class GradientTargets implements AutoCloseable {

    private final Backend backend;
    private final Tensor[] targets;
    private final boolean[] wanted;
    /** Temporaries standing in for an overlapping gradient: [temporary, real gradient]. */
    private final List<Tensor[]> pending = new ArrayList<>();
    private final List<Tensor> scratch = new ArrayList<>();

    GradientTargets(Graph graph, Tensor... inputs) {
        this.backend = graph.backend();
        this.targets = new Tensor[inputs.length];
        this.wanted = new boolean[inputs.length];
        for (int n = 0; n < inputs.length; n++) {
            if (!graph.needsGradient(inputs[n])) {
                continue;
            }
            wanted[n] = true;
            Tensor gradient = graph.gradientFor(inputs[n]);
            if (overlapsEarlier(gradient, n)) {
                Tensor temporary = Tensor.zeros(backend, DType.F32, inputs[n].shape());
                pending.add(new Tensor[] {temporary, gradient});
                targets[n] = temporary;
            } else {
                targets[n] = gradient;
            }
        }
    }

    /** Where the gradient of input {@code n} accumulates, or NULL (the kernels' "not wanted"). */
    MemorySegment segment(int n) {
        return targets[n] == null ? MemorySegment.NULL : targets[n].segment();
    }

    /**
     * Where the gradient of input {@code n} accumulates, or, when it needs none, a zero-filled
     * temporary of {@code shape} that is discarded.
     */
    MemorySegment required(int n, long... shape) {
        if (targets[n] == null) {
            Tensor temporary = Tensor.zeros(backend, DType.F32, shape);
            scratch.add(temporary);
            targets[n] = temporary;
        }
        return targets[n].segment();
    }

    /** Whether input {@code n} needs a gradient. */
    boolean wanted(int n) {
        return wanted[n];
    }

    /** Adds the temporaries into the gradients they stand for and frees them. */
    @Override
    public void close() {
        FastVmtLibrary library = backend.library();
        try {
            for (Tensor[] pair : pending) {
                library.check(library.h().fvmt_add_scaled(pair[0].segment(), 1f, pair[1].segment(),
                        pair[0].elementCount(), backend.stream()));
            }
        } finally {
            pending.forEach(pair -> pair[0].close());
            scratch.forEach(Tensor::close);
        }
    }

    private boolean overlapsEarlier(Tensor gradient, int n) {
        for (int earlier = 0; earlier < n; earlier++) {
            Tensor other = targets[earlier];
            if (other != null && other.base() == gradient.base()
                    && other.offset() < gradient.offset() + gradient.elementCount()
                    && gradient.offset() < other.offset() + other.elementCount()) {
                return true;
            }
        }
        return false;
    }
}
