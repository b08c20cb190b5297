package org.fastvmt.tensor;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.List;
import java.util.function.Function;
import java.util.stream.Stream;

import org.fastvmt.backend.Backend;
import org.fastvmt.backend.Backends;
import org.fastvmt.backend.Device;
import org.fastvmt.reference.OpenBackends;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Bad input to every op of {@link Ops} is refused in Java, before any native call, with an
 * IllegalArgumentException whose message names the argument and says what was expected; the
 * refused call records nothing.
 */
class OpsArgumentTest {

    private static final OpenBackends BACKENDS = new OpenBackends();

    @AfterAll
    static void closeBackends() {
        BACKENDS.close();
    }

    /** The tensors a bad call is built from, all owned by one recording graph. */
    static final class Fixture {
        final Graph graph;
        final Ops ops;

        Fixture(Graph graph) {
            this.graph = graph;
            this.ops = new Ops(graph);
        }

        /** An F32 tensor of ones, requiring a gradient so that a successful op would record. */
        Tensor f32(long... shape) {
            Tensor t = graph.own(Tensor.of(graph.backend(), ones(shape), shape));
            graph.requireGradient(t);
            return t;
        }

        Tensor bf16(long... shape) {
            return graph.own(Tensor.of(graph.backend(), DType.BF16, ones(shape), shape));
        }

        Tensor i32(long... shape) {
            return graph.own(Tensor.ofInts(graph.backend(), new int[(int) count(shape)], shape));
        }

        private static float[] ones(long[] shape) {
            float[] values = new float[(int) count(shape)];
            Arrays.fill(values, 1f);
            return values;
        }

        private static long count(long[] shape) {
            long n = 1;
            for (long d : shape) {
                n *= d;
            }
            return n;
        }
    }

    /** A call that must be refused, and a fragment its message must contain. */
    record BadCall(String what, String messagePart, Function<Fixture, Tensor> call) {
        @Override
        public String toString() {
            return what;
        }
    }

