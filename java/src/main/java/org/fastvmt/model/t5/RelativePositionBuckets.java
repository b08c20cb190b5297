package org.fastvmt.model.t5;

/**
 * T5's bidirectional relative position buckets ({@code T5RelativeEmbedding._relative_position_bucket}
 * of wan/modules/t5.py with bidirectional=True; the same function as transformers'
 * {@code UMT5Attention._relative_position_bucket}).
 *
 * <p>For the relative position r = key − query: half the buckets (n = numBuckets / 2) are for
 * r ≤ 0 and half, offset by n, for r > 0. Within a half, with a = |r| and e = n / 2
 * (max_exact): a < e has its own bucket a; otherwise the bucket is
 * e + trunc(log(a / e) / log(maxDistance / e) · (n − e)), at most n − 1. The logarithm is
 * evaluated in float32 as PyTorch does (a / e and its log in float32, log(maxDistance / e) a
 * Python double rounded to float32 by the tensor op, truncation toward zero), so the bucket
 * boundaries are PyTorch's: with the XXL values (32 buckets, 128) a half's buckets 8 … 15 start at
 * |r| = 8, 12, 16, 23, 32, 46, 64 and 91 (so every |r| ≥ 91 shares bucket 15).
 *
 * @param numBuckets  buckets of both directions together (even, ≥ 4)
 * @param maxDistance distance from which every position shares the last bucket (> numBuckets / 4)
 */
public record RelativePositionBuckets(int numBuckets, int maxDistance) {

    public RelativePositionBuckets {
        check(numBuckets, maxDistance);
    }

    static void check(int numBuckets, int maxDistance) {
        if (numBuckets < 4 || numBuckets % 2 != 0) {
            throw new IllegalArgumentException("numBuckets must be even and >= 4 (two directions, each with at least"
                    + " one exact and one logarithmic bucket), got " + numBuckets);
        }
        if (maxDistance <= numBuckets / 4) {
            throw new IllegalArgumentException("maxDistance must exceed numBuckets / 4 = " + numBuckets / 4
                    + " (the last exact distance), got " + maxDistance);
        }
    }

    /** The bucket of relative position {@code relative} = key position − query position. */
    public int bucket(int relative) {
        int half = numBuckets / 2;
        int bucket = relative > 0 ? half : 0;
        long distance = Math.abs((long) relative);
        int maxExact = half / 2;
        if (distance < maxExact) {
            return bucket + (int) distance;
        }
        float ratio = (float) distance / (float) maxExact;
        float logRatio = (float) Math.log(ratio);
        float logRange = (float) Math.log((double) maxDistance / maxExact);
        float scaled = logRatio / logRange * (float) (half - maxExact);
        long large = maxExact + (long) scaled;
        return bucket + (int) Math.min(large, half - 1);
    }

    /**
     * The bias of {@code fvmt_relative_attention_forward} for {@code qTokens} queries and
     * {@code kvTokens} keys: [heads, qTokens + kvTokens − 1], element (h, r + qTokens − 1) =
     * table[bucket(r), h] for r = key − query in [−(qTokens − 1), kvTokens − 1].
     *
     * @param table the position embedding [numBuckets, heads] (row-major), as stored
     */
    public float[] relativeBias(float[] table, int heads, int qTokens, int kvTokens) {
        if (heads < 1 || table.length != (long) numBuckets * heads) {
            throw new IllegalArgumentException("table must hold numBuckets · heads = " + numBuckets + " · " + heads
                    + " values, got " + table.length);
        }
        if (qTokens < 1 || kvTokens < 1) {
            throw new IllegalArgumentException("qTokens and kvTokens must be >= 1, got " + qTokens + ", " + kvTokens);
        }
        int positions = Math.toIntExact((long) qTokens + kvTokens - 1);
        float[] bias = new float[Math.multiplyExact(heads, positions)];
        for (int p = 0; p < positions; p++) {
            int b = bucket(p - (qTokens - 1));
            for (int h = 0; h < heads; h++) {
                bias[h * positions + p] = table[b * heads + h];
            }
        }
        return bias;
    }
}
