package org.fastvmt.model.t5;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.fastvmt.backend.Backend;
import org.fastvmt.io.pytorch.PthFile;
import org.fastvmt.io.safetensors.SafetensorsDType;
import org.fastvmt.io.safetensors.SafetensorsWriter;
import org.fastvmt.io.safetensors.ShardedSafetensors;
import org.fastvmt.tensor.DType;
import org.fastvmt.tensor.Tensor;

/**
 * Reads umT5 encoder checkpoints in the two published layouts.
 *
 * <p><b>Original</b> (Wan-AI/Wan2.1-T2V-*: {@code models_t5_umt5-xxl-enc-bf16.pth} in the model
 * folder): the state dict of wan/modules/t5.py's {@code T5Encoder}, keys
 * {@link UmT5Config#parameterShapes()}; read by the restricted {@link PthFile} reader (or from a
 * safetensors file with the same keys, as {@code fastvmt convert} writes it).
 *
 * <p><b>Diffusers</b> (Wan-AI/Wan2.1-T2V-*-Diffusers: {@code text_encoder/model.safetensors} or
 * its shards and index): transformers' {@code UMT5EncoderModel}, keys as {@link #diffusersName}
 * maps them: {@code shared.weight}, {@code encoder.block.N.layer.0.SelfAttention.{q,k,v,o}
 * .weight}, {@code ...layer.0.SelfAttention.relative_attention_bias.weight} (every block has its
 * own in umT5), {@code ...layer.0.layer_norm.weight}, {@code ...layer.1.DenseReluDense.{wi_0,
 * wi_1,wo}.weight} (wi_0 is the GELU-gated branch, t5.py's gate.0; wi_1 is fc1; wo is fc2),
 * {@code ...layer.1.layer_norm.weight}, {@code encoder.final_layer_norm.weight}. No tensor changes
 * shape between the layouts. {@code encoder.embed_tokens.weight}, transformers' tied alias of
 * {@code shared.weight}, is accepted in its place or beside it (then ignored).
 *
 * <p>Types on load: the norms and the position tables become F32; matrices stay as stored when
 * F32 or BF16 (F16 becomes F32), or all become {@code matrixType} when one is given. Every tensor
 * of the file goes through {@link UmT5Weights#of}: a checkpoint that does not fit fails with one
 * {@link InvalidTextEncoderException} listing every missing, unexpected and wrongly shaped
 * tensor under the names the file uses.
 */
public final class UmT5Checkpoint {

    /** The two published key layouts. */
    public enum Layout {
        /** Wan-Video/Wan2.1 t5.py {@code T5Encoder} keys. */
        ORIGINAL,
        /** transformers {@code UMT5EncoderModel} keys. */
        DIFFUSERS
    }

    /** The official checkpoint file in a Wan2.1 model folder (wan/configs/shared_config.py, t5_checkpoint). */
    public static final String ORIGINAL_FILE = "models_t5_umt5-xxl-enc-bf16.pth";
    /** The same weights converted to safetensors (same keys). */
    public static final String ORIGINAL_SAFETENSORS = "models_t5_umt5-xxl-enc-bf16.safetensors";
    /** The folder of a diffusers pipeline that holds the text encoder. */
    public static final String DIFFUSERS_SUBFOLDER = "text_encoder";
    /** The weights file of a transformers model (its shards add "-0000k-of-0000n"). */
    public static final String DIFFUSERS_FILE = "model.safetensors";
    /** transformers' tied copy of shared.weight. */
    public static final String TIED_EMBEDDING = "encoder.embed_tokens.weight";

    private UmT5Checkpoint() {
    }

    // ---- key names ----

    private static final Pattern BLOCK_KEY = Pattern.compile("blocks\\.(\\d+)\\.(.+)");

