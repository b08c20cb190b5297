package org.fastvmt.reference;

import java.util.Arrays;

import org.fastvmt.motion.AmfParams;

/**
 * The math of {@code native/include/fastvmt.h}, in plain Java and double precision, written to
 * be read against the header line by line and never for speed. Every kernel test compares a
 * backend with this class; {@code MotionReferenceTest} ties this class to central finite
 * differences and to cases whose answer is known by hand.
 *
 * <p>Layouts are the header's: Q and K are [F, H, W, C] (element (f, r, c, ch) at
 * ((f*H + r)*W + c)*C + ch), Δ is [pairs, H, W, 2] = (d_row, d_col), {@code pairs} is the flat
 * list (i0, j0, i1, j1, ...) and window origins are [pairs, tilesH, tilesW, 2] = (row0, col0).
 * Only the heads, temperature, tile and window of an {@link AmfParams} are read.
 */
public final class MotionReference {

    private MotionReference() {
    }

    /** The [F, H, W, C] geometry shared by Q and K. */
    public record Shape(int frames, int height, int width, int channels) {

        public int tokensPerFrame() {
            return height * width;
        }

        public int elementCount() {
            return frames * height * width * channels;
        }

        /** Offset of channel 0 of token (r, c) of frame f. */
        public int token(int f, int r, int c) {
            return ((f * height + r) * width + c) * channels;
        }

        public long[] dims() {
            return new long[] {frames, height, width, channels};
        }
    }

    /** dL/dQ and dL/dK, both [F, H, W, C]. */
    public record Gradients(double[] dq, double[] dk) {
    }

    /**
     * A windowed forward: Δ [pairs, H, W, 2], the window origins [pairs, tilesH, tilesW, 2], and
     * the pass-1 expected position (er, ec) of every tile's centre token, same layout as the
     * origins (NaN for pairs with i == j, which have no pass 1). A test needs the expected
     * positions to see when floor(x + 0.5) sits on a knife edge.
     */
    public record WindowedResult(double[] delta, int[] origins, double[] centreExpected) {
    }

    /** The key block one query attends to: rows [row0, row0+rows), cols [col0, col0+cols) of frame j. */
    private record KeyBlock(int row0, int col0, int rows, int cols) {
    }

    /** Chooses the key block of query token (r, c) of pair p. */
    private interface KeyBlockRule {
        KeyBlock of(int pair, int r, int c);
    }

    // ------------------------------------------------------------------ scores and softmax

    /** temperature / (heads * sqrt(C / heads)): score(p, q) = scale * Q_i[p] . K_j[q]. */
    public static double scoreScale(Shape s, AmfParams params) {
        int headDim = s.channels() / params.heads();
        return params.temperature() / (params.heads() * Math.sqrt(headDim));
    }

    private static double dot(double[] a, int aOffset, double[] b, int bOffset, int n) {
        double sum = 0;
        for (int ch = 0; ch < n; ch++) {
            sum += a[aOffset + ch] * b[bOffset + ch];
        }
        return sum;
    }

    /**
     * P(q) = softmax over the block of score(p, q) for query token (r, c) of frame i and keys of
     * frame j; returned row-major over the block.
     */
    private static double[] softmax(double[] q, double[] k, Shape s, double scale, int i, int r, int c, int j,
            KeyBlock block) {
        double[] p = new double[block.rows() * block.cols()];
        double max = Double.NEGATIVE_INFINITY;
        for (int a = 0; a < block.rows(); a++) {
            for (int b = 0; b < block.cols(); b++) {
                double score = scale * dot(q, s.token(i, r, c), k,
                        s.token(j, block.row0() + a, block.col0() + b), s.channels());
                p[a * block.cols() + b] = score;
                max = Math.max(max, score);
            }
        }
        double sum = 0;
        for (int n = 0; n < p.length; n++) {
            p[n] = Math.exp(p[n] - max);
            sum += p[n];
        }
        for (int n = 0; n < p.length; n++) {
            p[n] /= sum;
        }
        return p;
    }

    /** Σ_q P(q) · (row(q), col(q)) in frame coordinates. */
    private static double[] expectedPosition(double[] p, KeyBlock block) {
        double row = 0;
        double col = 0;
        for (int a = 0; a < block.rows(); a++) {
            for (int b = 0; b < block.cols(); b++) {
                row += p[a * block.cols() + b] * (block.row0() + a);
                col += p[a * block.cols() + b] * (block.col0() + b);
            }
        }
        return new double[] {row, col};
    }

    // --------------------------------------------------------- AMF forward and backward, any blocks

