package org.fastvmt.model.vae;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import org.fastvmt.backend.Backend;
import org.fastvmt.backend.Device;
import org.fastvmt.model.vae.WanVaeConfig.Parameter;
import org.fastvmt.model.vae.WanVaeWeights.TensorSource;
import org.fastvmt.reference.AutoencoderReference;
import org.fastvmt.reference.AutoencoderReference.Vol;
import org.fastvmt.reference.OpenBackends;
import org.fastvmt.reference.TestData;
import org.fastvmt.reference.Tolerance;
import org.fastvmt.tensor.DType;
import org.fastvmt.tensor.Tensor;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The TINY Wan VAE (the Wan2.1 architecture at dim 8) against {@link AutoencoderReference}, a
 * double-precision whole-sequence implementation: the chunked encode (first frame, then chunks of
 * 4 with the feature caches) and the frame-by-frame decode must give the same result as causal
 * convolutions over the whole sequence. Also: cpu against cudaemu, frame count arithmetic, tiled
 * against untiled, both key layouts, and refused inputs.
 */
class WanVaeTest {

    /**
     * fp32 against double through ~40 convolutions with RMS norms between them: errors stay
     * relative to the activations' scale (the norms renormalise); measured max |diff| is printed.
     */
    private static final Tolerance MODEL = new Tolerance(2e-4, 2e-3);

    private static final WanVaeConfig TINY = WanVaeConfig.TINY;
    private static final Map<String, float[]> PARAMETERS = WanVaeWeights.randomParameters(TINY, 11);
    private static final OpenBackends BACKENDS = new OpenBackends();

    @AfterAll
    static void closeBackends() {
        BACKENDS.close();
    }

    static Stream<Device> devices() {
        return OpenBackends.devices();
    }

    private static WanVae tinyVae(Backend backend) throws IOException {
        return new WanVae(WanVaeWeights.load(TINY, TensorSource.of(TINY.parameterShapes(), PARAMETERS), backend));
    }

    /** A smooth random video in [−1, 1] (frames of moving gradients plus noise). */
    private static float[] video(SplittableRandom random, int frames, int height, int width) {
        float[] v = new float[3 * frames * height * width];
        int n = 0;
        for (int c = 0; c < 3; c++) {
            for (int f = 0; f < frames; f++) {
                for (int r = 0; r < height; r++) {
                    for (int x = 0; x < width; x++) {
                        double s = Math.sin(0.4 * x + 0.3 * r + 0.5 * f + c) * 0.7 + 0.3 * (2 * random.nextDouble() - 1);
                        v[n++] = (float) Math.max(-1, Math.min(1, s));
                    }
                }
            }
        }
        return v;
    }

