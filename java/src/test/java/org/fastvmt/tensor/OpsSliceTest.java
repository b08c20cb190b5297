package org.fastvmt.tensor;

import static org.fastvmt.tensor.OpRun.assertClose;

import java.util.List;
import java.util.SplittableRandom;
import java.util.function.BiFunction;
import java.util.stream.Stream;

import org.fastvmt.backend.Backend;
import org.fastvmt.backend.Device;
import org.fastvmt.reference.DitOpsReference;
import org.fastvmt.reference.DitOpsReference.AttentionGradients;
import org.fastvmt.reference.DitOpsReference.AttentionShape;
import org.fastvmt.reference.DitOpsReference.LinearGradients;
import org.fastvmt.reference.DitOpsReference.ModulateGradients;
import org.fastvmt.reference.DitOpsReference.NormGradients;
import org.fastvmt.reference.DitOpsReference.PatchShape;
import org.fastvmt.reference.DitOpsReference.ResidualGradients;
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
 * Every op with every input a slice at an odd element offset of a larger tensor (as the
 * modulation chunks and q/k/v column blocks of a model are): such addresses are not 16-byte
 * aligned, so kernels with float4 paths (taken for widths that are multiples of 4, as here) must
 * fall back. Output and gradients against {@link DitOpsReference}; OpRun also checks that no
 * gradient lands outside the slices.
 */
class OpsSliceTest {

    private static final Tolerance F32 = new Tolerance(2e-5, 2e-4);
    private static final int ROWS = 3;
    private static final int COLS = 8;

    private static final OpenBackends BACKENDS = new OpenBackends();

    @AfterAll
    static void closeBackends() {
        BACKENDS.close();
    }

    /** The reference forward of a case, on the inputs' held values. */
    interface Forward {
        double[] of(double[][] inputs);
    }

    /** The reference gradients of every input of a case. */
    interface Backward {
        double[][] of(double[][] inputs, double[] upstream);
    }

    record SliceCase(String name, List<Input> inputs, BiFunction<Ops, Tensor[], Tensor> op, Forward forward,
            Backward backward) {
        @Override
        public String toString() {
            return name;
        }
    }

    private static Input matrix(SplittableRandom random, String name, int offset, long rows, long cols) {
        return Input.trained(name, TestData.normal(random, (int) (rows * cols), 1), rows, cols).at(offset);
    }

    private static Input vector(SplittableRandom random, String name, int offset, int n) {
        return Input.trained(name, TestData.normal(random, n, 1), n).at(offset);
    }

