package org.fastvmt.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.fastvmt.model.wan.WanConfig;
import org.junit.jupiter.api.Test;

/** The DiT FLOP accounting against hand counts. */
class DitFlopsTest {

    /**
     * One Wan2.1-1.3B block at one latent frame (1560 tokens) and 512 text tokens: token GEMMs
     * 2·1560·1536·(6·1536 + 2·8960) = 130.04 GFLOP, context GEMMs 2·512·1536·3072 = 4.83, self-
     * attention 4·1560²·1536 = 14.95, cross-attention 4·1560·512·1536 = 4.91.
     */
    @Test
    void oneWanBlockAtOneFrame() {
        WanConfig wan = WanConfig.WAN_1_3B;
        assertEquals(130_044_395_520.0 + 4_831_838_208.0 + 14_952_038_400.0 + 4_907_335_680.0,
                DitFlops.blockForward(wan, 1560, 512));
        assertEquals(130_044_395_520.0 + 2.5 * 14_952_038_400.0 + 2.5 * 4_907_335_680.0,
                DitFlops.blockBackward(wan, 1560, 512));
    }

    /** The attention counts: 4·q·kv·width forward, 2.5 times that backward (the scores are recomputed). */
    @Test
    void attention() {
        assertEquals(4.0 * 1560 * 1560 * 1536, DitFlops.attentionForward(1560, 1560, 1536));
        assertEquals(10.0 * 1560 * 512 * 1536, DitFlops.attentionBackward(1560, 512, 1536));
        assertEquals(4.0 * 7 * 3 * 2, DitFlops.attentionForward(7, 3, 2));
    }
}