    private static void report(String what, double[] expected, float[] actual) {
        double worst = 0, scale = 0;
        for (int n = 0; n < expected.length; n++) {
            worst = Math.max(worst, Math.abs(actual[n] - expected[n]));
            scale = Math.max(scale, Math.abs(expected[n]));
        }
        System.out.printf("vae-error %s: max |diff| %.3g (max |ref| %.3g)%n", what, worst, scale);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("devices")
    void encodeAndDecodeMatchTheWholeSequenceReference(Device device) throws IOException {
        Backend backend = BACKENDS.get(device);
        int frames = 9, height = 16, width = 24;
        float[] pixels = video(new SplittableRandom(1), frames, height, width);
        Vol expectedLatent = AutoencoderReference.encode(TINY, PARAMETERS,
                new Vol(3, frames, height, width, TestData.toDouble(pixels)));
        WanVae vae = tinyVae(backend);
        try (Tensor in = Tensor.of(backend, pixels, 3, frames, height, width); Tensor latent = vae.encode(in)) {
            assertArrayEquals(new long[] {TINY.zDim(), 3, 2, 3}, latent.shape());
            float[] got = latent.toFloatArray();
            report(device + " encode", expectedLatent.data(), got);
            MODEL.assertClose(device + " encode", expectedLatent.data(), got);

            // Decode the reference's latent (so that the decoder is checked on its own).
            float[] z = new float[expectedLatent.data().length];
            for (int n = 0; n < z.length; n++) {
                z[n] = (float) expectedLatent.data()[n];
            }
            Vol expectedVideo = AutoencoderReference.decode(TINY, PARAMETERS,
                    new Vol(TINY.zDim(), 3, 2, 3, TestData.toDouble(z)));
            try (Tensor zt = Tensor.of(backend, z, TINY.zDim(), 3, 2, 3); Tensor decoded = vae.decode(zt)) {
                assertArrayEquals(new long[] {3, 9, 16, 24}, decoded.shape());
                float[] out = decoded.toFloatArray();
                report(device + " decode", expectedVideo.data(), out);
                MODEL.assertClose(device + " decode", expectedVideo.data(), out);
            }
        } finally {
            closeWeights(vae);
        }
    }

    /** The two builds that run everywhere agree with each other closely (same fp32 algorithm). */
    @Test
    void cpuAndCudaemuAgree() throws IOException {
        int frames = 5, height = 16, width = 16;
        float[] pixels = video(new SplittableRandom(2), frames, height, width);
        float[][] latents = new float[2][];
        float[][] videos = new float[2][];
        Device[] devices = {Device.CPU, Device.CUDAEMU};
        for (int d = 0; d < 2; d++) {
            Backend backend = BACKENDS.get(devices[d]);
            WanVae vae = tinyVae(backend);
            try (Tensor in = Tensor.of(backend, pixels, 3, frames, height, width); Tensor latent = vae.encode(in);
                    Tensor out = vae.decode(latent)) {
                latents[d] = latent.toFloatArray();
                videos[d] = out.toFloatArray();
            } finally {
                closeWeights(vae);
            }
        }
        Tolerance same = new Tolerance(1e-4, 1e-3);
        report("cpu vs cudaemu encode", TestData.toDouble(latents[0]), latents[1]);
        same.assertClose("cpu vs cudaemu latent", TestData.toDouble(latents[0]), latents[1]);
        report("cpu vs cudaemu decode", TestData.toDouble(videos[0]), videos[1]);
        same.assertClose("cpu vs cudaemu video", TestData.toDouble(videos[0]), videos[1]);
    }

    /** F = 4k + 1 frames ↔ k + 1 latent frames, for k = 0, 1, 2 (one frame alone included). */
    @Test
    void frameCountsFollowTheCausalChunks() throws IOException {
        Backend backend = BACKENDS.get(Device.CPU);
        assertEquals(21, WanVaeConfig.WAN21.latentFrames(81));
        assertEquals(81, WanVaeConfig.WAN21.videoFrames(21));
        assertEquals(8, WanVaeConfig.WAN21.spatialFactor());
        WanVae vae = tinyVae(backend);
        try {
            for (int k = 0; k <= 2; k++) {
                int frames = 4 * k + 1;
                float[] pixels = video(new SplittableRandom(k), frames, 8, 8);
                try (Tensor in = Tensor.of(backend, pixels, 3, frames, 8, 8); Tensor latent = vae.encode(in);
                        Tensor out = vae.decode(latent)) {
                    assertArrayEquals(new long[] {TINY.zDim(), k + 1, 1, 1}, latent.shape(), "latent of " + frames + " frames");
                    assertArrayEquals(new long[] {3, frames, 8, 8}, out.shape(), "video of " + (k + 1) + " latents");
                }
            }
        } finally {
            closeWeights(vae);
        }
    }

    /**
     * Tiled encode and decode against untiled. A tile covering everything is the untiled result.
     * Overlapping tiles differ where a convolution sees zero padding instead of the neighbour,
     * and (here) because the middle attention of a tile sees only that tile: with these random
     * weights an edge disturbs the decoder ~8–16 latent pixels deep, more than these test tiles
     * (4–6 latent pixels), so the errors printed here are large and shrink with the tile size;
     * real use takes tiles of 34 latent pixels overlapping by 16 ({@link WanVae.Tiling#DEFAULT}).
     */
    @Test
    void tiledIsCloseToUntiled() throws IOException {
        Backend backend = BACKENDS.get(Device.CPU);
        int frames = 5, height = 48, width = 64;
        float[] pixels = video(new SplittableRandom(3), frames, height, width);
        WanVae vae = tinyVae(backend);
        try (Tensor in = Tensor.of(backend, pixels, 3, frames, height, width); Tensor latent = vae.encode(in);
                Tensor video = vae.decode(latent);
                Tensor whole = vae.encodeTiled(in, new WanVae.Tiling(6, 8, 0));
                Tensor decodedWhole = vae.decodeTiled(latent, new WanVae.Tiling(6, 8, 0))) {
            new Tolerance(1e-6, 1e-6).assertClose("one tile = untiled encode",
                    TestData.toDouble(latent.toFloatArray()), whole.toFloatArray());
            new Tolerance(1e-6, 1e-6).assertClose("one tile = untiled decode",
                    TestData.toDouble(video.toFloatArray()), decodedWhole.toFloatArray());
            double[] encodeErrors = new double[2], decodeErrors = new double[2];
            int[][] tilings = {{4, 2}, {6, 4}};
            for (int n = 0; n < 2; n++) {
                WanVae.Tiling tiling = new WanVae.Tiling(tilings[n][0], tilings[n][0], tilings[n][1]);
                try (Tensor tiled = vae.encodeTiled(in, tiling); Tensor decoded = vae.decodeTiled(latent, tiling)) {
                    encodeErrors[n] = relativeRms(latent.toFloatArray(), tiled.toFloatArray());
                    decodeErrors[n] = relativeRms(video.toFloatArray(), decoded.toFloatArray());
                }
                System.out.printf("vae-tiling random model, 6x8 latent in %dx%d tiles overlap %d: encode relative RMS "
                        + "%.4f, decode %.4f%n", tilings[n][0], tilings[n][0], tilings[n][1], encodeErrors[n],
                        decodeErrors[n]);
            }
            assertTrue(encodeErrors[0] > 0, "tiles that see less context cannot be exact");
            assertTrue(encodeErrors[0] < 0.25 && encodeErrors[1] < 0.1, "tiled encode errors "
                    + java.util.Arrays.toString(encodeErrors));
            assertTrue(decodeErrors[1] < decodeErrors[0], "larger tiles with more overlap come closer: "
                    + java.util.Arrays.toString(decodeErrors));
        } finally {
            closeWeights(vae);
        }
    }

    /**
     * The same with the attention projections zeroed (vae.py's AttentionBlock initialises
     * proj.weight to zero), so that the model is local and only the seams differ.
     */
    @Test
    void tiledIsCloseToUntiledForALocalModel() throws IOException {
        Backend backend = BACKENDS.get(Device.CPU);
        Map<String, float[]> local = new LinkedHashMap<>(PARAMETERS);
        local.replaceAll((key, value) -> key.endsWith(".1.proj.weight") ? new float[value.length] : value);
        int frames = 5, height = 64, width = 64;
        float[] pixels = video(new SplittableRandom(3), frames, height, width);
        WanVae vae = new WanVae(WanVaeWeights.load(TINY, TensorSource.of(TINY.parameterShapes(), local), backend));
        try (Tensor in = Tensor.of(backend, pixels, 3, frames, height, width); Tensor latent = vae.encode(in);
                Tensor video = vae.decode(latent)) {
            double[] encodeErrors = new double[2], decodeErrors = new double[2];
            int[][] tilings = {{4, 2}, {6, 4}};
            for (int n = 0; n < 2; n++) {
                WanVae.Tiling tiling = new WanVae.Tiling(tilings[n][0], tilings[n][0], tilings[n][1]);
                try (Tensor tiled = vae.encodeTiled(in, tiling); Tensor decoded = vae.decodeTiled(latent, tiling)) {
                    encodeErrors[n] = relativeRms(latent.toFloatArray(), tiled.toFloatArray());
                    decodeErrors[n] = relativeRms(video.toFloatArray(), decoded.toFloatArray());
                }
                System.out.printf("vae-tiling local model, 8x8 latent in %dx%d tiles overlap %d: encode relative RMS "
                        + "%.4f, decode %.4f%n", tilings[n][0], tilings[n][0], tilings[n][1], encodeErrors[n],
                        decodeErrors[n]);
            }
            assertTrue(encodeErrors[1] < encodeErrors[0] && encodeErrors[1] < 0.1, "tiled encode errors "
                    + java.util.Arrays.toString(encodeErrors));
            assertTrue(decodeErrors[1] < decodeErrors[0], "tiled decode errors "
                    + java.util.Arrays.toString(decodeErrors));
        } finally {
            closeWeights(vae);
        }
    }

    private static double relativeRms(float[] reference, float[] other) {
        double diff = 0, norm = 0;
        for (int n = 0; n < reference.length; n++) {
            diff += (reference[n] - other[n]) * (double) (reference[n] - other[n]);
            norm += reference[n] * (double) reference[n];
        }
        return Math.sqrt(diff / norm);
    }

    /** A diffusers-layout checkpoint (AutoencoderKLWan keys) loads to the same model. */
    @Test
    void diffusersKeysLoadTheSameModel() throws IOException {
        Backend backend = BACKENDS.get(Device.CPU);
        Map<String, long[]> shapes = new LinkedHashMap<>();
        Map<String, float[]> values = new LinkedHashMap<>();
        for (Parameter p : TINY.parameters()) {
            shapes.put(p.diffusersKey(), p.shape());
            values.put(p.diffusersKey(), PARAMETERS.get(p.key()));
        }
        assertTrue(shapes.containsKey("decoder.up_blocks.1.resnets.0.conv_shortcut.weight"));
        assertTrue(shapes.containsKey("decoder.up_blocks.0.upsamplers.0.time_conv.weight"));
        assertTrue(shapes.containsKey("encoder.down_blocks.5.time_conv.weight"));
        assertTrue(shapes.containsKey("encoder.mid_block.attentions.0.to_qkv.weight"));
        assertTrue(shapes.containsKey("quant_conv.weight") && shapes.containsKey("post_quant_conv.bias"));
        float[] pixels = video(new SplittableRandom(4), 5, 8, 16);
        WanVae official = tinyVae(backend);
        WanVae diffusers = new WanVae(WanVaeWeights.load(TINY, TensorSource.of(shapes, values), backend));
        try (Tensor in = Tensor.of(backend, pixels, 3, 5, 8, 16); Tensor a = official.encode(in);
                Tensor b = diffusers.encode(in)) {
            assertArrayEquals(a.toFloatArray(), b.toFloatArray());
        } finally {
            closeWeights(official);
            closeWeights(diffusers);
        }
    }

    /**
     * Files: a .pth in the torch.save format with the official keys (built by the test fixture)
     * and a diffusers-layout safetensors file load to the same model.
     */
    @Test
    void pthAndSafetensorsFilesLoad(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) throws IOException {
        Backend backend = BACKENDS.get(Device.CPU);
        org.fastvmt.io.pytorch.TorchSaveFixture pth = new org.fastvmt.io.pytorch.TorchSaveFixture();
        org.fastvmt.io.safetensors.SafetensorsWriter safetensors = new org.fastvmt.io.safetensors.SafetensorsWriter();
        int n = 0;
        for (Parameter p : TINY.parameters()) {
            String storage = Integer.toString(n++);
            pth.storage(storage, org.fastvmt.io.safetensors.SafetensorsDType.F32, PARAMETERS.get(p.key()));
            pth.put(p.key(), org.fastvmt.io.pytorch.TorchSaveFixture.contiguous(storage, 0, p.shape()));
            safetensors.addFloats(p.diffusersKey(), org.fastvmt.io.safetensors.SafetensorsDType.F32,
                    PARAMETERS.get(p.key()), p.shape());
        }
        java.nio.file.Path pthFile = pth.write(dir.resolve("Wan2.1_VAE.pth"));
        java.nio.file.Path stFile = dir.resolve("diffusion_pytorch_model.safetensors");
        safetensors.write(stFile);
        float[] pixels = video(new SplittableRandom(5), 1, 8, 8);
        WanVae reference = tinyVae(backend);
        WanVae fromPth = new WanVae(WanVaeWeights.load(TINY, pthFile, backend));
        WanVae fromSafetensors = new WanVae(WanVaeWeights.load(TINY, stFile, backend));
        try (Tensor in = Tensor.of(backend, pixels, 3, 1, 8, 8); Tensor a = reference.encode(in);
                Tensor b = fromPth.encode(in); Tensor c = fromSafetensors.encode(in)) {
            assertArrayEquals(a.toFloatArray(), b.toFloatArray());
            assertArrayEquals(a.toFloatArray(), c.toFloatArray());
        } finally {
            closeWeights(reference);
            closeWeights(fromPth);
            closeWeights(fromSafetensors);
        }
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> WanVaeWeights.load(TINY, dir.resolve("missing.pth"), backend));
        assertTrue(e.getMessage().contains("missing.pth is not a file"), e.getMessage());
    }

