package org.fastvmt.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.fastvmt.backend.Backend;
import org.fastvmt.backend.Backends;
import org.fastvmt.backend.Device;
import org.fastvmt.tensor.Tensor;
import org.junit.jupiter.api.Test;

/** The two attentions the benchmark compares compute the same thing. */
class AttentionWorkloadTest {

    @Test
    void naiveAndFusedAttentionAgree() {
        try (Backend backend = Backends.open(Device.CPU);
                AttentionWorkload workload = new AttentionWorkload(backend, 37, 3, 16, 7)) {
            assertTrue(workload.hasNaive());
            try (Tensor naive = workload.naive(); Tensor fused = workload.fused()) {
                float[] expected = naive.toFloatArray();
                float[] got = fused.toFloatArray();
                assertEquals(37 * 3 * 16, got.length);
                for (int i = 0; i < got.length; i++) {
                    assertEquals(expected[i], got[i], 1e-5 + 1e-4 * Math.abs(expected[i]), "element " + i);
                }
            }
            // The first calls grow the backend's reusable workspace; later ones allocate nothing that stays.
            workload.fusedForwardBackward();
            workload.naiveForward();
            long before = backend.allocatedBytes();
            workload.fusedForwardBackward();
            workload.naiveForward();
            assertEquals(before, backend.allocatedBytes(), "the timed runs free what they allocate");
        }
    }
}
