package org.fastvmt.model.vae;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import org.fastvmt.backend.Backend;
import org.fastvmt.io.pytorch.PthFile;
import org.fastvmt.io.safetensors.SafetensorsFile;
import org.fastvmt.model.ParameterCheck;
import org.fastvmt.model.vae.WanVaeConfig.Parameter;
import org.fastvmt.tensor.DType;
import org.fastvmt.tensor.Tensor;

/**
 * Every parameter of a Wan2.1 VAE on one backend, by its official key (Wan2.1_VAE.pth, {@link
 * WanVaeConfig#parameters()}), in the form the channel-last ops take:
 * <ul>
 * <li>convolution weights (PyTorch [cOut, cIn, kt, kh, kw], Conv2d [cOut, cIn, kh, kw]) as F32
 * matrices [cOut, taps·cIn] with features in (kt, kh, kw, cIn) order, permuted once here;
 * <li>RMS_norm gammas ([C, 1, 1, 1] or [C, 1, 1]) and biases as F32 [C].
 * </ul>
 * Checkpoints in either published layout load (keys of Wan2.1_VAE.pth or diffusers'
 * AutoencoderKLWan, see {@link WanVaeConfig.Parameter}); F16 and BF16 values widen to F32. Owns
 * its tensors: {@link #close()} frees them.
 */
public final class WanVaeWeights implements AutoCloseable {

    /** The two key layouts of published Wan2.1 VAE checkpoints. */
    public enum Layout {
        /** Wan-Video/Wan2.1 {@code WanVAE_} state dict (Wan2.1_VAE.pth). */
        ORIGINAL,
        /** huggingface/diffusers {@code AutoencoderKLWan} (vae/diffusion_pytorch_model.safetensors). */
        DIFFUSERS
    }

    /** Named tensors on the host: a .pth file, a safetensors file or a map. */
    public interface TensorSource {
        Collection<String> names();

        long[] shape(String name);

        /** The elements as F32, row-major. */
        float[] read(String name) throws IOException;

        static TensorSource of(PthFile file) {
            return new TensorSource() {
                public Collection<String> names() {
                    return file.names();
                }

                public long[] shape(String name) {
                    return file.info(name).shape();
                }

                public float[] read(String name) throws IOException {
                    return file.readF32(name);
                }
            };
        }

        static TensorSource of(SafetensorsFile file) {
            return new TensorSource() {
                public Collection<String> names() {
                    return file.names();
                }

                public long[] shape(String name) {
                    return file.info(name).shape();
                }

                public float[] read(String name) {
                    return file.readF32(name);
                }
            };
        }

        /** Tensors given as shapes and values (tests, random models). */
        static TensorSource of(Map<String, long[]> shapes, Map<String, float[]> values) {
            return new TensorSource() {
                public Collection<String> names() {
                    return shapes.keySet();
                }

                public long[] shape(String name) {
                    return shapes.get(name).clone();
                }

                public float[] read(String name) {
                    return values.get(name);
                }
            };
        }
    }

    private final WanVaeConfig config;
    private final Map<String, Tensor> tensors;

    private WanVaeWeights(WanVaeConfig config, Map<String, Tensor> tensors) {
        this.config = config;
        this.tensors = Collections.unmodifiableMap(tensors);
    }

    public WanVaeConfig config() {
        return config;
    }

    /** The tensor of an official key (see the class comment for its form). */
    public Tensor get(String key) {
        Tensor tensor = tensors.get(key);
        if (tensor == null) {
            throw new IllegalArgumentException("no VAE parameter '" + key + "' in the " + config.name() + " model");
        }
        return tensor;
    }

    /** Which layout {@code names} use: by the key of the encoder's first convolution. */
    public static Layout detectLayout(Collection<String> names) {
        if (names.contains("encoder.conv1.weight")) {
            return Layout.ORIGINAL;
        }
        if (names.contains("encoder.conv_in.weight")) {
            return Layout.DIFFUSERS;
        }
        throw new IllegalArgumentException("not a Wan VAE checkpoint: it has neither encoder.conv1.weight "
                + "(Wan2.1_VAE.pth) nor encoder.conv_in.weight (diffusers AutoencoderKLWan)");
    }

