package org.fastvmt.guidance;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

/** The gradient-reuse schedule and the learning-rate schedule of the official guidance loop. */
class StepSkippingPolicyTest {

    @Test
    void fastvmtComputesAFreshGradientEveryThirdIteration() {
        StepSkippingPolicy policy = StepSkippingPolicy.fastvmt();
        boolean[] expected = {true, false, false, true, false, false, true, false, false, true};
        for (int iteration = 0; iteration < expected.length; iteration++) {
            assertEquals(expected[iteration], policy.freshGradient(iteration), "iteration " + iteration);
        }
        assertEquals(4, policy.freshCount(10));
        assertEquals(3, policy.freshCount(9));
        assertEquals(1, policy.freshCount(1));
        assertEquals(0, policy.freshCount(0));
    }

    @Test
    void freshCountAgreesWithFreshGradientForEveryInterval() {
        for (int interval = 1; interval <= 6; interval++) {
            StepSkippingPolicy policy = new StepSkippingPolicy(interval);
            for (int iterations = 0; iterations <= 20; iterations++) {
                int counted = 0;
                for (int iteration = 0; iteration < iterations; iteration++) {
                    counted += policy.freshGradient(iteration) ? 1 : 0;
                }
                assertEquals(counted, policy.freshCount(iterations), "interval " + interval + ", " + iterations);
            }
        }
    }

    @Test
    void ditflowComputesEveryGradient() {
        StepSkippingPolicy policy = StepSkippingPolicy.everyIteration();
        for (int iteration = 0; iteration < 12; iteration++) {
            assertEquals(true, policy.freshGradient(iteration));
        }
        assertEquals(12, policy.freshCount(12));
    }

    @Test
    void badSettingsAreRefused() {
        assertThrows(IllegalArgumentException.class, () -> new StepSkippingPolicy(0));
        assertThrows(IllegalArgumentException.class, () -> StepSkippingPolicy.fastvmt().freshGradient(-1));
        assertThrows(IllegalArgumentException.class, () -> new LearningRateSchedule(0f, 0.002f, 10));
        assertThrows(IllegalArgumentException.class, () -> new LearningRateSchedule(0.003f, 0.002f, 0));
        assertThrows(IllegalArgumentException.class, () -> LearningRateSchedule.OFFICIAL.at(10));
        assertThrows(IllegalArgumentException.class, () -> new AdamWConfig(1f, 0.999f, 1e-8f, 0f));
        assertThrows(IllegalArgumentException.class, () -> new AdamWConfig(0.9f, 0.999f, 0f, 0f));
    }

    @Test
    void theLearningRateFallsLinearlyFromInitialTowardLast() {
        // 0.003 − 0.001·n/10 for n = 0..9
        double[] expected = {0.003, 0.0029, 0.0028, 0.0027, 0.0026, 0.0025, 0.0024, 0.0023, 0.0022, 0.0021};
        for (int n = 0; n < expected.length; n++) {
            assertEquals(expected[n], LearningRateSchedule.OFFICIAL.at(n), 1e-9, "iteration " + n);
        }
    }
}