    private static double[] amfForward(double[] q, double[] k, Shape s, AmfParams params, int[] pairs,
            KeyBlockRule blocks) {
        int pairCount = pairs.length / 2;
        double scale = scoreScale(s, params);
        double[] delta = new double[pairCount * s.tokensPerFrame() * 2];
        for (int p = 0; p < pairCount; p++) {
            int i = pairs[2 * p];
            int j = pairs[2 * p + 1];
            for (int r = 0; r < s.height(); r++) {
                for (int c = 0; c < s.width(); c++) {
                    KeyBlock block = blocks.of(p, r, c);
                    double[] expected = expectedPosition(softmax(q, k, s, scale, i, r, c, j, block), block);
                    int out = 2 * ((p * s.height() + r) * s.width() + c);
                    delta[out] = expected[0] - r;
                    delta[out + 1] = expected[1] - c;
                }
            }
        }
        return delta;
    }

    /**
     * With E = Σ P(q) pos(q) and g = dL/dΔ = dL/dE: dL/dscore(q) = P(q) · g · (pos(q) − E), then
     * dscore/dQ_i[p] = scale · K_j[q] and dscore/dK_j[q] = scale · Q_i[p].
     */
    private static Gradients amfBackward(double[] q, double[] k, Shape s, AmfParams params, int[] pairs,
            KeyBlockRule blocks, double[] dDelta) {
        int pairCount = pairs.length / 2;
        int channels = s.channels();
        double scale = scoreScale(s, params);
        double[] dq = new double[s.elementCount()];
        double[] dk = new double[s.elementCount()];
        for (int p = 0; p < pairCount; p++) {
            int i = pairs[2 * p];
            int j = pairs[2 * p + 1];
            for (int r = 0; r < s.height(); r++) {
                for (int c = 0; c < s.width(); c++) {
                    KeyBlock block = blocks.of(p, r, c);
                    double[] prob = softmax(q, k, s, scale, i, r, c, j, block);
                    double[] expected = expectedPosition(prob, block);
                    int out = 2 * ((p * s.height() + r) * s.width() + c);
                    double gRow = dDelta[out];
                    double gCol = dDelta[out + 1];
                    int queryOffset = s.token(i, r, c);
                    for (int a = 0; a < block.rows(); a++) {
                        for (int b = 0; b < block.cols(); b++) {
                            int keyRow = block.row0() + a;
                            int keyCol = block.col0() + b;
                            double dScore = prob[a * block.cols() + b]
                                    * (gRow * (keyRow - expected[0]) + gCol * (keyCol - expected[1]));
                            int keyOffset = s.token(j, keyRow, keyCol);
                            for (int ch = 0; ch < channels; ch++) {
                                dq[queryOffset + ch] += scale * dScore * k[keyOffset + ch];
                                dk[keyOffset + ch] += scale * dScore * q[queryOffset + ch];
                            }
                        }
                    }
                }
            }
        }
        return new Gradients(dq, dk);
    }

    // ------------------------------------------------------------------------------- full AMF

    /** fvmt_amf_full_forward: Δ [pairs, H, W, 2], every query attending to all of frame j. */
    public static double[] fullForward(double[] q, double[] k, Shape s, AmfParams params, int[] pairs) {
        KeyBlock whole = new KeyBlock(0, 0, s.height(), s.width());
        return amfForward(q, k, s, params, pairs, (p, r, c) -> whole);
    }

    /** fvmt_amf_full_backward: dL/dQ and dL/dK given dL/dΔ. */
    public static Gradients fullBackward(double[] q, double[] k, Shape s, AmfParams params, int[] pairs,
            double[] dDelta) {
        KeyBlock whole = new KeyBlock(0, 0, s.height(), s.width());
        return amfBackward(q, k, s, params, pairs, (p, r, c) -> whole, dDelta);
    }

    // --------------------------------------------------------------------------- windowed AMF

    /** The window side along an axis of {@code extent} tokens: min(window, extent). */
    public static int windowExtent(int window, int extent) {
        return Math.min(window, extent);
    }

    /**
     * The origin of the window centred on the pass-1 expected coordinate {@code expected}:
     * clamp(floor(expected + 0.5) − window/2, 0, extent − min(window, extent)).
     */
    public static int windowStart(double expected, int extent, int window) {
        int centre = (int) Math.floor(expected + 0.5);
        int start = centre - window / 2;
        return Math.max(0, Math.min(start, extent - windowExtent(window, extent)));
    }

    /** The first row (or column) of tile {@code tile} along an axis. */
    private static int tileStart(int tile, int tileSize) {
        return tile * tileSize;
    }

