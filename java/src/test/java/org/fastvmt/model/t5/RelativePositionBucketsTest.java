package org.fastvmt.model.t5;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.fastvmt.reference.TextEncoderReference;
import org.junit.jupiter.api.Test;

/**
 * T5's bidirectional buckets against values computed by hand from t5.py's formula
 * (key − query = r; half = 16, max_exact = 8 for umT5-XXL: bucket = 8 + trunc(8·log(|r|/8)/log 16)
 * for |r| ≥ 8, capped at 15, plus 16 when r > 0), and the bias layout the attention kernel reads.
 */
class RelativePositionBucketsTest {

    @Test
    void xxlBucketsByHand() {
        RelativePositionBuckets b = UmT5Config.XXL.buckets();
        // Exact buckets: |r| < 8. Keys before the query (r < 0) use 0..15, keys after it 16..31.
        assertEquals(0, b.bucket(0));
        assertEquals(1, b.bucket(-1));
        assertEquals(17, b.bucket(1));
        assertEquals(7, b.bucket(-7));
        assertEquals(23, b.bucket(7));
        // Logarithmic buckets: 8·log(|r|/8)/log 16 = 2·log2(|r|/8): 11 → 0.92, 12 → 1.17, 16 → 2 exactly,
        // 22 → 2.92, 23 → 3.05, 32 → 4 exactly, 45 → 4.98, 46 → 5.05, 64 → 6 exactly, 90 → 6.98, 91 → 7.02.
        int[][] cases = {{8, 8}, {11, 8}, {12, 9}, {15, 9}, {16, 10}, {22, 10}, {23, 11}, {31, 11}, {32, 12},
            {45, 12}, {46, 13}, {63, 13}, {64, 14}, {90, 14}, {91, 15}, {127, 15}, {128, 15}, {100000, 15}};
        for (int[] c : cases) {
            assertEquals(c[1], b.bucket(-c[0]), "r = -" + c[0]);
            assertEquals(16 + c[1], b.bucket(c[0]), "r = " + c[0]);
        }
        assertEquals(31, b.bucket(Integer.MAX_VALUE));
        assertEquals(15, b.bucket(Integer.MIN_VALUE));
    }

    @Test
    void tinyBucketsByHandAndTheReferenceAgree() {
        // 8 buckets, max distance 16: half 4, max_exact 2; 2·log(|r|/2)/log 8 ≥ 1 from |r| = 2·√8 ≈ 5.66.
        RelativePositionBuckets b = UmT5Config.TINY.buckets();
        int[][] cases = {{0, 0}, {-1, 1}, {1, 5}, {-2, 2}, {2, 6}, {-5, 2}, {5, 6}, {-6, 3}, {6, 7}, {-15, 3},
            {16, 7}, {-1000, 3}};
        for (int[] c : cases) {
            assertEquals(c[1], b.bucket(c[0]), "r = " + c[0]);
        }
        for (RelativePositionBuckets buckets : new RelativePositionBuckets[] {b, UmT5Config.XXL.buckets(),
            new RelativePositionBuckets(6, 5), new RelativePositionBuckets(64, 300)}) {
            for (int r = -700; r <= 700; r++) {
                assertEquals(TextEncoderReference.bucket(r, buckets.numBuckets(), buckets.maxDistance()),
                        buckets.bucket(r), buckets + ", r = " + r);
            }
        }
    }

    @Test
    void relativeBiasLaysOutTheTablePerHeadAndPosition() {
        RelativePositionBuckets b = UmT5Config.TINY.buckets();
        int heads = 2;
        float[] table = new float[8 * heads];
        for (int bucket = 0; bucket < 8; bucket++) {
            table[bucket * heads] = bucket;          // head 0: the bucket
            table[bucket * heads + 1] = -10 * bucket; // head 1: scaled
        }
        // 2 queries, 3 keys: positions r = -1, 0, 1, 2.
        float[] bias = b.relativeBias(table, heads, 2, 3);
        assertArrayEquals(new float[] {1, 0, 5, 6, -10, 0, -50, -60}, bias);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> b.relativeBias(new float[5], heads, 2, 3));
        assertTrue(e.getMessage().contains("table must hold"), e.getMessage());
    }

    @Test
    void badParametersAreRefused() {
        assertTrue(assertThrows(IllegalArgumentException.class, () -> new RelativePositionBuckets(7, 128))
                .getMessage().contains("numBuckets"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> new RelativePositionBuckets(32, 8))
                .getMessage().contains("maxDistance"));
    }
}