    /** The transformers key of an official key ({@code blocks.3.ffn.fc1.weight} → {@code encoder.block.3.layer.1.DenseReluDense.wi_1.weight}). */
    public static String diffusersName(String originalKey) {
        switch (originalKey) {
            case "token_embedding.weight":
                return "shared.weight";
            case "norm.weight":
                return "encoder.final_layer_norm.weight";
            default:
                break;
        }
        Matcher block = BLOCK_KEY.matcher(originalKey);
        if (!block.matches()) {
            return originalKey;
        }
        String p = "encoder.block." + block.group(1) + ".layer.";
        return switch (block.group(2)) {
            case "norm1.weight" -> p + "0.layer_norm.weight";
            case "attn.q.weight" -> p + "0.SelfAttention.q.weight";
            case "attn.k.weight" -> p + "0.SelfAttention.k.weight";
            case "attn.v.weight" -> p + "0.SelfAttention.v.weight";
            case "attn.o.weight" -> p + "0.SelfAttention.o.weight";
            case "pos_embedding.embedding.weight" -> p + "0.SelfAttention.relative_attention_bias.weight";
            case "norm2.weight" -> p + "1.layer_norm.weight";
            case "ffn.gate.0.weight" -> p + "1.DenseReluDense.wi_0.weight";
            case "ffn.fc1.weight" -> p + "1.DenseReluDense.wi_1.weight";
            case "ffn.fc2.weight" -> p + "1.DenseReluDense.wo.weight";
            default -> originalKey;
        };
    }

    /** The file's key of every parameter in {@code layout}: official key → stored key. */
    public static Map<String, String> storedNames(UmT5Config config, Layout layout) {
        Map<String, String> names = new LinkedHashMap<>();
        for (String key : config.parameterShapes().keySet()) {
            names.put(key, layout == Layout.DIFFUSERS ? diffusersName(key) : key);
        }
        return names;
    }

    /** The layout the tensor names say: diffusers when any starts with "shared." or "encoder.". */
    static Layout layoutOfNames(List<String> names) {
        for (String name : names) {
            if (name.startsWith("shared.") || name.startsWith("encoder.")) {
                return Layout.DIFFUSERS;
            }
        }
        return Layout.ORIGINAL;
    }

    // ---- locating ----

    /**
     * The weights of {@code path}: a .pth or .safetensors file or index, a folder holding {@value
     * #ORIGINAL_FILE} (or its .safetensors), a text_encoder folder ({@value #DIFFUSERS_FILE} or its
     * index), or a diffusers pipeline folder (its {@code text_encoder/}). The error names every file
     * looked for.
     */
    public static Path locate(Path path) throws IOException {
        if (Files.isRegularFile(path)) {
            return path;
        }
        if (!Files.isDirectory(path)) {
            throw new NoSuchFileException(path.toString(), null, "no umT5 checkpoint file or folder here");
        }
        List<Path> candidates = List.of(path.resolve(ORIGINAL_SAFETENSORS), path.resolve(ORIGINAL_FILE),
                path.resolve(DIFFUSERS_FILE), path.resolve(DIFFUSERS_FILE + ShardedSafetensors.INDEX_SUFFIX),
                path.resolve(DIFFUSERS_SUBFOLDER).resolve(DIFFUSERS_FILE),
                path.resolve(DIFFUSERS_SUBFOLDER).resolve(DIFFUSERS_FILE + ShardedSafetensors.INDEX_SUFFIX));
        for (Path candidate : candidates) {
            if (Files.isRegularFile(candidate)) {
                return candidate;
            }
        }
        List<String> tried = new ArrayList<>();
        candidates.forEach(c -> tried.add(path.relativize(c).toString()));
        throw new NoSuchFileException(path.toString(), null, "no umT5 text encoder found: looked for "
                + String.join(", ", tried));
    }

    // ---- loading ----

    /** The tensors of one file, whichever format it is in. */
    private interface Source extends AutoCloseable {
        List<String> names();

        long[] shape(String name);

        SafetensorsDType dtype(String name);

        Tensor load(String name, Backend backend, DType target) throws IOException;

        @Override
        void close() throws IOException;
    }

    private static Source open(Path file) throws IOException {
        if (file.getFileName().toString().endsWith(".pth")) {
            PthFile pth = PthFile.open(file);
            return new Source() {
                public List<String> names() {
                    return pth.names();
                }

                public long[] shape(String name) {
                    return pth.info(name).shape();
                }

                public SafetensorsDType dtype(String name) {
                    return pth.info(name).dtype();
                }

                public Tensor load(String name, Backend backend, DType target) throws IOException {
                    return pth.load(name, backend, target);
                }

                public void close() throws IOException {
                    pth.close();
                }
            };
        }
        ShardedSafetensors files = ShardedSafetensors.open(file);
        return new Source() {
            public List<String> names() {
                return files.names();
            }

            public long[] shape(String name) {
                return files.info(name).shape();
            }

            public SafetensorsDType dtype(String name) {
                return files.info(name).dtype();
            }

            public Tensor load(String name, Backend backend, DType target) {
                return files.load(name, backend, target);
            }

            public void close() {
                files.close();
            }
        };
    }

