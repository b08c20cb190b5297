package org.fastvmt.model.wan;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import org.fastvmt.backend.Backend;
import org.fastvmt.tensor.DType;
import org.fastvmt.tensor.Graph;
import org.fastvmt.tensor.Ops;
import org.fastvmt.tensor.PatchLayout;
import org.fastvmt.tensor.Tensor;

/**
 * The Wan2.1 text-to-video diffusion transformer ({@code WanModel}, Wan-Video/Wan2.1
 * {@code wan/modules/model.py}) on one backend, for one latent at a time:
 * <pre>
 *   x = patch_embedding(latent)            Conv3d(kernel = stride = patch): patchify, then Linear
 *   x = block_i(x, e0, context)            i = 0 .. layers − 1 (see {@link WanBlock})
 *   y = head(LayerNorm(x)·(1 + mh1) + mh0) mh = head.modulation [2, dim] + e
 *   velocity = unpatchify(y)               [outDim, F, H, W]
 * </pre>
 * and the two things FastVMT needs from it: the self-attention query and key of one block
 * ({@link #attentionFeatures}), and the gradient of a loss on them back to the latent
 * ({@link #differentiableFeatures}, then {@link AttentionFeatures#backward}).
 *
 * <p>The weights stay owned by the caller; every method returns tensors its caller closes, and
 * frees everything else before it returns.
 */
public final class WanDiT {

    /** The block whose self-attention the attention motion flow is read from (DiTFlow, FastVMT). */
    public static final int DEFAULT_AMF_BLOCK = 14;

    private final WanWeights weights;
    private final WanConfig config;
    private final Backend backend;

    public WanDiT(WanWeights weights) {
        if (weights == null) {
            throw new IllegalArgumentException("weights must not be null");
        }
        this.weights = weights;
        this.config = weights.config();
        this.backend = weights.backend();
    }

    public WanConfig config() {
        return config;
    }

    public WanWeights weights() {
        return weights;
    }

    public Backend backend() {
        return backend;
    }

    /** {@link WanConditioning#compute} with this model's weights. */
    public WanConditioning condition(Tensor textEmbeddings, float timestep) {
        return WanConditioning.compute(weights, textEmbeddings, timestep);
    }

    /**
     * The predicted flow-matching velocity [outDim, F, H, W] of {@code latent} [inDim, F, H, W]
     * (F32; F, H, W multiples of the patch), without a tape: each block's intermediates are freed
     * as they are used and each block's input once the block is done.
     */
    public Tensor forward(Tensor latent, WanConditioning conditioning) {
        return run(latent, conditioning, -1).velocity();
    }

    /**
     * {@link #forward} that also returns the self-attention query and key of block
     * {@code featureBlock} of the same pass (as {@link #attentionFeatures} would compute them), for
     * measuring the motion of a prediction without a second pass.
     */
    public Prediction forwardWithFeatures(Tensor latent, WanConditioning conditioning, int featureBlock) {
        checkBlock(featureBlock, "featureBlock");
        return run(latent, conditioning, featureBlock);
    }

    /** The velocity and, when asked for, the query and key [F', H', W', dim] of one block. Closes all three. */
    public record Prediction(Tensor velocity, Tensor q, Tensor k) implements AutoCloseable {
        @Override
        public void close() {
            velocity.close();
            if (q != null) {
                q.close();
                k.close();
            }
        }
    }

