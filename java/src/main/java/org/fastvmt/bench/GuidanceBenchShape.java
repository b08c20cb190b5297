package org.fastvmt.bench;

import java.util.Arrays;
import java.util.Locale;

import org.fastvmt.model.wan.WanConfig;

/**
 * The model and latents of the guidance benchmark.
 *
 * @param name        how the CLI calls it (tiny, small)
 * @param config      the DiT (random weights)
 * @param latentShape the reference latents [inDim, F, H, W]
 * @param amfBlock    the block the AMF is read from
 * @param textTokens  rows of the random prompt embeddings
 */
public record GuidanceBenchShape(String name, WanConfig config, long[] latentShape, int amfBlock, int textTokens) {

    /**
     * A model where the DiT dominates the guidance, with Wan's frame: 4 blocks of width 256 (2 heads
     * x 128), FFN 1024, Wan's text width, time embedding and patch; 9 latent frames of 60 x 104
     * (30 x 52 tokens, Wan2.1's 480x832 frame), 14 040 tokens; AMF from the last block.
     */
    public static final GuidanceBenchShape SMALL = new GuidanceBenchShape("small",
            new WanConfig("small", 256, 1024, 256, 4096, 16, 16, 2, 4, 1, 2, 2, 1e-6f, 512, 10000f),
            new long[] {16, 9, 60, 104}, 3, 32);

    /** {@link WanConfig#TINY} on 5 latent frames of 6 x 8 tokens: seconds on a CPU, for tests. */
    public static final GuidanceBenchShape TINY = new GuidanceBenchShape("tiny", WanConfig.TINY,
            new long[] {WanConfig.TINY.inDim(), 5, 12, 16}, WanConfig.TINY.layers() - 1, 8);

    public GuidanceBenchShape {
        latentShape = latentShape.clone();
        if (latentShape.length != 4 || latentShape[0] != config.inDim()) {
            throw new IllegalArgumentException("latentShape must be [" + config.inDim() + ", F, H, W], got "
                    + Arrays.toString(latentShape));
        }
        if (latentShape[1] % config.patchT() != 0 || latentShape[2] % config.patchH() != 0
                || latentShape[3] % config.patchW() != 0) {
            throw new IllegalArgumentException("latentShape " + Arrays.toString(latentShape)
                    + " is not a multiple of the patch");
        }
        if (amfBlock < 0 || amfBlock >= config.layers()) {
            throw new IllegalArgumentException("amfBlock must be in [0, " + config.layers() + "), got " + amfBlock);
        }
        if (textTokens < 1 || textTokens > config.textLength()) {
            throw new IllegalArgumentException("textTokens must be in [1, " + config.textLength() + "], got "
                    + textTokens);
        }
    }

    /** tiny or small. */
    public static GuidanceBenchShape named(String name) {
        return switch (name.toLowerCase(Locale.ROOT)) {
            case "tiny" -> TINY;
            case "small" -> SMALL;
            default -> throw new IllegalArgumentException("--config must be tiny or small, got '" + name + "'");
        };
    }

    @Override
    public long[] latentShape() {
        return latentShape.clone();
    }

    /** Latent frames after patchify (F'). */
    public int tokenFrames() {
        return (int) (latentShape[1] / config.patchT());
    }

    /** Token rows per frame (H'). */
    public int tokenHeight() {
        return (int) (latentShape[2] / config.patchH());
    }

    /** Token columns per frame (W'). */
    public int tokenWidth() {
        return (int) (latentShape[3] / config.patchW());
    }

    /** Video tokens F' · H' · W'. */
    public long tokens() {
        return (long) tokenFrames() * tokenHeight() * tokenWidth();
    }

    @Override
    public boolean equals(Object other) {
        return other instanceof GuidanceBenchShape s && s.name.equals(name) && s.config.equals(config)
                && Arrays.equals(s.latentShape, latentShape) && s.amfBlock == amfBlock && s.textTokens == textTokens;
    }

    @Override
    public int hashCode() {
        return name.hashCode() * 31 + Arrays.hashCode(latentShape);
    }

    @Override
    public String toString() {
        return String.format(Locale.ROOT, "%s: Wan-architecture DiT, %d blocks, dim %d (%d heads x %d), FFN %d; "
                + "latents %s (%d frames of %dx%d tokens, %d tokens); AMF from block %d", name, config.layers(),
                config.dim(), config.heads(), config.headDim(), config.ffnDim(), Arrays.toString(latentShape),
                tokenFrames(), tokenHeight(), tokenWidth(), tokens(), amfBlock);
    }
}