    private static final List<BadCall> CALLS = List.of(
            // linear
            new BadCall("linear: x bf16", "x must be F32", f -> f.ops.linear(f.bf16(2, 3), f.f32(4, 3), null)),
            new BadCall("linear: x a vector", "x must be a non-empty matrix",
                    f -> f.ops.linear(f.f32(3), f.f32(4, 3), null)),
            new BadCall("linear: x null", "x must not be null", f -> f.ops.linear(null, f.f32(4, 3), null)),
            new BadCall("linear: weight null", "weight must not be null", f -> f.ops.linear(f.f32(2, 3), null, null)),
            new BadCall("linear: weight of the wrong width", "weight must be [out, 3]",
                    f -> f.ops.linear(f.f32(2, 3), f.f32(4, 5), null)),
            new BadCall("linear: weight a vector", "weight must be [out, 3]",
                    f -> f.ops.linear(f.f32(2, 3), f.f32(3), null)),
            new BadCall("linear: weight i32", "weight must be F32 or BF16",
                    f -> f.ops.linear(f.f32(2, 3), f.i32(4, 3), null)),
            new BadCall("linear: bias of the wrong length", "bias must hold 4 elements",
                    f -> f.ops.linear(f.f32(2, 3), f.f32(4, 3), f.f32(3))),
            new BadCall("linear: bias bf16", "bias must be F32",
                    f -> f.ops.linear(f.f32(2, 3), f.f32(4, 3), f.bf16(4))),
            // layerNorm and rmsNorm
            new BadCall("layerNorm: gamma without beta", "gamma and beta",
                    f -> f.ops.layerNorm(f.f32(2, 3), f.f32(3), null, 1e-6f)),
            new BadCall("layerNorm: gamma of the wrong length", "gamma must hold 3 elements",
                    f -> f.ops.layerNorm(f.f32(2, 3), f.f32(4), f.f32(3), 1e-6f)),
            new BadCall("layerNorm: beta of the wrong length", "beta must hold 3 elements",
                    f -> f.ops.layerNorm(f.f32(2, 3), f.f32(3), f.f32(2), 1e-6f)),
            new BadCall("layerNorm: x of rank 3", "x must be a non-empty matrix",
                    f -> f.ops.layerNorm(f.f32(2, 3, 4), null, null, 1e-6f)),
            new BadCall("layerNorm: eps 0", "eps must be finite and positive",
                    f -> f.ops.layerNorm(f.f32(2, 3), null, null, 0f)),
            new BadCall("rmsNorm: weight of the wrong length", "weight must hold 3 elements",
                    f -> f.ops.rmsNorm(f.f32(2, 3), f.f32(6), 1e-6f)),
            new BadCall("rmsNorm: eps NaN", "eps must be finite and positive",
                    f -> f.ops.rmsNorm(f.f32(2, 3), null, Float.NaN)),
            new BadCall("rmsNorm: x bf16", "x must be F32", f -> f.ops.rmsNorm(f.bf16(2, 3), null, 1e-6f)),
            // modulate, gatedResidual, add
            new BadCall("modulate: shift null", "shift must not be null",
                    f -> f.ops.modulate(f.f32(2, 3), null, f.f32(3))),
            new BadCall("modulate: scale of the wrong length", "scale must hold 3 elements",
                    f -> f.ops.modulate(f.f32(2, 3), f.f32(3), f.f32(2, 3))),
            new BadCall("modulate: shift bf16", "shift must be F32",
                    f -> f.ops.modulate(f.f32(2, 3), f.bf16(3), f.f32(3))),
            new BadCall("gatedResidual: y of another shape", "y must be F32 [2, 3]",
                    f -> f.ops.gatedResidual(f.f32(2, 3), f.f32(3, 2), null)),
            new BadCall("gatedResidual: gate of the wrong length", "gate must hold 3 elements",
                    f -> f.ops.gatedResidual(f.f32(2, 3), f.f32(2, 3), f.f32(2))),
            new BadCall("add: b of another shape", "b must have the shape of a [2, 3]",
                    f -> f.ops.add(f.f32(2, 3), f.f32(6))),
            new BadCall("add: a bf16", "a must be F32", f -> f.ops.add(f.bf16(2, 3), f.f32(2, 3))),
            new BadCall("add: empty", "a must not be empty", f -> f.ops.add(f.f32(0, 3), f.f32(0, 3))),
            // activations
            new BadCall("geluTanh: x bf16", "x must be F32", f -> f.ops.geluTanh(f.bf16(4))),
            new BadCall("silu: x null", "x must not be null", f -> f.ops.silu(null)),
            // rope3d
            new BadCall("rope3d: rows not frames·height·width", "x must have frames·height·width = 2·2·2 rows",
                    f -> f.ops.rope3d(f.f32(6, 8), 2, 2, 2, 1, 1e4f)),
            new BadCall("rope3d: heads not dividing the width", "x must have heads·headDim columns with heads = 3",
                    f -> f.ops.rope3d(f.f32(4, 8), 1, 2, 2, 3, 1e4f)),
            new BadCall("rope3d: odd head dimension", "head dimension must be even",
                    f -> f.ops.rope3d(f.f32(4, 6), 1, 2, 2, 2, 1e4f)),
            new BadCall("rope3d: no frames", "frames must be >= 1", f -> f.ops.rope3d(f.f32(4, 8), 0, 2, 2, 1, 1e4f)),
            new BadCall("rope3d: heads 0", "heads must be >= 1", f -> f.ops.rope3d(f.f32(4, 8), 1, 2, 2, 0, 1e4f)),
            new BadCall("rope3d: theta 0", "theta must be finite and positive",
                    f -> f.ops.rope3d(f.f32(4, 8), 1, 2, 2, 1, 0f)),
            // attention
            new BadCall("attention: heads not dividing the width", "q must have heads·headDim columns with heads = 3",
                    f -> f.ops.attention(f.f32(2, 8), f.f32(3, 8), f.f32(3, 8), 3)),
            new BadCall("attention: head wider than 256", "the head width must be at most 256",
                    f -> f.ops.attention(f.f32(2, 257), f.f32(3, 257), f.f32(3, 257), 1)),
            new BadCall("attention: heads 0", "heads must be >= 1",
                    f -> f.ops.attention(f.f32(2, 8), f.f32(3, 8), f.f32(3, 8), 0)),
            new BadCall("attention: k of another width", "k must have 8 columns like q",
                    f -> f.ops.attention(f.f32(2, 8), f.f32(3, 4), f.f32(3, 4), 2)),
            new BadCall("attention: v of another shape", "v must have the shape of k [3, 8]",
                    f -> f.ops.attention(f.f32(2, 8), f.f32(3, 8), f.f32(4, 8), 2)),
            new BadCall("attention: v null", "v must not be null",
                    f -> f.ops.attention(f.f32(2, 8), f.f32(3, 8), null, 2)),
            new BadCall("attention: q bf16", "q must be F32",
                    f -> f.ops.attention(f.bf16(2, 8), f.f32(3, 8), f.f32(3, 8), 2)),
            // timestepEmbedding
            new BadCall("timestepEmbedding: odd dim", "dim must be even and >= 2",
                    f -> f.ops.timestepEmbedding(f.f32(3), 7)),
            new BadCall("timestepEmbedding: dim 0", "dim must be even and >= 2",
                    f -> f.ops.timestepEmbedding(f.f32(3), 0)),
            new BadCall("timestepEmbedding: t bf16", "t must be F32", f -> f.ops.timestepEmbedding(f.bf16(3), 8)),
            // patchify and unpatchify
            new BadCall("patchify: latent of rank 3", "latent must be [channels, frames, height, width]",
                    f -> f.ops.patchify(f.f32(2, 4, 4), 1, 2, 2, PatchLayout.CHANNEL_FIRST)),
            new BadCall("patchify: height not a multiple of ph", "must be multiples of the patch",
                    f -> f.ops.patchify(f.f32(2, 1, 3, 4), 1, 2, 2, PatchLayout.CHANNEL_FIRST)),
            new BadCall("patchify: pt 0", "pt must be >= 1",
                    f -> f.ops.patchify(f.f32(2, 1, 4, 4), 0, 2, 2, PatchLayout.CHANNEL_FIRST)),
            new BadCall("patchify: layout null", "layout must not be null",
                    f -> f.ops.patchify(f.f32(2, 1, 4, 4), 1, 2, 2, null)),
            new BadCall("unpatchify: tokens of the wrong shape", "tokens must be [4, 8]",
                    f -> f.ops.unpatchify(f.f32(8, 4), 2, 1, 4, 4, 1, 2, 2, PatchLayout.CHANNEL_LAST)),
            new BadCall("unpatchify: width not a multiple of pw", "must be multiples of the patch",
                    f -> f.ops.unpatchify(f.f32(4, 8), 2, 1, 4, 5, 1, 2, 2, PatchLayout.CHANNEL_LAST)));