    /**
     * Loads every parameter of {@code config} from {@code source} (either layout) onto {@code
     * backend}. One {@link IllegalArgumentException} lists every missing, unexpected and wrongly
     * shaped tensor by its stored name; nothing is uploaded then.
     */
    public static WanVaeWeights load(WanVaeConfig config, TensorSource source, Backend backend) throws IOException {
        Layout layout = detectLayout(source.names());
        List<Parameter> parameters = config.parameters();
        List<String> missing = new ArrayList<>();
        List<String> wrong = new ArrayList<>();
        Map<String, Parameter> byStored = new LinkedHashMap<>();
        for (Parameter p : parameters) {
            String stored = layout == Layout.ORIGINAL ? p.key() : p.diffusersKey();
            byStored.put(stored, p);
            if (!source.names().contains(stored)) {
                missing.add(stored);
            } else if (!Arrays.equals(source.shape(stored), p.shape())) {
                wrong.add(stored + " has shape " + Arrays.toString(source.shape(stored)) + ", expected "
                        + Arrays.toString(p.shape()));
            }
        }
        List<String> unexpected = new ArrayList<>();
        for (String name : source.names()) {
            if (!byStored.containsKey(name)) {
                unexpected.add(name);
            }
        }
        ParameterCheck.requireNone("the " + layout.name().toLowerCase() + "-layout checkpoint does not fit the Wan VAE "
                + config.name() + ":", missing, unexpected, "wrong shape", wrong);
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        try {
            for (Map.Entry<String, Parameter> entry : byStored.entrySet()) {
                Parameter p = entry.getValue();
                float[] values = source.read(entry.getKey());
                tensors.put(p.key(), upload(p, values, backend));
            }
        } catch (IOException | RuntimeException e) {
            tensors.values().forEach(Tensor::close);
            throw e;
        }
        return new WanVaeWeights(config, tensors);
    }

    /**
     * Loads a checkpoint file: a PyTorch .pth (Wan2.1_VAE.pth, read by the restricted {@link
     * PthFile}) or a .safetensors file (diffusers' vae/diffusion_pytorch_model.safetensors, or a
     * converted official one), in either key layout.
     */
    public static WanVaeWeights load(WanVaeConfig config, Path file, Backend backend) throws IOException {
        if (!Files.isRegularFile(file)) {
            throw new IllegalArgumentException("VAE checkpoint " + file + " is not a file");
        }
        String name = file.getFileName().toString().toLowerCase(java.util.Locale.ROOT);
        if (name.endsWith(".safetensors")) {
            try (SafetensorsFile st = SafetensorsFile.open(file)) {
                return load(config, TensorSource.of(st), backend);
            }
        }
        if (name.endsWith(".pth") || name.endsWith(".pt")) {
            try (PthFile pth = PthFile.open(file)) {
                return load(config, TensorSource.of(pth), backend);
            }
        }
        throw new IllegalArgumentException("VAE checkpoint " + file + ": expected a .pth or .safetensors file");
    }

    /** A Parameter's values in the kernels' form on {@code backend}. */
    private static Tensor upload(Parameter p, float[] values, Backend backend) {
        long[] shape = p.shape();
        boolean isWeight = p.key().endsWith(".weight");
        if (!isWeight) { // bias or gamma: a vector of shape[0] values
            return Tensor.of(backend, values, shape[0]);
        }
        int cOut = (int) shape[0];
        int cIn = (int) shape[1];
        int taps = 1;
        for (int d = 2; d < shape.length; d++) {
            taps *= (int) shape[d];
        }
        return Tensor.of(backend, channelLast(values, cOut, cIn, taps), cOut, (long) taps * cIn);
    }

    /** [cOut, cIn, taps] → [cOut, taps, cIn]: the feature order of fvmt_im2col3d's rows. */
    static float[] channelLast(float[] weight, int cOut, int cIn, int taps) {
        float[] out = new float[weight.length];
        for (int o = 0; o < cOut; o++) {
            int base = o * cIn * taps;
            for (int i = 0; i < cIn; i++) {
                for (int t = 0; t < taps; t++) {
                    out[base + t * cIn + i] = weight[base + i * taps + t];
                }
            }
        }
        return out;
    }

    /**
     * Random parameters by official key (tests, tiny models), deterministic for a seed:
     * convolution weights and biases uniform in ±1/√fan_in like PyTorch's Conv default, gammas
     * 1 ± 0.25.
     */
    public static Map<String, float[]> randomParameters(WanVaeConfig config, long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        Map<String, float[]> out = new LinkedHashMap<>();
        long fanIn = 1;
        for (Parameter p : config.parameters()) {
            long[] shape = p.shape();
            int count = (int) Arrays.stream(shape).reduce(1, (a, b) -> a * b);
            float[] values = new float[count];
            if (p.key().endsWith(".gamma")) {
                for (int n = 0; n < count; n++) {
                    values[n] = (float) (1 + 0.25 * (2 * random.nextDouble() - 1));
                }
            } else {
                if (p.key().endsWith(".weight")) {
                    fanIn = count / shape[0];
                }
                double bound = 1 / Math.sqrt(fanIn);
                for (int n = 0; n < count; n++) {
                    values[n] = (float) (bound * (2 * random.nextDouble() - 1));
                }
            }
            out.put(p.key(), values);
        }
        return out;
    }

    /** Random weights on {@code backend} ({@link #randomParameters}). */
    public static WanVaeWeights random(WanVaeConfig config, Backend backend, long seed) {
        try {
            return load(config, TensorSource.of(config.parameterShapes(), randomParameters(config, seed)), backend);
        } catch (IOException e) {
            throw new IllegalStateException("in-memory tensors cannot fail to read", e);
        }
    }

    @Override
    public void close() {
        tensors.values().forEach(Tensor::close);
    }
}
