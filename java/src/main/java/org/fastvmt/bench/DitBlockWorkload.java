package org.fastvmt.bench;

import java.util.SplittableRandom;

import org.fastvmt.backend.Backend;
import org.fastvmt.model.wan.AttentionFeatures;
import org.fastvmt.model.wan.TokenGrid;
import org.fastvmt.model.wan.WanBlock;
import org.fastvmt.model.wan.WanConditioning;
import org.fastvmt.model.wan.WanConfig;
import org.fastvmt.model.wan.WanDiT;
import org.fastvmt.model.wan.WanWeights;
import org.fastvmt.tensor.DType;
import org.fastvmt.tensor.Graph;
import org.fastvmt.tensor.Ops;
import org.fastvmt.tensor.Tensor;

/**
 * One Wan block of a config's shapes on random weights (BF16 matrices, as the published
 * checkpoints store them; seeded), at a given number of video tokens, with the text embedded to
 * the config's textLength rows: the DiT benchmark's forward and forward + backward (to the block
 * input, as guidance needs). Tokens form the grid of {@link #grid(int)}.
 */
public final class DitBlockWorkload implements AutoCloseable {

    /** Wan's 480×832 latent frame: 30×52 tokens. */
    static final int WAN_FRAME_HEIGHT = 30;
    static final int WAN_FRAME_WIDTH = 52;
    /** A mid-sampling timestep; its value does not change the work. */
    static final float TIMESTEP = 500f;

    private final Backend backend;
    private final WanConfig config;
    private final TokenGrid grid;
    private final WanWeights weights;
    private final WanConditioning conditioning;
    private final Tensor x;
    private final Tensor dOut;

    private DitBlockWorkload(Backend backend, WanConfig config, TokenGrid grid, WanWeights weights,
            WanConditioning conditioning, Tensor x, Tensor dOut) {
        this.backend = backend;
        this.config = config;
        this.grid = grid;
        this.weights = weights;
        this.conditioning = conditioning;
        this.x = x;
        this.dOut = dOut;
    }

    /** Block 0 of a one-block model with {@code config}'s widths, at {@code tokens} video tokens. */
    public static DitBlockWorkload create(Backend backend, WanConfig config, int tokens, long seed) {
        WanConfig oneBlock = config.withLayers(1);
        TokenGrid grid = grid(tokens);
        SplittableRandom random = new SplittableRandom(seed);
        WanWeights weights = WanWeights.random(oneBlock, backend, random.nextLong(), DType.BF16);
        try (Tensor text = random(backend, random, config.textLength(), config.textDim())) {
            WanConditioning conditioning = WanConditioning.compute(weights, text, TIMESTEP);
            Tensor x = random(backend, random, tokens, config.dim());
            Tensor dOut = random(backend, random, tokens, config.dim());
            return new DitBlockWorkload(backend, oneBlock, grid, weights, conditioning, x, dOut);
        } catch (RuntimeException e) {
            weights.close();
            throw e;
        }
    }

    /**
     * The token grid of {@code tokens}: whole 30×52 frames of Wan's 480×832 latent when it
     * divides, else one row of tokens (RoPE positions differ, the work does not).
     */
    public static TokenGrid grid(int tokens) {
        int frame = WAN_FRAME_HEIGHT * WAN_FRAME_WIDTH;
        if (tokens < 1) {
            throw new IllegalArgumentException("tokens must be >= 1, got " + tokens);
        }
        return tokens % frame == 0 ? new TokenGrid(tokens / frame, WAN_FRAME_HEIGHT, WAN_FRAME_WIDTH)
                : new TokenGrid(1, 1, tokens);
    }

    static Tensor random(Backend backend, SplittableRandom random, long rows, long cols) {
        float[] data = new float[Math.toIntExact(rows * cols)];
        for (int i = 0; i < data.length; i++) {
            data[i] = (float) (2 * random.nextDouble() - 1);
        }
        return Tensor.of(backend, data, rows, cols);
    }

    public WanConfig config() {
        return config;
    }

    public TokenGrid grid() {
        return grid;
    }

    /** The block forward on an inference graph (no tape), freed before returning. */
    public void forward() {
        try (Graph graph = new Graph(backend, false)) {
            WanBlock.forward(new Ops(graph), weights, 0, x, conditioning, grid);
            backend.synchronize();
        }
    }

    /** The block forward on a tape, then its backward to the block input from a random gradient. */
    public void forwardBackward() {
        try (Graph graph = new Graph(backend, true)) {
            graph.requireGradient(x);
            Tensor out = WanBlock.forward(new Ops(graph), weights, 0, x, conditioning, grid);
            graph.backward(out, dOut);
            backend.synchronize();
        }
    }

    /**
     * Peak memory of the guidance pass: random {@code config} weights limited to
     * {@code block + 1} blocks, the truncated forward to block {@code block}'s q and k, and the
     * checkpointed backward from random dQ, dK to the latent of {@code tokens} tokens.
     *
     * @param weightBytes  the weights alone
     * @param peakBytes    the backend's peak during the pass, weights included
     * @param ms           the wall time of forward + backward
     */
    public record GuidancePeak(int blocks, long weightBytes, long peakBytes, double ms) {
    }

    public static GuidancePeak guidancePeak(Backend backend, WanConfig config, int tokens, int block, long seed) {
        WanConfig truncated = config.withLayers(block + 1);
        TokenGrid grid = grid(tokens);
        SplittableRandom random = new SplittableRandom(seed);
        long before = backend.allocatedBytes();
        try (WanWeights weights = WanWeights.random(truncated, backend, random.nextLong(), DType.BF16)) {
            long weightBytes = backend.allocatedBytes() - before;
            WanDiT dit = new WanDiT(weights);
            long latentRows = (long) config.inDim() * grid.frames() * config.patchT();
            try (Tensor text = random(backend, random, config.textLength(), config.textDim());
                    Tensor latent = random(backend, random, latentRows,
                            (long) grid.height() * config.patchH() * grid.width() * config.patchW());
                    Tensor dQ = random(backend, random, grid.tokens(), config.dim());
                    Tensor dK = random(backend, random, grid.tokens(), config.dim());
                    WanConditioning conditioning = WanConditioning.compute(weights, text, TIMESTEP)) {
                Tensor shaped = latent.view(config.inDim(), (long) grid.frames() * config.patchT(),
                        (long) grid.height() * config.patchH(), (long) grid.width() * config.patchW());
                backend.resetPeak();
                long start = System.nanoTime();
                try (AttentionFeatures features = dit.differentiableFeatures(shaped, conditioning, block);
                        Tensor dLatent = features.backward(dQ.view(features.q().shape()),
                                dK.view(features.k().shape()))) {
                    backend.synchronize();
                }
                double ms = (System.nanoTime() - start) / 1e6;
                return new GuidancePeak(block + 1, weightBytes, backend.peakAllocatedBytes() - before, ms);
            }
        }
    }

    @Override
    public void close() {
        x.close();
        dOut.close();
        conditioning.close();
        weights.close();
    }
}