    /** The tile's centre along an axis: start + extent/2 (integer division), extent clipped at the border. */
    public static int tileCentre(int tile, int tileSize, int extent) {
        int start = tileStart(tile, tileSize);
        int size = Math.min(tileSize, extent - start);
        return start + size / 2;
    }

    /**
     * fvmt_amf_window_forward: pass 1 (each tile's centre token attends to all of frame j; the
     * rounded expected position centres the window), then pass 2 (the tile's queries attend to
     * the window only). Pairs with i == j use the whole frame and origins (0, 0).
     */
    public static WindowedResult windowedForward(double[] q, double[] k, Shape s, AmfParams params, int[] pairs) {
        int pairCount = pairs.length / 2;
        int tilesH = AmfParams.tilesAlong(s.height(), params.tileHeight());
        int tilesW = AmfParams.tilesAlong(s.width(), params.tileWidth());
        double scale = scoreScale(s, params);
        KeyBlock whole = new KeyBlock(0, 0, s.height(), s.width());
        int[] origins = new int[pairCount * tilesH * tilesW * 2];
        double[] centreExpected = new double[origins.length];
        for (int p = 0; p < pairCount; p++) {
            int i = pairs[2 * p];
            int j = pairs[2 * p + 1];
            for (int tr = 0; tr < tilesH; tr++) {
                for (int tc = 0; tc < tilesW; tc++) {
                    int t = 2 * ((p * tilesH + tr) * tilesW + tc);
                    if (i == j) {
                        centreExpected[t] = Double.NaN;
                        centreExpected[t + 1] = Double.NaN;
                        continue;
                    }
                    int centreRow = tileCentre(tr, params.tileHeight(), s.height());
                    int centreCol = tileCentre(tc, params.tileWidth(), s.width());
                    double[] expected = expectedPosition(
                            softmax(q, k, s, scale, i, centreRow, centreCol, j, whole), whole);
                    centreExpected[t] = expected[0];
                    centreExpected[t + 1] = expected[1];
                    origins[t] = windowStart(expected[0], s.height(), params.window());
                    origins[t + 1] = windowStart(expected[1], s.width(), params.window());
                }
            }
        }
        double[] delta = windowedForward(q, k, s, params, pairs, origins);
        return new WindowedResult(delta, origins, centreExpected);
    }

    /** Pass 2 alone, in the windows given by {@code origins} (as the backward sees them). */
    public static double[] windowedForward(double[] q, double[] k, Shape s, AmfParams params, int[] pairs,
            int[] origins) {
        return amfForward(q, k, s, params, pairs, windowRule(s, params, pairs, origins));
    }

    /** fvmt_amf_window_backward: the gradient of pass 2 in the windows given by {@code origins}. */
    public static Gradients windowedBackward(double[] q, double[] k, Shape s, AmfParams params, int[] pairs,
            int[] origins, double[] dDelta) {
        return amfBackward(q, k, s, params, pairs, windowRule(s, params, pairs, origins), dDelta);
    }

    private static KeyBlockRule windowRule(Shape s, AmfParams params, int[] pairs, int[] origins) {
        int tilesH = AmfParams.tilesAlong(s.height(), params.tileHeight());
        int tilesW = AmfParams.tilesAlong(s.width(), params.tileWidth());
        int rows = windowExtent(params.window(), s.height());
        int cols = windowExtent(params.window(), s.width());
        KeyBlock whole = new KeyBlock(0, 0, s.height(), s.width());
        return (p, r, c) -> {
            if (pairs[2 * p] == pairs[2 * p + 1]) {
                return whole;
            }
            int t = 2 * ((p * tilesH + r / params.tileHeight()) * tilesW + c / params.tileWidth());
            return new KeyBlock(origins[t], origins[t + 1], rows, cols);
        };
    }

    // ----------------------------------------------------------------- corresponding-window loss

    /** L = (1 / P) Σ_p w_p Σ_{t, c} (ref − gen)²; Δs are [pairs, tokens, 2]. */
    public static double windowLoss(double[] deltaRef, double[] deltaGen, double[] weights, int tokensPerFrame) {
        int pairCount = weights.length;
        double loss = 0;
        for (int p = 0; p < pairCount; p++) {
            double squares = 0;
            for (int n = 0; n < 2 * tokensPerFrame; n++) {
                double d = deltaRef[p * 2 * tokensPerFrame + n] - deltaGen[p * 2 * tokensPerFrame + n];
                squares += d * d;
            }
            loss += weights[p] * squares;
        }
        return loss / pairCount;
    }