    /** The official key set of Wan2.1_VAE.pth: first and last keys and the count of each kind. */
    @Test
    void officialKeysFollowTheModuleTree() {
        Map<String, long[]> shapes = WanVaeConfig.WAN21.parameterShapes();
        assertArrayEquals(new long[] {96, 3, 3, 3, 3}, shapes.get("encoder.conv1.weight"));
        assertArrayEquals(new long[] {96, 1, 1, 1}, shapes.get("encoder.downsamples.0.residual.0.gamma"));
        assertArrayEquals(new long[] {96, 96, 3, 3}, shapes.get("encoder.downsamples.2.resample.1.weight"));
        assertArrayEquals(new long[] {192, 96, 1, 1, 1}, shapes.get("encoder.downsamples.3.shortcut.weight"));
        assertArrayEquals(new long[] {192, 192, 3, 1, 1}, shapes.get("encoder.downsamples.5.time_conv.weight"));
        assertArrayEquals(new long[] {384, 384, 3, 1, 1}, shapes.get("encoder.downsamples.8.time_conv.weight"));
        assertArrayEquals(new long[] {384, 1, 1}, shapes.get("encoder.middle.1.norm.gamma"));
        assertArrayEquals(new long[] {1152, 384, 1, 1}, shapes.get("encoder.middle.1.to_qkv.weight"));
        assertArrayEquals(new long[] {32, 384, 3, 3, 3}, shapes.get("encoder.head.2.weight"));
        assertArrayEquals(new long[] {32, 32, 1, 1, 1}, shapes.get("conv1.weight"));
        assertArrayEquals(new long[] {16, 16, 1, 1, 1}, shapes.get("conv2.weight"));
        assertArrayEquals(new long[] {384, 16, 3, 3, 3}, shapes.get("decoder.conv1.weight"));
        assertArrayEquals(new long[] {768, 384, 3, 1, 1}, shapes.get("decoder.upsamples.3.time_conv.weight"));
        assertArrayEquals(new long[] {192, 384, 3, 3}, shapes.get("decoder.upsamples.3.resample.1.weight"));
        assertArrayEquals(new long[] {384, 192, 1, 1, 1}, shapes.get("decoder.upsamples.4.shortcut.weight"));
        assertArrayEquals(new long[] {96, 192, 3, 3}, shapes.get("decoder.upsamples.11.resample.1.weight"));
        assertTrue(!shapes.containsKey("decoder.upsamples.11.time_conv.weight"), "level 2 upsamples only in space");
        assertArrayEquals(new long[] {3, 96, 3, 3, 3}, shapes.get("decoder.head.2.weight"));
        assertTrue(shapes.containsKey("decoder.upsamples.14.residual.6.bias"));
        assertTrue(!shapes.containsKey("decoder.upsamples.15.residual.0.gamma"));
        long count = shapes.values().stream().mapToLong(s -> {
            long n = 1;
            for (long d : s) {
                n *= d;
            }
            return n;
        }).sum();
        System.out.println("vae-parameters: Wan2.1 VAE " + shapes.size() + " tensors, " + count + " parameters");
    }