    static Stream<Arguments> calls() {
        return OpenBackends.onEveryDevice(CALLS);
    }

    @ParameterizedTest(name = "{0}: {1}")
    @MethodSource("calls")
    void badInputIsRefusedWithAMessageNamingTheArgument(Device device, BadCall bad) {
        Backend backend = BACKENDS.get(device);
        try (Graph graph = new Graph(backend, true)) {
            Fixture fixture = new Fixture(graph);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> bad.call().apply(fixture), bad.what());
            assertTrue(e.getMessage().contains(bad.messagePart()),
                    bad.what() + ": the message should contain '" + bad.messagePart() + "', got: " + e.getMessage());
            assertEquals(0, graph.recordCount(), bad.what() + ": a refused op records nothing");
        }
    }

    /** A tensor of another backend (a second cpu backend) is refused by name, before its memory is touched. */
    @ParameterizedTest(name = "{0}")
    @MethodSource("org.fastvmt.reference.OpenBackends#devices")
    void aTensorOfAnotherBackendIsRefused(Device device) {
        Backend backend = BACKENDS.get(device);
        try (Backend other = Backends.open(Device.CPU); Graph graph = new Graph(backend, true);
                Tensor foreign = Tensor.of(other, new float[] {1, 2, 3, 4, 5, 6}, 2, 3)) {
            Fixture fixture = new Fixture(graph);
            Tensor x = fixture.f32(2, 3);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> fixture.ops.add(x, foreign));
            assertTrue(e.getMessage().contains("b lives on"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> fixture.ops.linear(foreign, x, null));
            assertTrue(e.getMessage().contains("x lives on"), e.getMessage());
        }
    }
}
