package org.fastvmt.motion;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Set;
import java.util.SplittableRandom;

import org.fastvmt.backend.Backend;
import org.fastvmt.reference.MotionReference;
import org.fastvmt.reference.MotionReference.Shape;
import org.fastvmt.reference.MotionReference.WindowedResult;
import org.fastvmt.reference.TestData;
import org.fastvmt.tensor.DType;
import org.fastvmt.tensor.Tensor;

/** Helpers shared by the motion tests: windows the test chooses, and origin comparison. */
final class MotionFixtures {

    /**
     * A pass-1 expected coordinate within this distance of k + 0.5 may round either way in fp32
     * (or bf16), so there the backend's origin is accepted when it is the other rounding.
     */
    static final double ROUNDING_MARGIN = 1e-3;

    private MotionFixtures() {
    }

    /** Valid random window origins for every pair and tile ((0, 0) for pairs with i == j). */
    static int[] randomOrigins(SplittableRandom random, Shape s, AmfParams params, FramePairs pairs) {
        int tiles = AmfParams.tilesAlong(s.height(), params.tileHeight())
                * AmfParams.tilesAlong(s.width(), params.tileWidth());
        int maxRow = s.height() - MotionReference.windowExtent(params.window(), s.height());
        int maxCol = s.width() - MotionReference.windowExtent(params.window(), s.width());
        int[] origins = new int[pairs.count() * tiles * 2];
        for (int p = 0; p < pairs.count(); p++) {
            if (pairs.queryFrame(p) == pairs.keyFrame(p)) {
                continue;
            }
            for (int t = 0; t < tiles; t++) {
                origins[2 * (p * tiles + t)] = random.nextInt(maxRow + 1);
                origins[2 * (p * tiles + t) + 1] = random.nextInt(maxCol + 1);
            }
        }
        return origins;
    }

    /** A flow whose windows are {@code origins} (Δ zero): the backward and tracking loss read only the windows. */
    static WindowedFlow flowWithOrigins(Backend backend, Shape s, AmfParams params, FramePairs pairs, int[] origins) {
        int tilesH = AmfParams.tilesAlong(s.height(), params.tileHeight());
        int tilesW = AmfParams.tilesAlong(s.width(), params.tileWidth());
        return new WindowedFlow(Tensor.zeros(backend, DType.F32, pairs.count(), s.height(), s.width(), 2),
                Tensor.ofInts(backend, origins, pairs.count(), tilesH, tilesW, 2),
                Tensor.ofInts(backend, pairs.flat(), pairs.count(), 2), pairs, params,
                new QkShape(s.frames(), s.height(), s.width(), s.channels()));
    }

    /**
     * The origins to evaluate the reference in: the reference's own, except where the backend
     * chose differently because the pass-1 position sits on a rounding boundary; there the
     * backend's origin must be the window of the other rounding, and it is used. Anywhere else a
     * difference fails the test, as does a non-zero origin of a pair with i == j.
     */
    static int[] reconcileOrigins(WindowedResult reference, int[] got, Shape s, AmfParams params) {
        int[] expected = reference.origins();
        assertEquals(expected.length, got.length, "window_origins length");
        int[] used = expected.clone();
        for (int n = 0; n < expected.length; n++) {
            if (got[n] == expected[n]) {
                continue;
            }
            double position = reference.centreExpected()[n];
            String where = "window_origins[" + n / 2 + "]." + (n % 2 == 0 ? "row0" : "col0");
            assertTrue(!Double.isNaN(position), where + " of a pair with i == j must be 0, got " + got[n]);
            double fraction = position - Math.floor(position);
            assertTrue(Math.abs(fraction - 0.5) <= ROUNDING_MARGIN, where + ": expected " + expected[n] + ", got "
                    + got[n] + " (the pass-1 expected position " + position + " is not near a rounding boundary)");
            int extent = n % 2 == 0 ? s.height() : s.width();
            double boundary = Math.floor(position) + 0.5;
            Set<Integer> eitherRounding = Set.of(
                    MotionReference.windowStart(boundary - 0.25, extent, params.window()),
                    MotionReference.windowStart(boundary + 0.25, extent, params.window()));
            assertTrue(eitherRounding.contains(got[n]), where + ": " + got[n] + " is neither rounding of "
                    + position + " (" + eitherRounding + ")");
            used[n] = got[n];
        }
        return used;
    }

    /** Uploads {@code data} as a [F, H, W, C] tensor of {@code dtype}. */
    static Tensor qkTensor(Backend backend, DType dtype, float[] data, Shape s) {
        return Tensor.of(backend, dtype, data, s.dims());
    }

    /** The values a tensor of {@code dtype} made from {@code data} holds, widened to double. */
    static double[] heldValues(DType dtype, float[] data) {
        return TestData.toDouble(dtype == DType.BF16 ? TestData.roundToBf16(data) : data);
    }
}