    /** lossGrad · dL/dΔ_gen = lossGrad · (−2 / P) · w_p · (ref − gen). */
    public static double[] windowLossGradient(double[] deltaRef, double[] deltaGen, double[] weights,
            int tokensPerFrame, double lossGrad) {
        int pairCount = weights.length;
        double[] grad = new double[deltaGen.length];
        for (int p = 0; p < pairCount; p++) {
            for (int n = 0; n < 2 * tokensPerFrame; n++) {
                int e = p * 2 * tokensPerFrame + n;
                grad[e] = lossGrad * (-2.0 / pairCount) * weights[p] * (deltaRef[e] - deltaGen[e]);
            }
        }
        return grad;
    }

    // ------------------------------------------------------------------------------ tracking loss

    /**
     * The couples of the tracking loss, per query frame i: each entry is the pair indices of
     * (i, j) and (i, j + 1), both in {@code pairs}, with i != j and i != j + 1.
     */
    private static int[][][] trackingCouples(int frames, int[] pairs) {
        int pairCount = pairs.length / 2;
        int[][] pairIndex = new int[frames][frames];
        for (int[] row : pairIndex) {
            Arrays.fill(row, -1);
        }
        for (int p = 0; p < pairCount; p++) {
            int i = pairs[2 * p];
            int j = pairs[2 * p + 1];
            if (pairIndex[i][j] >= 0) {
                throw new IllegalArgumentException("pair (" + i + ", " + j + ") is listed twice: the tracking loss "
                        + "of fastvmt.h does not say which of its windows to use");
            }
            pairIndex[i][j] = p;
        }
        int[][][] couples = new int[frames][][];
        for (int i = 0; i < frames; i++) {
            int count = 0;
            int[][] found = new int[frames][];
            for (int j = 0; j + 1 < frames; j++) {
                if (i != j && i != j + 1 && pairIndex[i][j] >= 0 && pairIndex[i][j + 1] >= 0) {
                    found[count++] = new int[] {pairIndex[i][j], pairIndex[i][j + 1]};
                }
            }
            couples[i] = Arrays.copyOf(found, count);
        }
        return couples;
    }

    /** m(i, j, t): the mean key vector of frame j over the window of pair p, tile t. */
    private static double[] windowMeanKey(double[] k, Shape s, AmfParams params, int[] pairs, int[] origins,
            int p, int tile) {
        int rows = windowExtent(params.window(), s.height());
        int cols = windowExtent(params.window(), s.width());
        int j = pairs[2 * p + 1];
        int row0 = origins[2 * tile];
        int col0 = origins[2 * tile + 1];
        double[] mean = new double[s.channels()];
        for (int a = 0; a < rows; a++) {
            for (int b = 0; b < cols; b++) {
                int offset = s.token(j, row0 + a, col0 + b);
                for (int ch = 0; ch < s.channels(); ch++) {
                    mean[ch] += k[offset + ch] / (rows * cols);
                }
            }
        }
        return mean;
    }

    private static int tilesPerFrame(Shape s, AmfParams params) {
        return AmfParams.tilesAlong(s.height(), params.tileHeight())
                * AmfParams.tilesAlong(s.width(), params.tileWidth());
    }

    /**
     * fvmt_tracking_loss_forward: L_i = mean over couples and tiles of ||m(i, j+1, t) − m(i, j, t)||,
     * L = mean of L_i over frames with a couple (0 when none has). Pairs may not repeat.
     */
    public static double trackingLoss(double[] k, Shape s, AmfParams params, int[] pairs, int[] origins) {
        int[][][] couples = trackingCouples(s.frames(), pairs);
        int tiles = tilesPerFrame(s, params);
        double total = 0;
        int framesWithCouples = 0;
        for (int i = 0; i < s.frames(); i++) {
            if (couples[i].length == 0) {
                continue;
            }
            framesWithCouples++;
            double frameSum = 0;
            for (int[] couple : couples[i]) {
                for (int t = 0; t < tiles; t++) {
                    double[] near = windowMeanKey(k, s, params, pairs, origins, couple[0], couple[0] * tiles + t);
                    double[] far = windowMeanKey(k, s, params, pairs, origins, couple[1], couple[1] * tiles + t);
                    double squares = 0;
                    for (int ch = 0; ch < s.channels(); ch++) {
                        squares += (far[ch] - near[ch]) * (far[ch] - near[ch]);
                    }
                    frameSum += Math.sqrt(squares);
                }
            }
            total += frameSum / (couples[i].length * tiles);
        }
        return framesWithCouples == 0 ? 0 : total / framesWithCouples;
    }