    private static List<SliceCase> cases() {
        SplittableRandom r = new SplittableRandom(17);
        AttentionShape a = new AttentionShape(ROWS, 5, 2, COLS / 2);
        RopeShape rope = new RopeShape(1, ROWS, 1, 2, COLS / 2);
        PatchShape patch = new PatchShape(2, 1, 2, 4, 1, 2, 2);
        return List.of(
                new SliceCase("linear", List.of(matrix(r, "x", 1, ROWS, COLS), matrix(r, "weight", 3, 5, COLS),
                        vector(r, "bias", 1, 5)), (o, t) -> o.linear(t[0], t[1], t[2]),
                        in -> DitOpsReference.linear(in[0], in[1], in[2], ROWS, COLS, 5), (in, up) -> {
                            LinearGradients g = DitOpsReference.linearBackward(in[0], in[1], true, up, ROWS, COLS, 5);
                            return new double[][] {g.dx(), g.dweight(), g.dbias()};
                        }),
                // A bf16 weight 3 elements in is not 8-byte aligned: the widening's scalar path.
                new SliceCase("linear, bf16 weight", List.of(matrix(r, "x", 2, ROWS, COLS),
                        Input.bf16("weight", TestData.normal(r, 5 * COLS, 1), 5, COLS).at(3), vector(r, "bias", 2, 5)),
                        (o, t) -> o.linear(t[0], t[1], t[2]),
                        in -> DitOpsReference.linear(in[0], in[1], in[2], ROWS, COLS, 5), (in, up) -> {
                            LinearGradients g = DitOpsReference.linearBackward(in[0], in[1], true, up, ROWS, COLS, 5);
                            return new double[][] {g.dx(), null, g.dbias()};
                        }),
                new SliceCase("layerNorm", List.of(matrix(r, "x", 1, ROWS, COLS), vector(r, "gamma", 1, COLS),
                        vector(r, "beta", 2, COLS)), (o, t) -> o.layerNorm(t[0], t[1], t[2], 1e-6f),
                        in -> DitOpsReference.layerNorm(in[0], in[1], in[2], ROWS, COLS, 1e-6), (in, up) -> {
                            NormGradients g = DitOpsReference.layerNormBackward(in[0], in[1], up, ROWS, COLS, 1e-6);
                            return new double[][] {g.dx(), g.dgamma(), g.dbeta()};
                        }),
                new SliceCase("rmsNorm", List.of(matrix(r, "x", 1, ROWS, COLS), vector(r, "weight", 3, COLS)),
                        (o, t) -> o.rmsNorm(t[0], t[1], 1e-6f),
                        in -> DitOpsReference.rmsNorm(in[0], in[1], ROWS, COLS, 1e-6), (in, up) -> {
                            NormGradients g = DitOpsReference.rmsNormBackward(in[0], in[1], up, ROWS, COLS, 1e-6);
                            return new double[][] {g.dx(), g.dgamma()};
                        }),
                new SliceCase("modulate", List.of(matrix(r, "x", 1, ROWS, COLS), vector(r, "shift", 1, COLS),
                        vector(r, "scale", 2, COLS)), (o, t) -> o.modulate(t[0], t[1], t[2]),
                        in -> DitOpsReference.modulate(in[0], in[1], in[2], ROWS, COLS), (in, up) -> {
                            ModulateGradients g = DitOpsReference.modulateBackward(in[0], in[2], up, ROWS, COLS);
                            return new double[][] {g.dx(), g.dshift(), g.dscale()};
                        }),
                new SliceCase("gatedResidual", List.of(matrix(r, "x", 1, ROWS, COLS), matrix(r, "y", 2, ROWS, COLS),
                        vector(r, "gate", 3, COLS)), (o, t) -> o.gatedResidual(t[0], t[1], t[2]),
                        in -> DitOpsReference.gatedResidual(in[0], in[1], in[2], ROWS, COLS), (in, up) -> {
                            ResidualGradients g = DitOpsReference.gatedResidualBackward(in[1], in[2], up, ROWS, COLS);
                            return new double[][] {g.dx(), g.dy(), g.dgate()};
                        }),
                new SliceCase("add", List.of(matrix(r, "a", 1, ROWS, COLS), matrix(r, "b", 2, ROWS, COLS)),
                        (o, t) -> o.add(t[0], t[1]), in -> DitOpsReference.add(in[0], in[1]),
                        (in, up) -> new double[][] {up, up}),
                new SliceCase("geluTanh", List.of(matrix(r, "x", 1, ROWS, COLS)), (o, t) -> o.geluTanh(t[0]),
                        in -> DitOpsReference.geluTanh(in[0]),
                        (in, up) -> new double[][] {DitOpsReference.geluTanhBackward(in[0], up)}),
                new SliceCase("silu", List.of(matrix(r, "x", 3, ROWS, COLS)), (o, t) -> o.silu(t[0]),
                        in -> DitOpsReference.silu(in[0]),
                        (in, up) -> new double[][] {DitOpsReference.siluBackward(in[0], up)}),
                new SliceCase("rope3d", List.of(matrix(r, "x", 1, rope.tokens(), COLS)),
                        (o, t) -> o.rope3d(t[0], rope.frames(), rope.height(), rope.width(), rope.heads(), 1e4f),
                        in -> DitOpsReference.rope3d(in[0], rope, 1e4),
                        (in, up) -> new double[][] {DitOpsReference.rope3dBackward(up, rope, 1e4)}),
                new SliceCase("attention", List.of(matrix(r, "q", 1, a.qTokens(), a.width()),
                        matrix(r, "k", 2, a.kvTokens(), a.width()), matrix(r, "v", 3, a.kvTokens(), a.width())),
                        (o, t) -> o.attention(t[0], t[1], t[2], a.heads()),
                        in -> DitOpsReference.attention(in[0], in[1], in[2], a), (in, up) -> {
                            AttentionGradients g = DitOpsReference.attentionBackward(in[0], in[1], in[2], up, a);
                            return new double[][] {g.dq(), g.dk(), g.dv()};
                        }),
                new SliceCase("timestepEmbedding", List.of(Input.trained("t", new float[] {3, 250, 999.5f, 0.5f}, 4)
                        .at(1)), (o, t) -> o.timestepEmbedding(t[0], COLS),
                        in -> DitOpsReference.timestepEmbedding(in[0], COLS),
                        (in, up) -> new double[][] {DitOpsReference.timestepEmbeddingBackward(in[0], COLS, up)}),
                new SliceCase("patchify", List.of(Input.trained("latent", TestData.normal(r, patch.elementCount(), 1),
                        patch.channels(), patch.frames(), patch.height(), patch.width()).at(1)),
                        (o, t) -> o.patchify(t[0], patch.pt(), patch.ph(), patch.pw(), PatchLayout.CHANNEL_LAST),
                        in -> DitOpsReference.patchify(in[0], patch, PatchLayout.CHANNEL_LAST),
                        (in, up) -> new double[][] {
                            DitOpsReference.patchifyBackward(up, patch, PatchLayout.CHANNEL_LAST)}),
                new SliceCase("unpatchify", List.of(matrix(r, "tokens", 3, patch.tokens(), patch.features())),
                        (o, t) -> o.unpatchify(t[0], patch.channels(), patch.frames(), patch.height(), patch.width(),
                                patch.pt(), patch.ph(), patch.pw(), PatchLayout.CHANNEL_FIRST),
                        in -> DitOpsReference.unpatchify(in[0], patch, PatchLayout.CHANNEL_FIRST),
                        (in, up) -> new double[][] {
                            DitOpsReference.unpatchifyBackward(up, patch, PatchLayout.CHANNEL_FIRST)}));
    }

    static Stream<Arguments> sliceCases() {
        return OpenBackends.onEveryDevice(cases());
    }

    @ParameterizedTest(name = "{0}: {1}")
    @MethodSource("sliceCases")
    void slicesAtOddOffsetsMatchTheReference(Device device, SliceCase c) {
        Backend backend = BACKENDS.get(device);
        Input[] inputs = c.inputs().toArray(Input[]::new);
        double[][] held = new double[inputs.length][];
        for (int n = 0; n < inputs.length; n++) {
            held[n] = inputs[n].held();
        }
        Result got = OpRun.run(backend, new SplittableRandom(c.name().hashCode()), c.op(), inputs);
        String where = device + " " + c + " of slices: ";
        assertClose(F32, where + "output", c.forward().of(held), got.output());
        double[][] gradients = c.backward().of(held, got.upstream());
        for (int n = 0; n < inputs.length; n++) {
            if (inputs[n].gradient()) { // OpRun already checked that the others received none
                assertClose(F32, where + "d" + inputs[n].name(), gradients[n], got.gradient(n));
            }
        }
    }
}