    private Prediction run(Tensor latent, WanConditioning conditioning, int featureBlock) {
        TokenGrid grid = checkInputs(latent, conditioning);
        Tensor[] captured = new Tensor[2];
        try (Graph graph = new Graph(backend, false)) {
            Ops ops = new Ops(graph);
            Tensor x = embed(ops, latent);
            for (int block = 0; block < config.layers(); block++) {
                Tensor next = WanBlock.forward(ops, weights, block, x, conditioning, grid,
                        block != featureBlock ? null : qk -> {
                            captured[0] = copy(qk.q(), featureShape(grid));
                            captured[1] = copy(qk.k(), featureShape(grid));
                        });
                graph.free(x);
                x = next;
            }
            Tensor y = head(ops, x, conditioning);
            graph.free(x);
            Tensor velocity = ops.unpatchify(y, config.outDim(), (int) latent.dim(1), (int) latent.dim(2),
                    (int) latent.dim(3), config.patchT(), config.patchH(), config.patchW(), PatchLayout.CHANNEL_LAST);
            return new Prediction(graph.disown(velocity), captured[0], captured[1]);
        } catch (RuntimeException | Error e) {
            closeAll(captured);
            throw e;
        }
    }

    /**
     * The self-attention query and key of block {@code block} (after RMSNorm and RoPE) for
     * {@code latent}, computed by a forward that stops there: nothing after them runs. Keeps no
     * checkpoints, so {@link AttentionFeatures#backward} is not available (for that see
     * {@link #differentiableFeatures}). The result may be closed before {@code conditioning}.
     */
    public AttentionFeatures attentionFeatures(Tensor latent, WanConditioning conditioning, int block) {
        return features(latent, conditioning, block, false);
    }

    /** {@link #attentionFeatures} of block {@link #DEFAULT_AMF_BLOCK}. */
    public AttentionFeatures attentionFeatures(Tensor latent, WanConditioning conditioning) {
        return attentionFeatures(latent, conditioning, DEFAULT_AMF_BLOCK);
    }

    /**
     * {@link #attentionFeatures}, keeping what {@link AttentionFeatures#backward} needs to turn
     * dL/dQ and dL/dK into dL/dlatent: the input of every block up to {@code block} (block
     * activations are recomputed, one block at a time, during the backward) and a copy of the
     * latent. {@code conditioning} must stay open until the features are closed.
     */
    public AttentionFeatures differentiableFeatures(Tensor latent, WanConditioning conditioning, int block) {
        return features(latent, conditioning, block, true);
    }

    /** {@link #differentiableFeatures} of block {@link #DEFAULT_AMF_BLOCK}. */
    public AttentionFeatures differentiableFeatures(Tensor latent, WanConditioning conditioning) {
        return differentiableFeatures(latent, conditioning, DEFAULT_AMF_BLOCK);
    }

    private AttentionFeatures features(Tensor latent, WanConditioning conditioning, int block,
            boolean differentiable) {
        TokenGrid grid = checkInputs(latent, conditioning);
        checkBlock(block, "block");
        Graph graph = new Graph(backend, false);
        try {
            Ops ops = new Ops(graph);
            Tensor latentCopy = differentiable ? graph.own(copy(latent, latent.shape())) : null;
            List<Tensor> checkpoints = new ArrayList<>();
            Tensor x = embed(ops, latent);
            for (int n = 0; n < block; n++) {
                Tensor next = WanBlock.forward(ops, weights, n, x, conditioning, grid);
                if (differentiable) {
                    checkpoints.add(x);
                } else {
                    graph.free(x);
                }
                x = next;
            }
            WanBlock.QueryKey qk = WanBlock.queryKey(ops, weights, block, x, conditioning, grid);
            if (differentiable) {
                checkpoints.add(x);
            } else {
                graph.free(x);
            }
            return new AttentionFeatures(this, graph, conditioning, grid, block, qk, latentCopy, checkpoints);
        } catch (RuntimeException | Error e) {
            graph.close();
            throw e;
        }
    }

    // ------------------------------------------------------------------ parts shared with AttentionFeatures

    /** patch_embedding: the Conv3d as patchify (Conv3d weight order) and a Linear of the flattened kernel. */
    Tensor embed(Ops ops, Tensor latent) {
        Tensor tokens = ops.patchify(latent, config.patchT(), config.patchH(), config.patchW(),
                PatchLayout.CHANNEL_FIRST);
        Tensor kernel = weights.get("patch_embedding.weight").view(config.dim(), config.patchFeatures());
        Tensor x = ops.linear(tokens, kernel, weights.get("patch_embedding.bias"));
        if (!ops.graph().recording()) {
            ops.graph().free(tokens);
        }
        return x;
    }

