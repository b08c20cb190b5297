package org.fastvmt.bench;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;
import java.util.stream.IntStream;

import org.fastvmt.backend.Backend;
import org.fastvmt.nativeabi.FastVmtH;
import org.fastvmt.tensor.DType;
import org.fastvmt.tensor.Graph;
import org.fastvmt.tensor.Ops;
import org.fastvmt.tensor.Tensor;

/**
 * The attention benchmark: Wan's self-attention softmax(q·kᵀ/√d)·v over {@code heads} heads of
 * random (seeded, uniform ±1) F32 q, k, v [tokens, heads·d], by the fused kernel
 * ({@link Ops#attention}, forward and forward + backward) and by the naive way that stores the
 * [tokens, tokens] score matrix of each head: the head's q, k, v gathered into contiguous
 * matrices, S = q·kᵀ and O = P·v by the backend's GEMM (OpenBLAS on cpu), the row softmax of S
 * in Java over every core. The naive way reads host memory from Java, so it runs on host
 * backends only ({@link #hasNaive()}).
 */
public final class AttentionWorkload implements AutoCloseable {

    private final Backend backend;
    private final int tokens;
    private final int heads;
    private final int headDim;
    private final Tensor q;
    private final Tensor k;
    private final Tensor v;
    private final Tensor dOut;

    public AttentionWorkload(Backend backend, int tokens, int heads, int headDim, long seed) {
        if (tokens < 1 || heads < 1 || headDim < 1) {
            throw new IllegalArgumentException("tokens, heads and headDim must be positive, got " + tokens + ", "
                    + heads + ", " + headDim);
        }
        this.backend = backend;
        this.tokens = tokens;
        this.heads = heads;
        this.headDim = headDim;
        SplittableRandom random = new SplittableRandom(seed);
        long width = (long) heads * headDim;
        this.q = Tensor.of(backend, uniform(random, tokens * width), tokens, width);
        this.k = Tensor.of(backend, uniform(random, tokens * width), tokens, width);
        this.v = Tensor.of(backend, uniform(random, tokens * width), tokens, width);
        this.dOut = Tensor.of(backend, uniform(random, tokens * width), tokens, width);
    }

    private static float[] uniform(SplittableRandom random, long count) {
        float[] data = new float[Math.toIntExact(count)];
        for (int i = 0; i < data.length; i++) {
            data[i] = (float) (2 * random.nextDouble() - 1);
        }
        return data;
    }

    public int tokens() {
        return tokens;
    }

    public int heads() {
        return heads;
    }

    public int headDim() {
        return headDim;
    }

    /** Whether {@link #naiveForward()} can run on this backend. */
    public boolean hasNaive() {
        return !"cuda".equals(backend.name());
    }

    /** The fused forward. */
    public void fusedForward() {
        try (Graph graph = new Graph(backend, false)) {
            new Ops(graph).attention(q, k, v, heads);
            backend.synchronize();
        }
    }

    /** The fused forward, then the backward to q, k and v from a random dOut. */
    public void fusedForwardBackward() {
        try (Graph graph = new Graph(backend, true)) {
            graph.requireGradient(q);
            graph.requireGradient(k);
            graph.requireGradient(v);
            Tensor out = new Ops(graph).attention(q, k, v, heads);
            graph.backward(out, dOut);
            backend.synchronize();
        }
    }

    /** The materialised forward, into a fresh output that it frees; for {@link #hasNaive()} backends. */
    public void naiveForward() {
        try (Tensor out = naive()) {
            backend.synchronize();
        }
    }

    /** The materialised attention's output [tokens, heads·d], for checking it against the fused one. */
    public Tensor naive() {
        if (!hasNaive()) {
            throw new IllegalStateException("the naive attention reads host memory; " + backend.name()
                    + " keeps tensors on a device");
        }
        float scale = (float) (1 / Math.sqrt(headDim));
        Tensor out = Tensor.zeros(backend, DType.F32, tokens, (long) heads * headDim);
        try (Tensor qh = Tensor.zeros(backend, DType.F32, tokens, headDim);
                Tensor kh = Tensor.zeros(backend, DType.F32, tokens, headDim);
                Tensor vh = Tensor.zeros(backend, DType.F32, tokens, headDim);
                Tensor oh = Tensor.zeros(backend, DType.F32, tokens, headDim);
                Tensor scores = Tensor.zeros(backend, DType.F32, tokens, tokens)) {
            for (int h = 0; h < heads; h++) {
                gather(q, qh, h);
                gather(k, kh, h);
                gather(v, vh, h);
                backend.gemm(false, true, tokens, tokens, headDim, scale, qh.segment(), kh.segment(),
                        FastVmtH.FVMT_DTYPE_F32, 0f, scores.segment());
                softmaxRows(scores.segment(), tokens);
                backend.gemm(false, false, tokens, headDim, tokens, 1f, scores.segment(), vh.segment(),
                        FastVmtH.FVMT_DTYPE_F32, 0f, oh.segment());
                scatter(oh, out, h);
            }
        } catch (RuntimeException e) {
            out.close();
            throw e;
        }
        return out;
    }

    /** The fused attention's output, computed on a graph that the caller's tensor outlives. */
    public Tensor fused() {
        try (Graph graph = new Graph(backend, false)) {
            return graph.disown(new Ops(graph).attention(q, k, v, heads));
        }
    }

    private void gather(Tensor all, Tensor head, int h) {
        MemorySegment from = all.segment();
        MemorySegment to = head.segment();
        long rowBytes = (long) headDim * Float.BYTES;
        for (long t = 0; t < tokens; t++) {
            MemorySegment.copy(from, (t * heads + h) * rowBytes, to, t * rowBytes, rowBytes);
        }
    }

    private void scatter(Tensor head, Tensor all, int h) {
        MemorySegment from = head.segment();
        MemorySegment to = all.segment();
        long rowBytes = (long) headDim * Float.BYTES;
        for (long t = 0; t < tokens; t++) {
            MemorySegment.copy(from, t * rowBytes, to, (t * heads + h) * rowBytes, rowBytes);
        }
    }

    private static void softmaxRows(MemorySegment scores, int n) {
        IntStream.range(0, n).parallel().forEach(row -> {
            long base = (long) row * n;
            float max = Float.NEGATIVE_INFINITY;
            for (int j = 0; j < n; j++) {
                max = Math.max(max, scores.getAtIndex(ValueLayout.JAVA_FLOAT, base + j));
            }
            double sum = 0;
            for (int j = 0; j < n; j++) {
                float e = (float) Math.exp(scores.getAtIndex(ValueLayout.JAVA_FLOAT, base + j) - max);
                scores.setAtIndex(ValueLayout.JAVA_FLOAT, base + j, e);
                sum += e;
            }
            float inverse = (float) (1 / sum);
            for (int j = 0; j < n; j++) {
                scores.setAtIndex(ValueLayout.JAVA_FLOAT, base + j,
                        scores.getAtIndex(ValueLayout.JAVA_FLOAT, base + j) * inverse);
            }
        });
    }

    @Override
    public void close() {
        q.close();
        k.close();
        v.close();
        dOut.close();
    }
}