    /**
     * lossGrad · dL/dK of the tracking loss. With d = m(i, j+1, t) − m(i, j, t) and weight w of
     * the term: dL/dm(j+1) = w·d/||d||, dL/dm(j) = −w·d/||d|| (0 when d = 0), spread evenly over
     * the window's keys.
     */
    public static double[] trackingLossGradient(double[] k, Shape s, AmfParams params, int[] pairs, int[] origins,
            double lossGrad) {
        int[][][] couples = trackingCouples(s.frames(), pairs);
        int tiles = tilesPerFrame(s, params);
        int framesWithCouples = 0;
        for (int[][] frameCouples : couples) {
            framesWithCouples += frameCouples.length > 0 ? 1 : 0;
        }
        double[] dk = new double[s.elementCount()];
        for (int i = 0; i < s.frames(); i++) {
            for (int[] couple : couples[i]) {
                double weight = lossGrad / ((double) framesWithCouples * couples[i].length * tiles);
                for (int t = 0; t < tiles; t++) {
                    int nearTile = couple[0] * tiles + t;
                    int farTile = couple[1] * tiles + t;
                    double[] near = windowMeanKey(k, s, params, pairs, origins, couple[0], nearTile);
                    double[] far = windowMeanKey(k, s, params, pairs, origins, couple[1], farTile);
                    double squares = 0;
                    for (int ch = 0; ch < s.channels(); ch++) {
                        squares += (far[ch] - near[ch]) * (far[ch] - near[ch]);
                    }
                    double norm = Math.sqrt(squares);
                    if (norm == 0) {
                        continue;
                    }
                    double[] dMean = new double[s.channels()];
                    for (int ch = 0; ch < s.channels(); ch++) {
                        dMean[ch] = weight * (far[ch] - near[ch]) / norm;
                    }
                    spreadOverWindow(dk, dMean, 1, s, params, pairs, origins, couple[1], farTile);
                    spreadOverWindow(dk, dMean, -1, s, params, pairs, origins, couple[0], nearTile);
                }
            }
        }
        return dk;
    }

    /** dk[window of pair p, tile] += sign · dMean / (window tokens): the gradient of a mean. */
    private static void spreadOverWindow(double[] dk, double[] dMean, int sign, Shape s, AmfParams params,
            int[] pairs, int[] origins, int p, int tile) {
        int rows = windowExtent(params.window(), s.height());
        int cols = windowExtent(params.window(), s.width());
        int j = pairs[2 * p + 1];
        for (int a = 0; a < rows; a++) {
            for (int b = 0; b < cols; b++) {
                int offset = s.token(j, origins[2 * tile] + a, origins[2 * tile + 1] + b);
                for (int ch = 0; ch < s.channels(); ch++) {
                    dk[offset + ch] += sign * dMean[ch] / (rows * cols);
                }
            }
        }
    }

    // ------------------------------------------------------------------------------------ AdamW

    /** The optimiser state AdamW updates in place. */
    public record AdamWState(double[] param, double[] expAvg, double[] expAvgSq) {

        public static AdamWState of(double[] param) {
            return new AdamWState(param.clone(), new double[param.length], new double[param.length]);
        }
    }

    /**
     * fvmt_adamw_step with gradient {@code g} (PyTorch's AdamW, amsgrad off); {@code step} is
     * the 1-based count of steps including this one.
     */
    public static void adamwStep(AdamWState state, double[] g, double lr, double beta1, double beta2, double eps,
            double weightDecay, int step) {
        double[] param = state.param();
        double[] m = state.expAvg();
        double[] v = state.expAvgSq();
        double biasCorrection1 = 1 - Math.pow(beta1, step);
        double biasCorrection2 = 1 - Math.pow(beta2, step);
        for (int n = 0; n < param.length; n++) {
            param[n] *= 1 - lr * weightDecay;
            m[n] = beta1 * m[n] + (1 - beta1) * g[n];
            v[n] = beta2 * v[n] + (1 - beta2) * g[n] * g[n];
            param[n] -= (lr / biasCorrection1) * m[n] / (Math.sqrt(v[n]) / Math.sqrt(biasCorrection2) + eps);
        }
    }

    // --------------------------------------------------------------------------------- utility

    /** fvmt_count_nonfinite: how many elements are NaN or infinite. */
    public static long countNonFinite(float[] x) {
        long count = 0;
        for (float value : x) {
            if (Float.isNaN(value) || Float.isInfinite(value)) {
                count++;
            }
        }
        return count;
    }
}
