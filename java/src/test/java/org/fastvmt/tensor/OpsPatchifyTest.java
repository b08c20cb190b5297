package org.fastvmt.tensor;

import static org.fastvmt.tensor.OpRun.assertClose;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import org.fastvmt.backend.Backend;
import org.fastvmt.backend.Device;
import org.fastvmt.reference.DitOpsReference;
import org.fastvmt.reference.DitOpsReference.PatchShape;
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
 * {@link Ops#patchify} and {@link Ops#unpatchify} in both {@link PatchLayout}s on every backend
 * against {@link DitOpsReference}: permutations, so values and gradients must be exact; patches
 * of 1 in any axis, Wan's (1, 2, 2), whole-axis patches and one-token latents.
 */
class OpsPatchifyTest {

    /** A permutation moves values; the gradient of a fresh leaf is 0 + value: exact. */
    private static final Tolerance EXACT = new Tolerance(0, 0);

    private static final OpenBackends BACKENDS = new OpenBackends();

    @AfterAll
    static void closeBackends() {
        BACKENDS.close();
    }

    record PatchCase(PatchShape shape, PatchLayout layout) {
        @Override
        public String toString() {
            return shape + ", " + layout;
        }
    }

    private static final List<PatchShape> SHAPES = List.of(
            new PatchShape(1, 1, 1, 1, 1, 1, 1),
            new PatchShape(3, 2, 4, 6, 1, 2, 2),
            new PatchShape(16, 1, 2, 4, 1, 2, 2),
            new PatchShape(2, 3, 2, 4, 3, 1, 2),
            new PatchShape(4, 1, 6, 2, 1, 3, 1),
            new PatchShape(5, 2, 2, 2, 2, 2, 2),
            new PatchShape(1, 4, 1, 3, 1, 1, 3));

    static Stream<Arguments> cases() {
        List<PatchCase> cases = SHAPES.stream()
                .flatMap(s -> Stream.of(PatchLayout.values()).map(layout -> new PatchCase(s, layout)))
                .toList();
        return OpenBackends.onEveryDevice(cases);
    }

    @ParameterizedTest(name = "{0}: {1}")
    @MethodSource("cases")
    void patchifyMatchesTheReference(Device device, PatchCase c) {
        Backend backend = BACKENDS.get(device);
        PatchShape s = c.shape();
        SplittableRandom random = new SplittableRandom(c.toString().hashCode());
        Input latent = Input.trained("latent", TestData.normal(random, s.elementCount(), 1), s.channels(),
                s.frames(), s.height(), s.width());

        Result got = OpRun.run(backend, random,
                (ops, t) -> ops.patchify(t[0], s.pt(), s.ph(), s.pw(), c.layout()), latent);

        String where = device + " patchify " + c + ": ";
        assertArrayEquals(new long[] {s.tokens(), s.features()}, got.outputShape(), where + "token shape");
        assertClose(EXACT, where + "tokens", DitOpsReference.patchify(latent.held(), s, c.layout()), got.output());
        assertClose(EXACT, where + "dlatent", DitOpsReference.patchifyBackward(got.upstream(), s, c.layout()),
                got.gradient(0));
    }

    @ParameterizedTest(name = "{0}: {1}")
    @MethodSource("cases")
    void unpatchifyMatchesTheReference(Device device, PatchCase c) {
        Backend backend = BACKENDS.get(device);
        PatchShape s = c.shape();
        SplittableRandom random = new SplittableRandom(c.toString().hashCode() + 1);
        Input tokens = Input.trained("tokens", TestData.normal(random, s.elementCount(), 1), s.tokens(),
                s.features());

        Result got = OpRun.run(backend, random, (ops, t) -> ops.unpatchify(t[0], s.channels(), s.frames(),
                s.height(), s.width(), s.pt(), s.ph(), s.pw(), c.layout()), tokens);

        String where = device + " unpatchify " + c + ": ";
        assertArrayEquals(new long[] {s.channels(), s.frames(), s.height(), s.width()}, got.outputShape(),
                where + "latent shape");
        assertClose(EXACT, where + "latent", DitOpsReference.unpatchify(tokens.held(), s, c.layout()),
                got.output());
        assertClose(EXACT, where + "dtokens", DitOpsReference.unpatchifyBackward(got.upstream(), s, c.layout()),
                got.gradient(0));
    }

    /** unpatchify(patchify(x)) is x, bit for bit, and so is its gradient. */
    @ParameterizedTest(name = "{0}: {1}")
    @MethodSource("cases")
    void unpatchifyUndoesPatchify(Device device, PatchCase c) {
        Backend backend = BACKENDS.get(device);
        PatchShape s = c.shape();
        SplittableRandom random = new SplittableRandom(c.toString().hashCode() + 2);
        Input latent = Input.trained("latent", TestData.normal(random, s.elementCount(), 1), s.channels(),
                s.frames(), s.height(), s.width());
        Result got = OpRun.run(backend, random, (ops, t) -> ops.unpatchify(
                ops.patchify(t[0], s.pt(), s.ph(), s.pw(), c.layout()), s.channels(), s.frames(), s.height(),
                s.width(), s.pt(), s.ph(), s.pw(), c.layout()), latent);
        assertClose(EXACT, device + " " + c + ": unpatchify(patchify(x))", latent.held(), got.output());
        assertClose(EXACT, device + " " + c + ": its gradient", got.upstream(), got.gradient(0));
    }
}
