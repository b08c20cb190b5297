package org.fastvmt.model.wan;

/**
 * The grid of patch tokens of one latent: {@code frames × height × width} tokens in (f, r, c)
 * order, token (f·height + r)·width + c (Wan's {@code grid_sizes}).
 */
public record TokenGrid(int frames, int height, int width) {

    public TokenGrid {
        if (frames < 1 || height < 1 || width < 1) {
            throw new IllegalArgumentException("a token grid needs positive sizes, got " + frames + "×" + height
                    + "×" + width);
        }
    }

    /** The grid of a latent [channels, frames, height, width] cut into the patches of {@code config}. */
    public static TokenGrid of(WanConfig config, long frames, long height, long width) {
        return new TokenGrid(Math.toIntExact(frames / config.patchT()), Math.toIntExact(height / config.patchH()),
                Math.toIntExact(width / config.patchW()));
    }

    /** frames · height · width. */
    public int tokens() {
        return Math.multiplyExact(Math.multiplyExact(frames, height), width);
    }

    @Override
    public String toString() {
        return frames + "×" + height + "×" + width + " tokens";
    }
}
