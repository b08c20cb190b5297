package org.fastvmt.motion;

/**
 * Parameters of attention motion flow. Scores are
 * {@code temperature * (q . k) / (heads * sqrt(channels / heads))}: the temperature-scaled
 * mean over heads of per-head scaled dot products.
 *
 * @param heads        attention heads the channels are split into (12 for Wan2.1-1.3B)
 * @param temperature  τ, multiplies scores before the softmax
 * @param tileHeight   rows of a query tile sharing one search window
 * @param tileWidth    columns of a query tile
 * @param window       side l of the square search window; odd
 */
public record AmfParams(int heads, float temperature, int tileHeight, int tileWidth, int window) {

    /** τ = 1: what the official guidance_step passes to compute_tile_AMF. */
    public static final float DEFAULT_TEMPERATURE = 1.0f;
    /** Tile 3 × 4: compute_tile_AMF(tile=(3, 4)) in the official code. */
    public static final int DEFAULT_TILE_HEIGHT = 3;
    public static final int DEFAULT_TILE_WIDTH = 4;
    /** l = 21: compute_tile_AMF(l=21) in the official code. */
    public static final int DEFAULT_WINDOW = 21;

    public AmfParams {
        if (heads < 1) {
            throw new IllegalArgumentException("heads must be >= 1, got " + heads);
        }
        if (!(Float.isFinite(temperature) && temperature > 0)) {
            throw new IllegalArgumentException("temperature must be finite and > 0, got " + temperature);
        }
        if (tileHeight < 1) {
            throw new IllegalArgumentException("tileHeight must be >= 1, got " + tileHeight);
        }
        if (tileWidth < 1) {
            throw new IllegalArgumentException("tileWidth must be >= 1, got " + tileWidth);
        }
        if (window < 1 || window % 2 == 0) {
            throw new IllegalArgumentException("window must be odd and >= 1, got " + window);
        }
    }

    /** The official FastVMT settings for Q/K with {@code heads} heads. */
    public static AmfParams defaults(int heads) {
        return new AmfParams(heads, DEFAULT_TEMPERATURE, DEFAULT_TILE_HEIGHT, DEFAULT_TILE_WIDTH, DEFAULT_WINDOW);
    }

    public AmfParams withTemperature(float newTemperature) {
        return new AmfParams(heads, newTemperature, tileHeight, tileWidth, window);
    }

    public AmfParams withWindow(int newWindow) {
        return new AmfParams(heads, temperature, tileHeight, tileWidth, newWindow);
    }

    public AmfParams withTile(int newTileHeight, int newTileWidth) {
        return new AmfParams(heads, temperature, newTileHeight, newTileWidth, window);
    }

    /** Tiles along an axis of {@code extent} tokens (the last one may be partial). */
    public static int tilesAlong(int extent, int tile) {
        return (extent + tile - 1) / tile;
    }
}