    @Test
    void aCheckpointThatDoesNotFitIsRefusedWithEveryProblem() {
        Backend backend = BACKENDS.get(Device.CPU);
        Map<String, long[]> shapes = new LinkedHashMap<>(TINY.parameterShapes());
        shapes.remove("decoder.head.2.bias");
        shapes.put("encoder.conv1.bias", new long[] {7});
        shapes.put("model.extra", new long[] {1});
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> WanVaeWeights.load(TINY, TensorSource.of(shapes, PARAMETERS), backend));
        assertTrue(e.getMessage().contains("missing (1): decoder.head.2.bias"), e.getMessage());
        assertTrue(e.getMessage().contains("unexpected (1): model.extra"), e.getMessage());
        assertTrue(e.getMessage().contains("encoder.conv1.bias has shape [7], expected [8]"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> WanVaeWeights.detectLayout(java.util.List.of("x")));
        assertTrue(e.getMessage().contains("encoder.conv1.weight"), e.getMessage());
    }

    @Test
    void badInputIsRefusedNamingTheArgument() throws IOException {
        Backend backend = BACKENDS.get(Device.CPU);
        WanVae vae = tinyVae(backend);
        try (Tensor sixFrames = Tensor.zeros(backend, DType.F32, 3, 6, 8, 8);
                Tensor oddSize = Tensor.zeros(backend, DType.F32, 3, 5, 12, 8);
                Tensor fourChannels = Tensor.zeros(backend, DType.F32, 4, 5, 8, 8);
                Tensor wrongLatent = Tensor.zeros(backend, DType.F32, TINY.zDim() + 1, 2, 1, 1)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> vae.encode(sixFrames));
            assertTrue(e.getMessage().contains("frames must be 4k + 1") && e.getMessage().contains("got 6"),
                    e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> vae.encode(oddSize));
            assertTrue(e.getMessage().contains("height and width must be positive multiples of 8, got 12×8"),
                    e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> vae.encode(fourChannels));
            assertTrue(e.getMessage().contains("video must be an F32 tensor [3, frames, height, width]"),
                    e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> vae.decode(wrongLatent));
            assertTrue(e.getMessage().contains("latent must be a non-empty F32 tensor [" + TINY.zDim() + ", frames, height, width]"),
                    e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> new WanVae.Tiling(4, 4, 4));
            assertTrue(e.getMessage().contains("overlap"), e.getMessage());
        } finally {
            closeWeights(vae);
        }
    }

    private static void closeWeights(WanVae vae) {
        vae.weights().close();
    }
}
