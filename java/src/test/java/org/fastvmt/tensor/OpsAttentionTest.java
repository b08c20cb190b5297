package org.fastvmt.tensor;

import static org.fastvmt.tensor.OpRun.assertClose;

import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import org.fastvmt.backend.Backend;
import org.fastvmt.backend.Device;
import org.fastvmt.reference.DitOpsReference;
import org.fastvmt.reference.DitOpsReference.AttentionGradients;
import org.fastvmt.reference.DitOpsReference.AttentionShape;
import org.fastvmt.reference.OpenBackends;
import org.fastvmt.reference.TestData;
import org.fastvmt.reference.Tolerance;
import org.fastvmt.tensor.OpRun.Input;
import org.fastvmt.tensor.OpRun.Result;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * {@link Ops#attention} on every backend against {@link DitOpsReference#attention}: out, dq, dk
 * and dv after {@link Graph#backward}, over one query, one key, more or fewer keys than queries
 * (cross-attention), several tiles of queries and keys with ragged ends, head dimensions from 2 to
 * Wan's 128, one to four heads, and scores large enough that a softmax without its running
 * maximum would overflow fp32.
 */
class OpsAttentionTest {

    /**
     * fp32 online softmax and dot products of at most 128 terms, sums over at most 131 keys;
     * the backward adds the row term Σ dout·out and one more product.
     */
    private static final Tolerance F32 = new Tolerance(2e-5, 2e-4);
    /**
     * Scores of ±100: an fp32 score carries an error of ~100·2^-24·√d, which the probability
     * (e^score) turns into a relative error of ~1e-5; gradients are products of such terms.
     */
    private static final Tolerance LARGE_SCORES = new Tolerance(1e-4, 1e-3);

    private static final OpenBackends BACKENDS = new OpenBackends();

    @AfterAll
    static void closeBackends() {
        BACKENDS.close();
    }

    /** q, k, v ~ N(0, std²). */
    record AttentionCase(String name, AttentionShape shape, double std) {
        @Override
        public String toString() {
            return name + " (" + shape + (std != 1 ? ", std " + std : "") + ")";
        }
    }

    private static final List<AttentionCase> CASES = List.of(
            new AttentionCase("one query, one key", new AttentionShape(1, 1, 1, 4), 1),
            new AttentionCase("one query", new AttentionShape(1, 7, 2, 8), 1),
            new AttentionCase("one key", new AttentionShape(6, 1, 2, 8), 1),
            new AttentionCase("head_dim 2", new AttentionShape(3, 4, 4, 2), 1),
            new AttentionCase("more keys", new AttentionShape(5, 9, 3, 16), 1),
            new AttentionCase("fewer keys", new AttentionShape(9, 5, 1, 32), 1),
            new AttentionCase("odd tokens", new AttentionShape(17, 17, 2, 8), 1),
            new AttentionCase("many keys", new AttentionShape(3, 33, 2, 64), 1),
            // Past the tiles of the kernels (cpu: 72/96 queries, 128/48 keys; cuda: 32 or 64 rows),
            // with ragged last tiles.
            new AttentionCase("several tiles", new AttentionShape(150, 131, 1, 16), 1),
            new AttentionCase("several query tiles", new AttentionShape(129, 5, 2, 4), 1),
            new AttentionCase("head_dim 40", new AttentionShape(5, 7, 2, 40), 1),
            new AttentionCase("head_dim 96", new AttentionShape(6, 9, 1, 96), 1),
            new AttentionCase("Wan's head_dim", new AttentionShape(4, 6, 1, 128), 1),
            new AttentionCase("Wan's head_dim, 2 heads", new AttentionShape(7, 3, 2, 128), 1),
            // The CUDA kernels' widest bucket (129..256) and its limit.
            new AttentionCase("head_dim 200", new AttentionShape(5, 6, 1, 200), 1),
            new AttentionCase("head_dim 256", new AttentionShape(3, 4, 2, 256), 1));

    private static final AttentionCase LARGE = new AttentionCase("large scores", new AttentionShape(4, 8, 2, 32),
            6);

    static Stream<Arguments> cases() {
        return OpenBackends.onEveryDevice(CASES);
    }

    @ParameterizedTest(name = "{0}: {1}")
    @MethodSource("cases")
    void attentionMatchesTheReference(Device device, AttentionCase c) {
        check(BACKENDS.get(device), device, c, F32);
    }

    /** The scores reach ±100 (e^100 is not an fp32): only the running maximum keeps this finite. */
    @ParameterizedTest(name = "{0}")
    @MethodSource("org.fastvmt.reference.OpenBackends#devices")
    void largeScoresStayFinite(Device device) {
        check(BACKENDS.get(device), device, LARGE, LARGE_SCORES);
    }

    private static void check(Backend backend, Device device, AttentionCase c, Tolerance tolerance) {
        AttentionShape s = c.shape();
        SplittableRandom random = new SplittableRandom(c.toString().hashCode());
        Input q = Input.trained("q", TestData.normal(random, s.qTokens() * s.width(), c.std()), s.qTokens(),
                s.width());
        Input k = Input.trained("k", TestData.normal(random, s.kvTokens() * s.width(), c.std()), s.kvTokens(),
                s.width());
        Input v = Input.trained("v", TestData.normal(random, s.kvTokens() * s.width(), 1), s.kvTokens(), s.width());

        Result got = OpRun.run(backend, random, (ops, t) -> ops.attention(t[0], t[1], t[2], s.heads()), q, k, v);

        String where = device + " attention " + c + ": ";
        assertClose(tolerance, where + "out", DitOpsReference.attention(q.held(), k.held(), v.held(), s),
                got.output());
        AttentionGradients ref = DitOpsReference.attentionBackward(q.held(), k.held(), v.held(), got.upstream(), s);
        assertClose(tolerance, where + "dq", ref.dq(), got.gradient(0));
        assertClose(tolerance, where + "dk", ref.dk(), got.gradient(1));
        assertClose(tolerance, where + "dv", ref.dv(), got.gradient(2));
    }

    /**
     * Cross-attention to frozen text (k, v need no gradient) and attention from a frozen query
     * (only k and v train): the kernel writes all three gradients, Ops keeps the wanted ones.
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("org.fastvmt.reference.OpenBackends#devices")
    void onlyWantedGradientsArrive(Device device) {
        Backend backend = BACKENDS.get(device);
        AttentionShape s = new AttentionShape(5, 7, 2, 8);
        SplittableRandom random = new SplittableRandom(21);
        float[] qValues = TestData.normal(random, s.qTokens() * s.width(), 1);
        float[] kValues = TestData.normal(random, s.kvTokens() * s.width(), 1);
        float[] vValues = TestData.normal(random, s.kvTokens() * s.width(), 1);

        Input q = Input.trained("q", qValues, s.qTokens(), s.width());
        Input k = Input.constant("k", kValues, s.kvTokens(), s.width());
        Input v = Input.constant("v", vValues, s.kvTokens(), s.width());
        Result cross = OpRun.run(backend, random, (ops, t) -> ops.attention(t[0], t[1], t[2], s.heads()), q, k, v);
        assertClose(F32, device + ": dq with frozen k and v",
                DitOpsReference.attentionBackward(q.held(), k.held(), v.held(), cross.upstream(), s).dq(),
                cross.gradient(0));

        Input frozenQ = Input.constant("q", qValues, s.qTokens(), s.width());
        Input trainedK = Input.trained("k", kValues, s.kvTokens(), s.width());
        Input trainedV = Input.trained("v", vValues, s.kvTokens(), s.width());
        Result keys = OpRun.run(backend, random, (ops, t) -> ops.attention(t[0], t[1], t[2], s.heads()), frozenQ,
                trainedK, trainedV);
        AttentionGradients ref = DitOpsReference.attentionBackward(frozenQ.held(), trainedK.held(), trainedV.held(),
                keys.upstream(), s);
        assertClose(F32, device + ": dk with a frozen q", ref.dk(), keys.gradient(1));
        assertClose(F32, device + ": dv with a frozen q", ref.dv(), keys.gradient(2));
    }

    /** Self-attention attention(x, x, x): x receives dq + dk + dv. */
    @ParameterizedTest(name = "{0}")
    @MethodSource("org.fastvmt.reference.OpenBackends#devices")
    void selfAttentionSumsTheThreeGradients(Device device) {
        Backend backend = BACKENDS.get(device);
        AttentionShape s = new AttentionShape(6, 6, 3, 4);
        SplittableRandom random = new SplittableRandom(22);
        Input x = Input.trained("x", TestData.normal(random, s.qTokens() * s.width(), 1), s.qTokens(), s.width());
        Result got = OpRun.run(backend, random, (ops, t) -> ops.attention(t[0], t[0], t[0], s.heads()), x);
        double[] held = x.held();
        assertClose(F32, device + ": attention(x, x, x)", DitOpsReference.attention(held, held, held, s),
                got.output());
        AttentionGradients ref = DitOpsReference.attentionBackward(held, held, held, got.upstream(), s);
        assertClose(F32, device + ": dq + dk + dv", DitOpsReference.add(DitOpsReference.add(ref.dq(), ref.dk()),
                ref.dv()), got.gradient(0));
    }
}
