package org.fastvmt.model.t5;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;

import org.fastvmt.backend.Backend;
import org.fastvmt.model.ParameterCheck;
import org.fastvmt.tensor.DType;
import org.fastvmt.tensor.Tensor;

/**
 * Every parameter of a umT5 encoder on one backend, by its key in the official checkpoint
 * ({@link UmT5Config#parameterShapes()}). Matrices (the token embedding and the Linear weights)
 * may be BF16 or F32, so the 256384 × 4096 bf16 embedding of umT5-XXL stays bf16 (2 GB, not 4);
 * the norm weights and the relative position tables are F32. Owns its tensors.
 */
public final class UmT5Weights implements AutoCloseable {

    private final UmT5Config config;
    private final Map<String, Tensor> tensors;

    private UmT5Weights(UmT5Config config, Map<String, Tensor> tensors) {
        this.config = config;
        this.tensors = Collections.unmodifiableMap(new LinkedHashMap<>(tensors));
    }

    /**
     * Takes ownership of {@code tensors} after checking them against {@code config}: one
     * {@link IllegalArgumentException} lists every missing, unexpected, wrongly shaped or wrongly
     * typed tensor. On failure nothing is taken (the caller still owns the tensors).
     */
    public static UmT5Weights of(UmT5Config config, Map<String, Tensor> tensors) {
        ParameterCheck.requireFit("the weights do not fit the umT5 " + config.name() + " encoder:",
                config.parameterShapes(), tensors, (key, shape) -> isMatrix(key));
        return new UmT5Weights(config, tensors);
    }

    /**
     * Random weights (tests, {@code init-model}), deterministic for a seed, scaled after t5.py's
     * init_weights: embedding N(0, 1), q N(0, (dim·dimAttn)^-½), k, v, gate and fc1 N(0, dim^-½),
     * fc2 N(0, ffn^-½). The o projection, N(0, dimAttn^-½), and the position tables, N(0, 1), are
     * larger than t5.py's ((heads·dimAttn)^-½, (2·buckets·heads)^-½) so that the attention and
     * its bias visibly shape a small model's output; norm weights are 1 ± 0.1.
     */
    public static UmT5Weights random(UmT5Config config, Backend backend, long seed, DType matrixType) {
        if (matrixType != DType.F32 && matrixType != DType.BF16) {
            throw new IllegalArgumentException("matrixType must be F32 or BF16, got " + matrixType);
        }
        SplittableRandom random = new SplittableRandom(seed);
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        try {
            for (Map.Entry<String, long[]> entry : config.parameterShapes().entrySet()) {
                String key = entry.getKey();
                long[] shape = entry.getValue();
                float[] data = new float[Math.toIntExact(shape.length == 1 ? shape[0] : shape[0] * shape[1])];
                boolean norm = key.endsWith("norm1.weight") || key.endsWith("norm2.weight") || key.equals("norm.weight");
                double std = norm ? 0.1 : key.startsWith("token_embedding") || key.contains("pos_embedding") ? 1.0
                        : key.endsWith("attn.q.weight") ? 1.0 / Math.sqrt((double) config.dim() * config.dimAttn())
                        : 1.0 / Math.sqrt(shape[1]);
                for (int i = 0; i < data.length; i++) {
                    data[i] = (float) ((norm ? 1.0 : 0.0) + std * random.nextGaussian());
                }
                tensors.put(key, Tensor.of(backend, isMatrix(key) ? matrixType : DType.F32, data, shape));
            }
            return new UmT5Weights(config, tensors);
        } catch (RuntimeException e) {
            tensors.values().forEach(Tensor::close);
            throw e;
        }
    }

    /** Whether a parameter may be BF16: the token embedding and the Linear weights. */
    public static boolean isMatrix(String key) {
        return key.equals("token_embedding.weight") || key.contains(".attn.") || key.contains(".ffn.");
    }

    public UmT5Config config() {
        return config;
    }

    /** The tensor of an official-layout key. */
    public Tensor get(String key) {
        Tensor tensor = tensors.get(key);
        if (tensor == null) {
            throw new IllegalArgumentException("no umT5 weight named " + key);
        }
        return tensor;
    }

    /** Every tensor by its official key, in module order. */
    public Map<String, Tensor> tensors() {
        return tensors;
    }

    public Backend backend() {
        return tensors.values().iterator().next().backend();
    }

    @Override
    public void close() {
        tensors.values().forEach(Tensor::close);
    }
}