    /** Head: LayerNorm (no affine), modulated by head.modulation + e, then head.head. */
    private Tensor head(Ops ops, Tensor x, WanConditioning conditioning) {
        int dim = config.dim();
        Tensor table = weights.get("head.modulation");
        Tensor e = conditioning.e().view(dim);
        Tensor shift = ops.add(table.slice(0, dim), e);
        Tensor scale = ops.add(table.slice(dim, dim), e);
        Tensor normed = ops.layerNorm(x, null, null, config.eps());
        Tensor h = ops.modulate(normed, shift, scale);
        Graph graph = ops.graph();
        graph.free(normed);
        graph.free(shift);
        graph.free(scale);
        Tensor y = ops.linear(h, weights.get("head.head.weight"), weights.get("head.head.bias"));
        graph.free(h);
        return y;
    }

    /** A fresh F32 tensor of {@code shape} holding a copy of {@code source}; the caller closes it. */
    Tensor copy(Tensor source, long[] shape) {
        Tensor copy = Tensor.zeros(backend, DType.F32, shape);
        try {
            copy.copyFrom(source);
            return copy;
        } catch (RuntimeException e) {
            copy.close();
            throw e;
        }
    }

    long[] featureShape(TokenGrid grid) {
        return new long[] {grid.frames(), grid.height(), grid.width(), config.dim()};
    }

    /** The token grid of {@code latent}, after checking it and the conditioning against this model. */
    TokenGrid checkInputs(Tensor latent, WanConditioning conditioning) {
        if (latent == null) {
            throw new IllegalArgumentException("latent must not be null");
        }
        if (latent.backend() != backend) {
            throw new IllegalArgumentException("latent lives on " + latent.backend().name() + ", the model on "
                    + backend.name());
        }
        if (latent.dtype() != DType.F32 || latent.rank() != 4) {
            throw new IllegalArgumentException("latent must be F32 [channels, frames, height, width], got " + latent);
        }
        if (latent.dim(0) != config.inDim()) {
            throw new IllegalArgumentException("latent must have " + config.inDim() + " channels (the input width of "
                    + "the " + config.name() + " model), got " + Arrays.toString(latent.shape()));
        }
        long frames = latent.dim(1);
        long height = latent.dim(2);
        long width = latent.dim(3);
        if (frames < 1 || height < 1 || width < 1 || frames % config.patchT() != 0 || height % config.patchH() != 0
                || width % config.patchW() != 0) {
            throw new IllegalArgumentException("latent frames, height and width " + Arrays.toString(latent.shape())
                    + " must be positive multiples of the patch (" + config.patchT() + ", " + config.patchH() + ", "
                    + config.patchW() + ")");
        }
        if (Math.max(frames, Math.max(height, width)) > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("latent is too large: " + Arrays.toString(latent.shape()));
        }
        if (conditioning == null) {
            throw new IllegalArgumentException("conditioning must not be null");
        }
        if (!conditioning.config().equals(config) || conditioning.backend() != backend) {
            throw new IllegalArgumentException("conditioning was computed for the " + conditioning.config().name()
                    + " model on " + conditioning.backend().name() + ", this is the " + config.name() + " model on "
                    + backend.name());
        }
        conditioning.e(); // throws if it is closed
        return TokenGrid.of(config, frames, height, width);
    }

    private void checkBlock(int block, String name) {
        if (block < 0 || block >= config.layers()) {
            throw new IllegalArgumentException(name + " must be in [0, " + config.layers() + ") for the "
                    + config.name() + " model, got " + block);
        }
    }

    private static void closeAll(Tensor... tensors) {
        for (Tensor tensor : tensors) {
            if (tensor != null) {
                tensor.close();
            }
        }
    }
}
