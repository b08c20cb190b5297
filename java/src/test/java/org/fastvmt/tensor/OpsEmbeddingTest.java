package org.fastvmt.tensor;

import static org.fastvmt.tensor.OpRun.assertClose;

import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import org.fastvmt.backend.Backend;
import org.fastvmt.backend.Device;
import org.fastvmt.reference.DitOpsReference;
import org.fastvmt.reference.DitOpsReference.RopeShape;
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
 * The position embeddings on every backend against {@link DitOpsReference}: Wan's 3D RoPE
 * ({@link Ops#rope3d}) over grids with frames, height or width of 1, head dimensions from 2 (one
 * frame pair) through 10 (uneven split) to Wan's 128 (22/21/21), one and several heads; and the
 * sinusoidal timestep embedding ({@link Ops#timestepEmbedding}) at Wan's timesteps, y and dx/dt.
 */
class OpsEmbeddingTest {

    /** Angles in double, one fp32 rotation per pair. */
    private static final Tolerance ROPE = new Tolerance(1e-5, 1e-4);
    /** cos and sin evaluated in double and rounded once to fp32 (|value| ≤ 1). */
    private static final Tolerance EMBEDDING = new Tolerance(1e-6, 1e-6);
    /** dt: a sum of dim/2 fp32 terms w_m·(−d·sin + d·cos), w_m ≤ 1. */
    private static final Tolerance EMBEDDING_GRADIENT = new Tolerance(1e-5, 1e-4);

    private static final OpenBackends BACKENDS = new OpenBackends();

    @AfterAll
    static void closeBackends() {
        BACKENDS.close();
    }

    record RopeCase(RopeShape shape, float theta) {
        @Override
        public String toString() {
            return shape + ", theta " + theta;
        }
    }

    private static final List<RopeCase> ROPE_CASES = List.of(
            new RopeCase(new RopeShape(1, 1, 1, 1, 2), 10000f),
            new RopeCase(new RopeShape(3, 1, 1, 1, 2), 10000f),
            new RopeCase(new RopeShape(1, 1, 1, 2, 6), 10000f),
            new RopeCase(new RopeShape(2, 3, 4, 2, 6), 10000f),
            new RopeCase(new RopeShape(3, 1, 2, 1, 8), 100f),
            new RopeCase(new RopeShape(1, 4, 1, 3, 12), 10000f),
            new RopeCase(new RopeShape(2, 2, 2, 1, 10), 10000f),
            new RopeCase(new RopeShape(2, 2, 3, 1, 128), 10000f),
            new RopeCase(new RopeShape(1, 1, 5, 2, 128), 10000f));

    static Stream<Arguments> ropeCases() {
        return OpenBackends.onEveryDevice(ROPE_CASES);
    }

    @ParameterizedTest(name = "{0}: {1}")
    @MethodSource("ropeCases")
    void rope3dMatchesTheReference(Device device, RopeCase c) {
        Backend backend = BACKENDS.get(device);
        RopeShape s = c.shape();
        SplittableRandom random = new SplittableRandom(c.toString().hashCode());
        Input x = Input.trained("x", TestData.normal(random, s.elementCount(), 1), s.tokens(),
                (long) s.heads() * s.headDim());

        Result got = OpRun.run(backend, random,
                (ops, t) -> ops.rope3d(t[0], s.frames(), s.height(), s.width(), s.heads(), c.theta()), x);

        String where = device + " rope3d " + c + ": ";
        assertClose(ROPE, where + "y", DitOpsReference.rope3d(x.held(), s, c.theta()), got.output());
        assertClose(ROPE, where + "dx", DitOpsReference.rope3dBackward(got.upstream(), s, c.theta()),
                got.gradient(0));
    }

    record TimestepCase(float[] t, int dim) {
        @Override
        public String toString() {
            return t.length + " timesteps, dim " + dim;
        }
    }

    private static final List<TimestepCase> TIMESTEP_CASES = List.of(
            new TimestepCase(new float[] {500}, 2),
            new TimestepCase(new float[] {0, 1, 0.25f, 37}, 8),
            // Wan: freq_dim 256, timesteps in [0, 1000] (shifted flow-matching schedule).
            new TimestepCase(new float[] {999, 981.25f, 500.5f, 3}, 256),
            new TimestepCase(new float[] {0.5f, 12, 700, 1000, 250}, 34));

    static Stream<Arguments> timestepCases() {
        return OpenBackends.onEveryDevice(TIMESTEP_CASES);
    }

    @ParameterizedTest(name = "{0}: {1}")
    @MethodSource("timestepCases")
    void timestepEmbeddingMatchesTheReference(Device device, TimestepCase c) {
        Backend backend = BACKENDS.get(device);
        SplittableRandom random = new SplittableRandom(c.dim());
        Input t = Input.trained("t", c.t(), c.t().length);

        Result got = OpRun.run(backend, random, (ops, in) -> ops.timestepEmbedding(in[0], c.dim()), t);

        String where = device + " timestepEmbedding " + c + ": ";
        assertClose(EMBEDDING, where + "embedding", DitOpsReference.timestepEmbedding(t.held(), c.dim()),
                got.output());
        assertClose(EMBEDDING_GRADIENT, where + "dt",
                DitOpsReference.timestepEmbeddingBackward(t.held(), c.dim(), got.upstream()), got.gradient(0));
    }
}
