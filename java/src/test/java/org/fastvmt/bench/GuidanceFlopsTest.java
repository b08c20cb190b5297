package org.fastvmt.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** The FLOP expectation of bench guidance. */
class GuidanceFlopsTest {

    @Test
    void freshGradientsAreTheIterationsAtMultiplesOfTheInterval() {
        assertEquals(4, GuidanceFlops.freshGradients(10, 3)); // 0, 3, 6, 9
        assertEquals(10, GuidanceFlops.freshGradients(10, 1));
        assertEquals(1, GuidanceFlops.freshGradients(3, 3));
        assertEquals(2, GuidanceFlops.freshGradients(4, 3));
    }

    @Test
    void onTheSmallConfigTheDitDominatesAndTheRatioIsNear2point5() {
        GuidanceBenchShape small = GuidanceBenchShape.SMALL;
        assertEquals(14_040, small.tokens());
        double fastvmt = GuidanceFlops.guidanceStep(small, true, 10, 3);
        double ditflow = GuidanceFlops.guidanceStep(small, false, 10, 1);
        // Step skipping alone (full AMF, interval 3) against fastvmt: the windowed AMF saves only a
        // little here, because the DiT dominates.
        double skippingOnly = GuidanceFlops.guidanceStep(small, false, 10, 3);
        assertTrue(skippingOnly > fastvmt && skippingOnly < 1.2 * fastvmt, skippingOnly / fastvmt + "");
        // 10 against 4 fresh gradients, diluted by the reference forward (the same in both) and raised
        // a little by the windowed AMF: just above 2.5.
        double ratio = ditflow / fastvmt;
        assertTrue(ratio > 2.5 && ratio < 2.8, "ratio " + ratio);
    }
}