    /** Loads a checkpoint of {@code config} (any layout, see {@link #locate}) with matrices as stored. */
    public static UmT5Weights load(Path path, UmT5Config config, Backend backend) throws IOException {
        return load(path, config, backend, null);
    }

    /**
     * Loads a checkpoint onto {@code backend}.
     *
     * @param matrixType F32 or BF16 for every matrix; null to keep them as stored (F16 → F32)
     * @throws InvalidTextEncoderException when the tensors do not fit {@code config}: one message
     *                                     lists every missing, unexpected and wrongly shaped tensor
     */
    public static UmT5Weights load(Path path, UmT5Config config, Backend backend, DType matrixType)
            throws IOException {
        if (matrixType != null && matrixType != DType.F32 && matrixType != DType.BF16) {
            throw new IllegalArgumentException("matrixType must be F32, BF16 or null (as stored), got " + matrixType);
        }
        Path file = locate(path);
        try (Source source = open(file)) {
            List<String> names = source.names();
            Layout layout = layoutOfNames(names);
            Map<String, String> stored = storedNames(config, layout);
            Map<String, String> originalOf = new LinkedHashMap<>();
            stored.forEach((original, name) -> originalOf.put(name, original));
            if (layout == Layout.DIFFUSERS && names.contains(TIED_EMBEDDING)) {
                String embedding = names.contains("shared.weight") ? null : TIED_EMBEDDING;
                if (embedding != null) {
                    originalOf.put(embedding, "token_embedding.weight");
                    stored.put("token_embedding.weight", embedding);
                }
            }
            // Expected tensors first (module order), then the unexpected ones under their stored names.
            List<String> order = new ArrayList<>();
            stored.values().stream().filter(names::contains).forEach(order::add);
            names.stream().filter(n -> !originalOf.containsKey(n))
                    .filter(n -> !(layout == Layout.DIFFUSERS && n.equals(TIED_EMBEDDING))).forEach(order::add);

            Map<String, Tensor> tensors = new LinkedHashMap<>();
            try {
                for (String name : order) {
                    String key = originalOf.getOrDefault(name, name);
                    DType target = !UmT5Weights.isMatrix(key) ? DType.F32
                            : matrixType != null ? matrixType : source.dtype(name).loadedAs();
                    tensors.put(key, source.load(name, backend, target));
                }
                return UmT5Weights.of(config, tensors);
            } catch (IllegalArgumentException e) {
                tensors.values().forEach(Tensor::close);
                throw new InvalidTextEncoderException(file, "(" + layout.name().toLowerCase(Locale.ROOT) + " layout) "
                        + translate(e.getMessage(), stored), e);
            } catch (IOException | RuntimeException e) {
                tensors.values().forEach(Tensor::close);
                throw e;
            }
        }
    }

    private static final Pattern KEY_TOKEN = Pattern.compile("[A-Za-z0-9_.]+");

    /** Rewrites the official keys UmT5Weights.of names into the file's own keys. */
    private static String translate(String message, Map<String, String> stored) {
        Matcher matcher = KEY_TOKEN.matcher(message);
        StringBuilder out = new StringBuilder();
        while (matcher.find()) {
            matcher.appendReplacement(out, Matcher.quoteReplacement(stored.getOrDefault(matcher.group(),
                    matcher.group())));
        }
        matcher.appendTail(out);
        return out.toString();
    }

    // ---- writing ----

    /**
     * Writes {@code weights} as one safetensors file in {@code layout} (each tensor in its own
     * dtype), e.g. {@value #ORIGINAL_SAFETENSORS} or text_encoder/{@value #DIFFUSERS_FILE}.
     */
    public static void write(UmT5Weights weights, Path file, Layout layout) throws IOException {
        SafetensorsWriter writer = new SafetensorsWriter().metadata("format", "pt");
        Map<String, String> stored = storedNames(weights.config(), layout);
        weights.tensors().forEach((key, tensor) -> writer.add(stored.get(key), tensor));
        Path parent = file.toAbsolutePath().getParent();
        if (parent != null) {
            Files.createDirectories(parent);
        }
        writer.write(file);
    }
}
