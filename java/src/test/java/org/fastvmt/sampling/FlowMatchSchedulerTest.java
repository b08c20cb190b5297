package org.fastvmt.sampling;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.fastvmt.backend.Backend;
import org.fastvmt.backend.Backends;
import org.fastvmt.backend.Device;
import org.fastvmt.tensor.Tensor;
import org.junit.jupiter.api.Test;

/** The scheduler against its formulas and the values the issue quotes. */
class FlowMatchSchedulerTest {

    /** strength 0.75, shift 7, 50 steps: σ₀ = 0.75 → 7·0.75 / (1 + 6·0.75) = 0.954545... */
    @Test
    void defaultsGiveTheKnownTimesteps() {
        double[] t = FlowMatchScheduler.defaults().timesteps();
        assertEquals(50, t.length);
        assertEquals(954.545, t[0], 1e-3);
        assertEquals(951.017, t[1], 1e-3);
        assertEquals(917.91, t[9], 1e-2);
        for (int i = 1; i < t.length; i++) {
            assertTrue(t[i] < t[i - 1], "timesteps decrease");
        }
        // The last σ before 0 is linspace's 49th point 0.015, shifted.
        assertEquals(1000 * 7 * 0.015 / (1 + 6 * 0.015), t[49], 1e-9);
    }

    @Test
    void sigmasFollowTheFormula() {
        FlowMatchScheduler scheduler = new FlowMatchScheduler(4, 3, 1);
        double[] expected = {1, 0.75, 0.5, 0.25};
        for (int i = 0; i < 4; i++) {
            double s = expected[i];
            assertEquals(3 * s / (1 + 2 * s), scheduler.sigma(i), 1e-15);
        }
        assertEquals(0, scheduler.sigma(4));
        assertEquals(1.0, scheduler.sigma(0), 1e-15, "strength 1 starts from pure noise");
    }

    @Test
    void stepAndAddNoiseOnABackend() {
        FlowMatchScheduler scheduler = new FlowMatchScheduler(5, 7, 0.75);
        try (Backend backend = Backends.open(Device.CPU);
                Tensor x = Tensor.of(backend, new float[] {1, -2, 3}, 3);
                Tensor v = Tensor.of(backend, new float[] {0.5f, 4, -1}, 3);
                Tensor noise = Tensor.of(backend, new float[] {-1, 1, 2}, 3)) {
            double s0 = scheduler.sigma(0);
            try (Tensor noisy = scheduler.addNoise(x, noise, 0)) {
                float[] got = noisy.toFloatArray();
                float[] clean = {1, -2, 3};
                float[] eps = {-1, 1, 2};
                for (int i = 0; i < 3; i++) {
                    assertEquals((1 - s0) * clean[i] + s0 * eps[i], got[i], 1e-6);
                }
            }
            scheduler.step(x, v, 4); // the last step goes to σ = 0
            double d = 0 - scheduler.sigma(4);
            assertArrayEquals(new float[] {(float) (1 + 0.5 * d), (float) (-2 + 4 * d), (float) (3 - d)},
                    x.toFloatArray(), 1e-6f);
        }
    }

    @Test
    void badArgumentsAreNamed() {
        assertTrue(assertThrows(IllegalArgumentException.class, () -> new FlowMatchScheduler(0, 7, 0.75))
                .getMessage().contains("steps"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> new FlowMatchScheduler(50, 0, 0.75))
                .getMessage().contains("shift"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> new FlowMatchScheduler(50, 7, 1.5))
                .getMessage().contains("strength"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> FlowMatchScheduler.defaults().timestep(50))
                .getMessage().contains("step index"));
        try (Backend backend = Backends.open(Device.CPU);
                Tensor x = Tensor.of(backend, new float[] {1, 2}, 2);
                Tensor v = Tensor.of(backend, new float[] {1, 2, 3}, 3)) {
            assertTrue(assertThrows(IllegalArgumentException.class, () -> FlowMatchScheduler.defaults().step(x, v, 0))
                    .getMessage().contains("velocity must have the latents' shape"));
        }
    }
}
