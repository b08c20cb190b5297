package org.fastvmt.model.wan;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;

import org.fastvmt.backend.Backend;
import org.fastvmt.model.ParameterCheck;
import org.fastvmt.tensor.DType;
import org.fastvmt.tensor.Tensor;

/**
 * Every parameter of a Wan2.1 DiT on one backend, by its key in the original checkpoint
 * ({@link WanConfig#parameterShapes()}). Matrices (rank ≥ 2 except the modulation tables) may be
 * BF16 or F32; every other tensor is F32, because the kernels that read them (bias, norms,
 * modulation) take fp32. Owns its tensors: {@link #close()} frees them.
 */
public final class WanWeights implements AutoCloseable {

    private final WanConfig config;
    private final Map<String, Tensor> tensors;

    private WanWeights(WanConfig config, Map<String, Tensor> tensors) {
        this.config = config;
        this.tensors = Collections.unmodifiableMap(new LinkedHashMap<>(tensors));
    }

    /**
     * Takes ownership of {@code tensors} after checking them against {@code config}: one
     * {@link IllegalArgumentException} lists every missing, unexpected, wrongly shaped or wrongly
     * typed tensor. On failure nothing is taken (the caller still owns the tensors).
     */
    public static WanWeights of(WanConfig config, Map<String, Tensor> tensors) {
        ParameterCheck.requireFit("the weights do not fit the Wan2.1 " + config.name() + " model:",
                config.parameterShapes(), tensors, WanWeights::isMatrix);
        return new WanWeights(config, tensors);
    }

    /**
     * Randomly initialised weights (for tests, benchmarks and {@code init-model}), deterministic
     * for a seed: matrices uniform in ±1/√fan_in like PyTorch's Linear, biases ±0.02 around 0,
     * norm weights around 1, modulation tables ±0.02. Matrices are stored as {@code matrixType}.
     */
    public static WanWeights random(WanConfig config, Backend backend, long seed, DType matrixType) {
        if (matrixType != DType.F32 && matrixType != DType.BF16) {
            throw new IllegalArgumentException("matrixType must be F32 or BF16, got " + matrixType);
        }
        SplittableRandom random = new SplittableRandom(seed);
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        try {
            for (Map.Entry<String, long[]> entry : config.parameterShapes().entrySet()) {
                String key = entry.getKey();
                long[] shape = entry.getValue();
                float[] data = new float[Math.toIntExact(count(shape))];
                boolean matrix = isMatrix(key, shape);
                double bound = matrix ? 1.0 / Math.sqrt(count(shape) / shape[0]) : 0.02;
                double centre = key.contains("norm") ? 1.0 : 0.0;
                for (int i = 0; i < data.length; i++) {
                    data[i] = (float) (centre + bound * (2 * random.nextDouble() - 1));
                }
                tensors.put(key, Tensor.of(backend, matrix ? matrixType : DType.F32, data, shape));
            }
            return new WanWeights(config, tensors);
        } catch (RuntimeException e) {
            tensors.values().forEach(Tensor::close);
            throw e;
        }
    }

    /** Whether a parameter is a weight matrix (may be BF16): Linear and patch-embedding weights. */
    public static boolean isMatrix(String key, long[] shape) {
        return key.endsWith(".weight") && shape.length >= 2;
    }

    private static long count(long[] shape) {
        long n = 1;
        for (long d : shape) {
            n = Math.multiplyExact(n, d);
        }
        return n;
    }

    public WanConfig config() {
        return config;
    }

    /** The tensor of an original-layout key. */
    public Tensor get(String key) {
        Tensor tensor = tensors.get(key);
        if (tensor == null) {
            throw new IllegalArgumentException("no weight named " + key);
        }
        return tensor;
    }

    /** Every tensor by its original-layout key, in the official module order. */
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
