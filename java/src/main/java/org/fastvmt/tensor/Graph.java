package org.fastvmt.tensor;

import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

import org.fastvmt.backend.Backend;
import org.fastvmt.nativeabi.FastVmtLibrary;

/**
 * A reverse-mode tape, and the owner of every tensor a forward pass makes.
 *
 * <p>{@link Ops} bound to this graph allocate their results here and, when the graph is
 * {@linkplain #recording() recording} and some input {@linkplain #needsGradient needs a gradient},
 * append a record: the op's inputs, its output and a closure that turns the output's gradient into
 * gradients of the inputs. {@link #backward} seeds output gradients and runs the records in
 * reverse order.
 *
 * <p>Gradients are fp32 tensors owned by the graph, one per <em>base</em> tensor (the tensor
 * that owns the memory, see {@link Tensor#base()}), allocated zero-filled when first needed.
 * The gradient of a view or slice is the same view or slice of its base's gradient, so a view
 * needs no record of its own: an op that reads a slice accumulates into exactly that range of
 * the base's gradient, and several slices of one tensor (the six modulation chunks of a Wan block)
 * add up in one buffer. Native backward kernels accumulate (+=), which is what makes a tensor
 * used by several ops receive the sum of their contributions.
 *
 * <p>Leaves are marked with {@link #requireGradient}; their gradients accumulate across calls of
 * {@link #backward}. The gradient of an intermediate result lives only while its producer's
 * record has not run: it is freed right after, which bounds the memory of a backward pass and
 * lets backward be called again with other outputs (each call propagates only its own seeds).
 *
 * <p>Used from one thread at a time, like its backend.
 */
public final class Graph implements AutoCloseable {

    /** Turns the gradient of a record's output into (accumulated) gradients of its inputs. */
    @FunctionalInterface
    interface Backward {
        void run(Tensor outputGradient);
    }

    private record Record(String op, List<Tensor> inputs, Tensor output, Backward backward) {
    }

    private final Backend backend;
    private final boolean recording;
    // Tensor does not override equals/hashCode: these collections compare tensors by identity.
    private final Set<Tensor> owned = Collections.newSetFromMap(new LinkedHashMap<>());
    /** Bases marked by requireGradient: their gradients are kept and accumulate. */
    private final Set<Tensor> leaves = Collections.newSetFromMap(new IdentityHashMap<>());
    /** Bases that need a gradient: the leaves and the outputs of records. */
    private final Set<Tensor> tracked = Collections.newSetFromMap(new IdentityHashMap<>());
    private final Map<Tensor, Tensor> gradients = new IdentityHashMap<>();
    private final List<Record> tape = new ArrayList<>();
    private boolean closed;

    /** A graph on {@code backend}; {@code recording} false is inference: nothing is recorded. */
    public Graph(Backend backend, boolean recording) {
        this.backend = Objects.requireNonNull(backend, "backend");
        this.recording = recording;
    }

    public Backend backend() {
        return backend;
    }

    public boolean recording() {
        return recording;
    }

    /** Makes the graph close {@code tensor} (an owning tensor, not a view) when it closes; returns it. */
    public Tensor own(Tensor tensor) {
        checkOpen();
        requireSameBackend(tensor, "tensor");
        if (tensor.isView()) {
            throw new IllegalArgumentException("own: tensor is a view; own its base instead: " + tensor);
        }
        owned.add(tensor);
        return tensor;
    }

    /**
     * Frees an owned tensor now (inference: to keep memory bounded while the graph lives).
     *
     * @throws IllegalArgumentException if the graph does not own it or a record still needs it
     */
    public void free(Tensor tensor) {
        checkOwnedAndOffTheTape(tensor, "free");
        owned.remove(tensor);
        tensor.close();
    }

    /**
     * Hands an owned tensor over to the caller, who closes it; the graph no longer will.
     *
     * @throws IllegalArgumentException if the graph does not own it or a record still needs it
     */
    public Tensor disown(Tensor tensor) {
        checkOwnedAndOffTheTape(tensor, "disown");
        owned.remove(tensor);
        return tensor;
    }

    /**
     * Gradients will be computed for {@code leaf} (an fp32 tensor; for a view, its whole base).
     *
     * @throws IllegalStateException if the graph is not recording
     */
    public void requireGradient(Tensor leaf) {
        checkOpen();
        if (!recording) {
            throw new IllegalStateException("requireGradient: this graph does not record (inference)");
        }
        requireSameBackend(leaf, "leaf");
        if (leaf.dtype() != DType.F32) {
            throw new IllegalArgumentException("requireGradient: leaf must be F32 (gradients are fp32; "
                    + "convert bf16 weights to fp32 to train them), got " + leaf);
        }
        leaves.add(leaf.base());
        tracked.add(leaf.base());
    }

    /** Whether {@code tensor} is a leaf that requires a gradient or the result of a recorded op. */
    public boolean needsGradient(Tensor tensor) {
        return recording && tensor != null && tracked.contains(tensor.base());
    }

    /** How many ops have been recorded on the tape. */
    public int recordCount() {
        return tape.size();
    }

