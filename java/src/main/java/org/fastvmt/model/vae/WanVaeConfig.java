package org.fastvmt.model.vae;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The shape of a Wan2.1 video VAE ({@code WanVAE_} of Wan-Video/Wan2.1 wan/modules/vae.py) and
 * the published per-channel normalisation of its latent.
 *
 * <p>Encoder: a causal 3×3×3 conv from RGB to {@code dim}; per level i of {@code dimMult},
 * {@code numResBlocks} residual blocks to {@code dim·dimMult[i]} channels, then (except after the
 * last level) a 2× spatial downsample, also 2× in time where {@code temporalDownsample[i]};
 * a middle (residual block, single-head attention, residual block); RMS norm, SiLU and a causal
 * conv to 2·zDim channels; then the 1×1×1 {@code conv1}, whose first zDim channels are the mean
 * (the latent). The decoder mirrors it with {@code numResBlocks + 1} residual blocks per level
 * and upsamples that halve the channels. {@code attn_scales} is [] in every published Wan2.1
 * VAE, so this config has no attention outside the middle blocks.
 *
 * @param latentMean the per-channel mean subtracted from the latent, zDim values
 * @param latentStd  the per-channel std the centred latent is divided by, zDim values
 */
public record WanVaeConfig(String name, int dim, int zDim, int[] dimMult, int numResBlocks,
        boolean[] temporalDownsample, float[] latentMean, float[] latentStd) {

    /**
     * Latent mean and std of the published Wan2.1 VAE: {@code WanVAE.__init__} in
     * Wan-Video/Wan2.1 wan/modules/vae.py (also {@code latents_mean}/{@code latents_std} of
     * diffusers' AutoencoderKLWan config).
     */
    private static final float[] WAN21_MEAN = {-0.7571f, -0.7089f, -0.9113f, 0.1075f, -0.1745f, 0.9653f, -0.1517f,
        1.5508f, 0.4134f, -0.0715f, 0.5517f, -0.3632f, -0.1922f, -0.9497f, 0.2503f, -0.2921f};
    private static final float[] WAN21_STD = {2.8184f, 1.4541f, 2.3275f, 2.6558f, 1.2196f, 1.7708f, 2.6052f, 2.0743f,
        3.2687f, 2.1526f, 2.8652f, 1.5579f, 1.6382f, 1.1253f, 2.8251f, 1.9160f};

    /**
     * Wan2.1_VAE.pth: {@code _video_vae} in wan/modules/vae.py (dim 96, dim_mult [1, 2, 4, 4],
     * num_res_blocks 2, attn_scales [], temperal_downsample [False, True, True]) with z_dim 16
     * from {@code WanVAE}.
     */
    public static final WanVaeConfig WAN21 = new WanVaeConfig("wan2.1", 96, 16, new int[] {1, 2, 4, 4}, 2,
            new boolean[] {false, true, true}, WAN21_MEAN, WAN21_STD);

    /**
     * The Wan2.1 architecture at dim 8 (attention over 32 channels) with a 4-channel latent (the
     * first four of Wan2.1's means and stds), for tests and tiny model folders: its zDim is the
     * tiny DiT's in_dim ({@code WanConfig.TINY}), so the two run together.
     */
    public static final WanVaeConfig TINY = new WanVaeConfig("tiny", 8, 4, new int[] {1, 2, 4, 4}, 2,
            new boolean[] {false, true, true}, java.util.Arrays.copyOf(WAN21_MEAN, 4),
            java.util.Arrays.copyOf(WAN21_STD, 4));

    /** Channels of the input and output video. */
    public static final int VIDEO_CHANNELS = 3;

    public WanVaeConfig {
        if (name == null || name.isBlank()) {
            throw new IllegalArgumentException("name must not be blank");
        }
        if (dim < 1 || zDim < 1 || numResBlocks < 1) {
            throw new IllegalArgumentException("dim, zDim and numResBlocks must be >= 1, got " + dim + ", " + zDim
                    + ", " + numResBlocks);
        }
        if (dimMult == null || dimMult.length < 1 || Arrays.stream(dimMult).anyMatch(m -> m < 1)) {
            throw new IllegalArgumentException("dimMult must be non-empty and positive, got "
                    + Arrays.toString(dimMult));
        }
        if (temporalDownsample == null || temporalDownsample.length != dimMult.length - 1) {
            throw new IllegalArgumentException("temporalDownsample must have dimMult.length - 1 = "
                    + (dimMult.length - 1) + " entries, got " + Arrays.toString(temporalDownsample));
        }
        for (int i = 1; i < dimMult.length; i++) {
            if (dim * dimMult[i] % 2 != 0) {
                throw new IllegalArgumentException("dim · dimMult[" + i + "] must be even (the upsample halves it), got "
                        + dim * dimMult[i]);
            }
        }
        if (latentMean == null || latentMean.length != zDim || latentStd == null || latentStd.length != zDim) {
            throw new IllegalArgumentException("latentMean and latentStd must hold zDim = " + zDim + " values");
        }
        for (float s : latentStd) {
            if (!(s > 0 && Float.isFinite(s))) {
                throw new IllegalArgumentException("latentStd must be finite and positive, got "
                        + Arrays.toString(latentStd));
            }
        }
        dimMult = dimMult.clone();
        temporalDownsample = temporalDownsample.clone();
        latentMean = latentMean.clone();
        latentStd = latentStd.clone();
    }

    @Override
    public int[] dimMult() {
        return dimMult.clone();
    }

    @Override
    public boolean[] temporalDownsample() {
        return temporalDownsample.clone();
    }

    @Override
    public float[] latentMean() {
        return latentMean.clone();
    }

    @Override
    public float[] latentStd() {
        return latentStd.clone();
    }

    /** Levels of the encoder and decoder (dimMult.length). */
    public int levels() {
        return dimMult.length;
    }

    /** Channels after encoder level i: dim · dimMult[i]. */
    public int levelChannels(int level) {
        return dim * dimMult[level];
    }

    /** Channels of the middle blocks (the deepest level). */
    public int middleChannels() {
        return levelChannels(levels() - 1);
    }

    /** Spatial compression: 2^(levels − 1) (8 for Wan2.1). */
    public int spatialFactor() {
        return 1 << (levels() - 1);
    }

    /** Temporal compression: 2^(temporal downsamples) (4 for Wan2.1). */
    public int temporalFactor() {
        int f = 1;
        for (boolean t : temporalDownsample) {
            f *= t ? 2 : 1;
        }
        return f;
    }

    /** Latent frames of a video of {@code frames} = temporalFactor·k + 1 frames: k + 1. */
    public int latentFrames(int frames) {
        requireVideoFrames(frames);
        return 1 + (frames - 1) / temporalFactor();
    }

    /** Video frames decoded from {@code latentFrames} latent frames: 1 + temporalFactor·(latentFrames − 1). */
    public int videoFrames(int latentFrames) {
        if (latentFrames < 1) {
            throw new IllegalArgumentException("latent frames must be >= 1, got " + latentFrames);
        }
        return 1 + temporalFactor() * (latentFrames - 1);
    }

    /** Refuses a frame count that is not temporalFactor·k + 1. */
    public void requireVideoFrames(int frames) {
        if (frames < 1 || (frames - 1) % temporalFactor() != 0) {
            throw new IllegalArgumentException("frames must be " + temporalFactor() + "k + 1 (1, "
                    + (1 + temporalFactor()) + ", " + (1 + 2 * temporalFactor()) + ", ...), got " + frames);
        }
    }

    /** Whether decoder level i ends with a temporal upsample (the encoder's flags reversed). */
    public boolean temporalUpsample(int level) {
        return temporalDownsample[temporalDownsample.length - 1 - level];
    }

    /** Input channels of decoder level i: the middle's channels, then half of the level above (its upsample halves). */
    public int decoderLevelInput(int level) {
        return level == 0 ? middleChannels() : decoderLevelChannels(level - 1) / 2;
    }

    /** Output channels of decoder level i: dim · dimMult reversed. */
    public int decoderLevelChannels(int level) {
        return levelChannels(levels() - 1 - level);
    }

    // ------------------------------------------------------------------ parameters

    /** One parameter: its key in Wan2.1_VAE.pth, in diffusers' AutoencoderKLWan, and its PyTorch shape. */
    public record Parameter(String key, String diffusersKey, long[] shape) {
        @Override
        public long[] shape() {
            return shape.clone();
        }
    }

    /**
     * Every parameter, in module order. Official keys follow the module tree of vae.py
     * (Sequential indices included: ResidualBlock.residual = [RMS_norm, SiLU, CausalConv3d,
     * RMS_norm, SiLU, Dropout, CausalConv3d], so its weights are residual.0/2/3/6; Resample's
     * conv is resample.1 after the pad or upsample); diffusers keys follow
     * huggingface/diffusers scripts/convert_wan_to_diffusers.py {@code convert_vae}.
     */
    public List<Parameter> parameters() {
        List<Parameter> out = new ArrayList<>();
        int[] dims = new int[levels() + 1];
        dims[0] = dim;
        for (int i = 0; i < levels(); i++) {
            dims[i + 1] = levelChannels(i);
        }
        conv(out, "encoder.conv1", "encoder.conv_in", dims[0], VIDEO_CHANNELS, 3, 3, 3);
        int index = 0;
        for (int i = 0; i < levels(); i++) {
            int in = dims[i];
            for (int j = 0; j < numResBlocks; j++, index++) {
                String block = "encoder.downsamples." + index;
                residual(out, block, "encoder.down_blocks." + index, in, dims[i + 1]);
                in = dims[i + 1];
            }
            if (i != levels() - 1) {
                resample(out, "encoder.downsamples." + index, "encoder.down_blocks." + index, in, in,
                        temporalDownsample[i] ? in : 0);
                index++;
            }
        }
        int middle = middleChannels();
        middle(out, "encoder", middle);
        gamma(out, "encoder.head.0.gamma", "encoder.norm_out.gamma", middle, 4);
        conv(out, "encoder.head.2", "encoder.conv_out", 2 * zDim, middle, 3, 3, 3);
        conv(out, "conv1", "quant_conv", 2 * zDim, 2 * zDim, 1, 1, 1);
        conv(out, "conv2", "post_quant_conv", zDim, zDim, 1, 1, 1);
        conv(out, "decoder.conv1", "decoder.conv_in", middle, zDim, 3, 3, 3);
        middle(out, "decoder", middle);
        index = 0;
        int last = middle;
        for (int i = 0; i < levels(); i++) {
            int in = decoderLevelInput(i);
            int channels = decoderLevelChannels(i);
            for (int j = 0; j <= numResBlocks; j++, index++) {
                residual(out, "decoder.upsamples." + index, "decoder.up_blocks." + i + ".resnets." + j, in, channels);
                in = channels;
            }
            if (i != levels() - 1) {
                resample(out, "decoder.upsamples." + index, "decoder.up_blocks." + i + ".upsamplers.0", channels,
                        channels / 2, temporalUpsample(i) ? 2 * channels : 0);
                index++;
            }
            last = channels;
        }
        gamma(out, "decoder.head.0.gamma", "decoder.norm_out.gamma", last, 4);
        conv(out, "decoder.head.2", "decoder.conv_out", VIDEO_CHANNELS, last, 3, 3, 3);
        return Collections.unmodifiableList(out);
    }

    /** Official key → PyTorch shape, in module order. */
    public Map<String, long[]> parameterShapes() {
        Map<String, long[]> shapes = new LinkedHashMap<>();
        for (Parameter p : parameters()) {
            shapes.put(p.key(), p.shape());
        }
        return shapes;
    }

    private static void residual(List<Parameter> out, String key, String diffusers, int in, int channels) {
        gamma(out, key + ".residual.0.gamma", diffusers + ".norm1.gamma", in, 4);
        conv(out, key + ".residual.2", diffusers + ".conv1", channels, in, 3, 3, 3);
        gamma(out, key + ".residual.3.gamma", diffusers + ".norm2.gamma", channels, 4);
        conv(out, key + ".residual.6", diffusers + ".conv2", channels, channels, 3, 3, 3);
        if (in != channels) {
            conv(out, key + ".shortcut", diffusers + ".conv_shortcut", channels, in, 1, 1, 1);
        }
    }

    /** A Resample: its Conv2d (in → out, 3×3) and, when timeOut > 0, the (3, 1, 1) time_conv (in → timeOut). */
    private static void resample(List<Parameter> out, String key, String diffusers, int in, int conv2dOut,
            int timeOut) {
        out.add(new Parameter(key + ".resample.1.weight", diffusers + ".resample.1.weight",
                new long[] {conv2dOut, in, 3, 3}));
        out.add(new Parameter(key + ".resample.1.bias", diffusers + ".resample.1.bias", new long[] {conv2dOut}));
        if (timeOut > 0) {
            conv(out, key + ".time_conv", diffusers + ".time_conv", timeOut, in, 3, 1, 1);
        }
    }

    private void middle(List<Parameter> out, String side, int channels) {
        residual(out, side + ".middle.0", side + ".mid_block.resnets.0", channels, channels);
        String a = side + ".middle.1";
        String d = side + ".mid_block.attentions.0";
        gamma(out, a + ".norm.gamma", d + ".norm.gamma", channels, 3);
        out.add(new Parameter(a + ".to_qkv.weight", d + ".to_qkv.weight", new long[] {3L * channels, channels, 1, 1}));
        out.add(new Parameter(a + ".to_qkv.bias", d + ".to_qkv.bias", new long[] {3L * channels}));
        out.add(new Parameter(a + ".proj.weight", d + ".proj.weight", new long[] {channels, channels, 1, 1}));
        out.add(new Parameter(a + ".proj.bias", d + ".proj.bias", new long[] {channels}));
        residual(out, side + ".middle.2", side + ".mid_block.resnets.1", channels, channels);
    }

    private static void conv(List<Parameter> out, String key, String diffusers, int cOut, int cIn, int kt, int kh,
            int kw) {
        out.add(new Parameter(key + ".weight", diffusers + ".weight", new long[] {cOut, cIn, kt, kh, kw}));
        out.add(new Parameter(key + ".bias", diffusers + ".bias", new long[] {cOut}));
    }

    /** RMS_norm's gamma: [C, 1, 1, 1] for video (images=False), [C, 1, 1] for images (the attention's). */
    private static void gamma(List<Parameter> out, String key, String diffusers, int channels, int rank) {
        long[] shape = new long[rank];
        Arrays.fill(shape, 1);
        shape[0] = channels;
        out.add(new Parameter(key, diffusers, shape));
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof WanVaeConfig c && name.equals(c.name) && dim == c.dim && zDim == c.zDim
                && numResBlocks == c.numResBlocks && Arrays.equals(dimMult, c.dimMult)
                && Arrays.equals(temporalDownsample, c.temporalDownsample) && Arrays.equals(latentMean, c.latentMean)
                && Arrays.equals(latentStd, c.latentStd);
    }

    @Override
    public int hashCode() {
        return name.hashCode() * 31 + dim;
    }

    @Override
    public String toString() {
        return "WanVaeConfig[" + name + ": dim " + dim + ", z " + zDim + ", dimMult " + Arrays.toString(dimMult)
                + ", res blocks " + numResBlocks + ", temporal " + Arrays.toString(temporalDownsample) + "]";
    }
}
