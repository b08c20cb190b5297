package org.fastvmt.motion;

import org.fastvmt.tensor.Tensor;

/**
 * The result of a windowed AMF forward: the displacements and the search windows it chose,
 * which its backward and the tracking loss reuse. Owns its tensors.
 */
public final class WindowedFlow implements AutoCloseable {

    private final Tensor delta;
    private final Tensor windowOrigins;
    private final Tensor pairTensor;
    private final FramePairs pairs;
    private final AmfParams params;
    private final QkShape shape;

    WindowedFlow(Tensor delta, Tensor windowOrigins, Tensor pairTensor, FramePairs pairs, AmfParams params,
            QkShape shape) {
        this.delta = delta;
        this.windowOrigins = windowOrigins;
        this.pairTensor = pairTensor;
        this.pairs = pairs;
        this.params = params;
        this.shape = shape;
    }

    /** Δ, F32 [pairs, H, W, 2]: (row, column) displacement of every query token. */
    public Tensor delta() {
        return delta;
    }

    /** I32 [pairs, tilesH, tilesW, 2]: the (row, column) of each search window's top-left token. */
    public Tensor windowOrigins() {
        return windowOrigins;
    }

    public FramePairs pairs() {
        return pairs;
    }

    public AmfParams params() {
        return params;
    }

    Tensor pairTensor() {
        return pairTensor;
    }

    QkShape shape() {
        return shape;
    }

    @Override
    public void close() {
        delta.close();
        windowOrigins.close();
        pairTensor.close();
    }
}