    /** {@link #backward(Map)} with one output. */
    public void backward(Tensor output, Tensor outputGradient) {
        Map<Tensor, Tensor> seeds = new IdentityHashMap<>();
        seeds.put(output, outputGradient);
        backward(seeds);
    }

    /**
     * Adds each gradient (an F32 tensor with as many elements as its output) to its output's
     * gradient, then runs the tape in reverse: every leaf that requires a gradient receives
     * the sum over the seeds of d(seed · output)/d(leaf).
     */
    public void backward(Map<Tensor, Tensor> outputGradients) {
        checkOpen();
        if (!recording) {
            throw new IllegalStateException("backward: this graph does not record (inference)");
        }
        FastVmtLibrary library = backend.library();
        for (Map.Entry<Tensor, Tensor> seed : outputGradients.entrySet()) {
            Tensor output = seed.getKey();
            Tensor gradient = seed.getValue();
            requireSameBackend(output, "output");
            requireSameBackend(gradient, "outputGradient");
            if (!needsGradient(output)) {
                throw new IllegalArgumentException("backward: output " + output
                        + " depends on no tensor that requires a gradient");
            }
            if (gradient.dtype() != DType.F32 || gradient.elementCount() != output.elementCount()) {
                throw new IllegalArgumentException("backward: the gradient of " + output + " must be F32 with "
                        + output.elementCount() + " elements, got " + gradient);
            }
            library.check(library.h().fvmt_add_scaled(gradient.segment(), 1f, gradientFor(output).segment(),
                    output.elementCount(), backend.stream()));
        }
        for (int n = tape.size() - 1; n >= 0; n--) {
            Record record = tape.get(n);
            Tensor outputGradient = gradients.get(record.output());
            if (outputGradient == null) {
                continue;
            }
            record.backward().run(outputGradient);
            // Every consumer of this output was recorded later and has run: nothing adds to it now.
            if (!leaves.contains(record.output())) {
                gradients.remove(record.output()).close();
            }
        }
    }

    /**
     * The gradient accumulated for {@code tensor} (a view of its base's gradient for a view), or
     * null when none has been; owned by the graph. Gradients of intermediate results are freed
     * during backward: ask for those of leaves.
     */
    public Tensor gradient(Tensor tensor) {
        Tensor gradient = gradients.get(tensor.base());
        if (gradient == null || !tensor.isView()) {
            return gradient;
        }
        return gradient.slice(tensor.offset(), tensor.shape());
    }

    /** Frees every owned tensor and every gradient, and forgets the tape. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        tape.clear();
        gradients.values().forEach(Tensor::close);
        gradients.clear();
        owned.forEach(Tensor::close);
        owned.clear();
    }

    // ------------------------------------------------------------------ for Ops

    /** A zero-filled F32 tensor owned by the graph. */
    Tensor newTensor(long... shape) {
        checkOpen();
        return own(Tensor.zeros(backend, DType.F32, shape));
    }

    /** Whether an op with these inputs (nulls allowed) must be recorded. */
    boolean shouldRecord(Tensor... inputs) {
        for (Tensor input : inputs) {
            if (needsGradient(input)) {
                return true;
            }
        }
        return false;
    }

    /** Appends a record; {@code output} (a tensor this graph made) then needs a gradient. */
    void record(String op, Tensor output, List<Tensor> inputs, Backward backward) {
        if (!owned.contains(output)) {
            throw new IllegalArgumentException(op + ": the output of a record must be a tensor of this graph");
        }
        tape.add(new Record(op, List.copyOf(inputs), output, backward));
        tracked.add(output);
    }

    /** The gradient of {@code tensor}, allocated zero-filled if it has none yet. */
    Tensor gradientFor(Tensor tensor) {
        Tensor base = tensor.base();
        Tensor gradient = gradients.computeIfAbsent(base, b -> Tensor.zeros(backend, DType.F32, b.shape()));
        return tensor.isView() ? gradient.slice(tensor.offset(), tensor.shape()) : gradient;
    }

    /** Where a backward writes the gradients of {@code inputs}: see {@link GradientTargets}. */
    GradientTargets gradientTargets(Tensor... inputs) {
        return new GradientTargets(this, inputs);
    }

    private void checkOwnedAndOffTheTape(Tensor tensor, String what) {
        checkOpen();
        if (!owned.contains(tensor)) {
            throw new IllegalArgumentException(what + ": the graph does not own " + tensor);
        }
        for (Record record : tape) {
            if (record.output() == tensor || record.inputs().stream().anyMatch(in -> in.base() == tensor)) {
                throw new IllegalArgumentException(what + ": " + tensor + " is still needed by the record of "
                        + record.op());
            }
        }
    }

    private void requireSameBackend(Tensor tensor, String name) {
        Objects.requireNonNull(tensor, name);
        if (tensor.backend() != backend) {
            throw new IllegalArgumentException(name + " lives on " + tensor.backend().name()
                    + ", the graph on " + backend.name() + ": " + tensor);
        }
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("the graph is closed");
        }
    }

    @Override
    public String toString() {
        return "Graph[" + backend.name() + (recording ? ", recording " + tape.size() + " records" : ", inference")
                + ", " + owned.size() + " tensors, " + gradients.size() + " gradients]"
                + (closed ? " (closed)" : "");
    }
}
