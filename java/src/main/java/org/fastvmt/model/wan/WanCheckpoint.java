package org.fastvmt.model.wan;

import java.io.IOException;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.concurrent.ThreadLocalRandom;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonNull;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import com.google.gson.JsonPrimitive;

import org.fastvmt.backend.Backend;
import org.fastvmt.io.AtomicFiles;
import org.fastvmt.io.safetensors.SafetensorsWriter;
import org.fastvmt.io.safetensors.ShardedSafetensors;
import org.fastvmt.io.safetensors.TensorInfo;
import org.fastvmt.tensor.DType;
import org.fastvmt.tensor.Tensor;

/**
 * Reads and writes Wan2.1 text-to-video DiT checkpoints in the two published layouts.
 *
 * <p><b>Original</b> (Wan-AI/Wan2.1-T2V-1.3B, -14B; {@code WanModel} of Wan-Video/Wan2.1
 * wan/modules/model.py): a folder with {@code config.json} and {@code
 * diffusion_pytorch_model.safetensors}, or shards {@code diffusion_pytorch_model-0000k-of-0000n
 * .safetensors} with {@code diffusion_pytorch_model.safetensors.index.json}; tensor keys are
 * {@link WanConfig#parameterShapes()}. The config is WanModel's registered config: {@code dim,
 * eps, ffn_dim, freq_dim, in_dim, model_type, num_heads, num_layers, out_dim, text_len}. WanModel
 * lists {@code patch_size, cross_attn_norm, qk_norm, text_dim, window_size} in {@code
 * ignore_for_config}, so published configs lack them and the constructor defaults apply:
 * patch (1, 2, 2), text_dim 4096 (model.py, {@code WanModel.__init__}).
 *
 * <p><b>Diffusers</b> (Wan-AI/Wan2.1-T2V-1.3B-Diffusers; {@code WanTransformer3DModel} of
 * huggingface/diffusers src/diffusers/models/transformers/transformer_wan.py): the same file names
 * in the pipeline's {@code transformer/} folder, with keys renamed as
 * scripts/convert_wan_to_diffusers.py ({@code TRANSFORMER_KEYS_RENAME_DICT}) renames them; see
 * {@link #diffusersName}. No tensor changes shape: the block tables ({@code
 * blocks.N.scale_shift_table}, [1, 6, dim]) and the head table ({@code scale_shift_table}, [1, 2,
 * dim]) are the original {@code modulation} parameters as they are (transformer_wan.py declares
 * both with those shapes; a diffusers version that folds the head table into {@code
 * norm_out.linear} does so only while loading, from the stored {@code scale_shift_table}). Config
 * keys: {@code num_attention_heads, attention_head_dim, in_channels, out_channels, text_dim,
 * freq_dim, ffn_dim, num_layers, patch_size, cross_attn_norm, qk_norm, eps, image_dim,
 * added_kv_proj_dim, rope_max_seq_len} (transformer_wan.py, {@code WanTransformer3DModel.__init__};
 * values for 1.3B in convert_wan_to_diffusers.py {@code get_transformer_config}).
 *
 * <p>Types on load: vectors (biases, norm weights, modulation tables) become F32, as the kernels
 * read them; matrices stay as stored when F32 or BF16, and F16 matrices become F32, because no
 * kernel takes F16 (BF16 would lose 3 mantissa bits). A caller may ask for every matrix in F32 or
 * in BF16 instead. Every tensor of the file goes through {@link WanWeights#of}, so a checkpoint
 * that does not fit the config fails with one error listing every missing, unexpected and wrongly
 * shaped tensor, by the names the file uses.
 */
public final class WanCheckpoint {

    /** The two published key layouts. */
    public enum Layout {
        /** Wan-Video/Wan2.1 {@code WanModel} keys ({@link WanConfig#parameterShapes()}). */
        ORIGINAL("WanModel"),
        /** huggingface/diffusers {@code WanTransformer3DModel} keys ({@link #diffusersName}). */
        DIFFUSERS("WanTransformer3DModel");

        private final String className;

        Layout(String className) {
            this.className = className;
        }

        /** The {@code _class_name} of this layout's config.json. */
        public String className() {
            return className;
        }
    }

    /** The weights file of both layouts (its shards add "-0000k-of-0000n"). */
    public static final String WEIGHTS_FILE = "diffusion_pytorch_model.safetensors";
    /** The index of a sharded checkpoint. */
    public static final String INDEX_FILE = WEIGHTS_FILE + ShardedSafetensors.INDEX_SUFFIX;
    public static final String CONFIG_FILE = "config.json";
    /** The folder of a diffusers pipeline that holds the DiT. */
    public static final String DIFFUSERS_SUBFOLDER = "transformer";

    // Defaults of the official constructors for keys a config may lack (see the class comment).
    private static final int DEFAULT_TEXT_DIM = 4096;
    private static final int[] DEFAULT_PATCH = {1, 2, 2};
    private static final float DEFAULT_EPS = 1e-6f;
    /** WanModel's text_len default; diffusers has no key and hard-codes 512 (transformer_wan.py, WanAttnProcessor). */
    private static final int DEFAULT_TEXT_LENGTH = 512;
    private static final int DEFAULT_FREQ_DIM = 256;
    /** rope_params' theta in model.py; neither layout has a key for it. */
    private static final float DEFAULT_ROPE_THETA = 10000f;
    /** Extra keys fastvmt writes only for values the layout cannot express (official loaders ignore them). */
    private static final String EXTRA_TEXT_LEN = "text_len";
    private static final String EXTRA_ROPE_THETA = "rope_theta";

    private WanCheckpoint() {
    }

    /** Where a checkpoint's parts are: its weights (one file or an index) and its config, if any. */
    public record Location(Path weights, Optional<Path> config) {
    }

    /** A config.json read: the layout it declares and the model it describes. */
    public record ConfigFile(Layout layout, WanConfig config) {
    }

    /**
     * Finds the weights and config of {@code path}: a .safetensors file or index (config.json
     * beside it, if present), a model folder of either layout, or a diffusers pipeline folder
     * (its {@code transformer/} subfolder). A folder with both a single file and an index uses the
     * single file, as Hugging Face's loaders do.
     */
    public static Location locate(Path path) throws IOException {
        if (Files.isRegularFile(path)) {
            Path config = path.toAbsolutePath().getParent().resolve(CONFIG_FILE);
            return new Location(path, Files.isRegularFile(config) ? Optional.of(config) : Optional.empty());
        }
        if (!Files.isDirectory(path)) {
            throw new NoSuchFileException(path.toString(), null, "no Wan2.1 checkpoint file or folder here");
        }
        Path folder = path;
        if (!Files.exists(folder.resolve(WEIGHTS_FILE)) && !Files.exists(folder.resolve(INDEX_FILE))
                && Files.isDirectory(folder.resolve(DIFFUSERS_SUBFOLDER))) {
            folder = folder.resolve(DIFFUSERS_SUBFOLDER);
        }
        Path config = folder.resolve(CONFIG_FILE);
        Optional<Path> configFile = Files.isRegularFile(config) ? Optional.of(config) : Optional.empty();
        if (Files.isRegularFile(folder.resolve(WEIGHTS_FILE))) {
            return new Location(folder.resolve(WEIGHTS_FILE), configFile);
        }
        if (Files.isRegularFile(folder.resolve(INDEX_FILE))) {
            return new Location(folder.resolve(INDEX_FILE), configFile);
        }
        throw new NoSuchFileException(folder.toString(), null, "the folder has neither " + WEIGHTS_FILE + " nor "
                + INDEX_FILE + (folder == path ? " nor a " + DIFFUSERS_SUBFOLDER + "/ folder" : ""));
    }

    /**
     * The layout of a checkpoint: from its config.json's {@code _class_name} when it has one,
     * else from its tensor names; an error when the two disagree or the names mix layouts.
     */
    public static Layout detectLayout(Path path) throws IOException {
        Location location = locate(path);
        Optional<ConfigFile> config = location.config().isPresent()
                ? Optional.of(readConfigFile(location.config().get())) : Optional.empty();
        try (ShardedSafetensors files = ShardedSafetensors.open(location.weights())) {
            return resolveLayout(location, config, files.names());
        }
    }

    /** The model config of a checkpoint (file or folder, either layout) from its config.json. */
    public static WanConfig readConfig(Path path) throws IOException {
        Path config = Files.isRegularFile(path) && path.getFileName().toString().equals(CONFIG_FILE) ? path
                : locate(path).config().orElseThrow(() -> new NoSuchFileException(path.toString(), null,
                        "no " + CONFIG_FILE + " found for this checkpoint"));
        return readConfigFile(config).config();
    }

    /** Reads a config.json of either layout (the layout from {@code _class_name}, else from its keys). */
    public static ConfigFile readConfigFile(Path file) throws IOException {
        JsonObject json;
        try {
            JsonElement parsed = JsonParser.parseString(Files.readString(file, StandardCharsets.UTF_8));
            if (!parsed.isJsonObject()) {
                throw new InvalidCheckpointException(file, "the config is not a JSON object");
            }
            json = parsed.getAsJsonObject();
        } catch (JsonParseException e) {
            throw new InvalidCheckpointException(file, "the config is not valid JSON: " + e.getMessage());
        }
        Layout layout;
        String className = json.has("_class_name") && !json.get("_class_name").isJsonNull()
                ? json.get("_class_name").getAsString() : null;
        if (Layout.ORIGINAL.className().equals(className)) {
            layout = Layout.ORIGINAL;
        } else if (Layout.DIFFUSERS.className().equals(className)) {
            layout = Layout.DIFFUSERS;
        } else if (className != null) {
            throw new InvalidCheckpointException(file, "_class_name is '" + className + "', expected "
                    + Layout.ORIGINAL.className() + " or " + Layout.DIFFUSERS.className());
        } else if (json.has("num_attention_heads")) {
            layout = Layout.DIFFUSERS;
        } else if (json.has("num_heads")) {
            layout = Layout.ORIGINAL;
        } else {
            throw new InvalidCheckpointException(file, "the config has no _class_name, num_heads or"
                    + " num_attention_heads: not a Wan2.1 DiT config");
        }
        ConfigReader reader = new ConfigReader(file, json);
        WanConfig config = layout == Layout.ORIGINAL ? reader.original() : reader.diffusers();
        return new ConfigFile(layout, config);
    }

    /** Typed access to a config object, with errors naming the file and key. */
    private record ConfigReader(Path file, JsonObject json) {

        WanConfig original() throws InvalidCheckpointException {
            String modelType = optionalString("model_type", "t2v");
            if (!modelType.equals("t2v")) {
                throw new InvalidCheckpointException(file, "model_type is '" + modelType
                        + "'; fastvmt runs the text-to-video model (t2v)");
            }
            int[] patch = patch("patch_size");
            return named(new WanConfig("custom", integer("dim"), integer("ffn_dim"),
                    optionalInteger("freq_dim", DEFAULT_FREQ_DIM), optionalInteger("text_dim", DEFAULT_TEXT_DIM),
                    integer("in_dim"), integer("out_dim"), integer("num_heads"), integer("num_layers"),
                    patch[0], patch[1], patch[2], optionalFloat("eps", DEFAULT_EPS),
                    optionalInteger("text_len", DEFAULT_TEXT_LENGTH),
                    optionalFloat(EXTRA_ROPE_THETA, DEFAULT_ROPE_THETA)));
        }

        WanConfig diffusers() throws InvalidCheckpointException {
            if (json.has("cross_attn_norm") && !json.get("cross_attn_norm").isJsonNull()
                    && !json.get("cross_attn_norm").getAsBoolean()) {
                throw new InvalidCheckpointException(file, "cross_attn_norm is false; the Wan2.1 T2V models have"
                        + " an affine norm before cross-attention (blocks.N.norm2)");
            }
            String qkNorm = optionalString("qk_norm", "rms_norm_across_heads");
            if (!qkNorm.equals("rms_norm_across_heads")) {
                throw new InvalidCheckpointException(file, "qk_norm is '" + qkNorm
                        + "', expected rms_norm_across_heads (RMSNorm over all heads, as in Wan2.1)");
            }
            for (String imageKey : new String[] {"image_dim", "added_kv_proj_dim", "pos_embed_seq_len"}) {
                if (json.has(imageKey) && !json.get(imageKey).isJsonNull()) {
                    throw new InvalidCheckpointException(file, imageKey + " is set: an image-to-video model;"
                            + " fastvmt runs the text-to-video model");
                }
            }
            int heads = integer("num_attention_heads");
            int headDim = integer("attention_head_dim");
            int inChannels = integer("in_channels");
            // diffusers: out_channels = out_channels or in_channels.
            int outChannels = json.has("out_channels") && !json.get("out_channels").isJsonNull()
                    ? integer("out_channels") : inChannels;
            int[] patch = patch("patch_size");
            return named(new WanConfig("custom", Math.multiplyExact(heads, headDim), integer("ffn_dim"),
                    optionalInteger("freq_dim", DEFAULT_FREQ_DIM), optionalInteger("text_dim", DEFAULT_TEXT_DIM),
                    inChannels, outChannels, heads, integer("num_layers"), patch[0], patch[1], patch[2],
                    optionalFloat("eps", DEFAULT_EPS), optionalInteger(EXTRA_TEXT_LEN, DEFAULT_TEXT_LENGTH),
                    optionalFloat(EXTRA_ROPE_THETA, DEFAULT_ROPE_THETA)));
        }

        /** The known config (1.3b, 14b, tiny) equal to {@code config} in everything but its name. */
        private WanConfig named(WanConfig config) {
            for (WanConfig known : new WanConfig[] {WanConfig.WAN_1_3B, WanConfig.WAN_14B, WanConfig.TINY}) {
                if (rename(config, known.name()).equals(known)) {
                    return known;
                }
            }
            return config;
        }

        private int integer(String key) throws InvalidCheckpointException {
            if (!json.has(key) || json.get(key).isJsonNull()) {
                throw new InvalidCheckpointException(file, "the config lacks " + key);
            }
            return toInt(key, json.get(key));
        }

        private int optionalInteger(String key, int fallback) throws InvalidCheckpointException {
            return json.has(key) && !json.get(key).isJsonNull() ? toInt(key, json.get(key)) : fallback;
        }

        private int toInt(String key, JsonElement value) throws InvalidCheckpointException {
            try {
                if (value.isJsonPrimitive() && value.getAsJsonPrimitive().isNumber()) {
                    return new BigDecimal(value.getAsString()).intValueExact();
                }
            } catch (ArithmeticException | NumberFormatException e) {
                // reported below
            }
            throw new InvalidCheckpointException(file, key + " is " + value + ", expected an integer");
        }

        private float optionalFloat(String key, float fallback) throws InvalidCheckpointException {
            if (!json.has(key) || json.get(key).isJsonNull()) {
                return fallback;
            }
            JsonElement value = json.get(key);
            if (!value.isJsonPrimitive() || !value.getAsJsonPrimitive().isNumber()) {
                throw new InvalidCheckpointException(file, key + " is " + value + ", expected a number");
            }
            return value.getAsFloat();
        }

        private String optionalString(String key, String fallback) throws InvalidCheckpointException {
            if (!json.has(key) || json.get(key).isJsonNull()) {
                return fallback;
            }
            JsonElement value = json.get(key);
            if (!value.isJsonPrimitive() || !value.getAsJsonPrimitive().isString()) {
                throw new InvalidCheckpointException(file, key + " is " + value + ", expected a string");
            }
            return value.getAsString();
        }

        private int[] patch(String key) throws InvalidCheckpointException {
            if (!json.has(key) || json.get(key).isJsonNull()) {
                return DEFAULT_PATCH.clone();
            }
            JsonElement value = json.get(key);
            if (!value.isJsonArray() || value.getAsJsonArray().size() != 3) {
                throw new InvalidCheckpointException(file, key + " is " + value + ", expected [t, h, w]");
            }
            int[] patch = new int[3];
            for (int i = 0; i < 3; i++) {
                patch[i] = toInt(key + "[" + i + "]", value.getAsJsonArray().get(i));
            }
            return patch;
        }
    }

    private static WanConfig rename(WanConfig c, String name) {
        return new WanConfig(name, c.dim(), c.ffnDim(), c.freqDim(), c.textDim(), c.inDim(), c.outDim(), c.heads(),
                c.layers(), c.patchT(), c.patchH(), c.patchW(), c.eps(), c.textLength(), c.ropeTheta());
    }

    // ---- key names ----

    /** Renames of scripts/convert_wan_to_diffusers.py, as (original prefix, diffusers prefix) pairs. */
    private static final String[][] TOP_LEVEL_RENAMES = {
        {"text_embedding.0.", "condition_embedder.text_embedder.linear_1."},
        {"text_embedding.2.", "condition_embedder.text_embedder.linear_2."},
        {"time_embedding.0.", "condition_embedder.time_embedder.linear_1."},
        {"time_embedding.2.", "condition_embedder.time_embedder.linear_2."},
        {"time_projection.1.", "condition_embedder.time_proj."},
        {"head.head.", "proj_out."},
    };

    /** The same inside blocks.N. ("norm3" is the affine cross-attention norm, diffusers' norm2). */
    private static final String[][] BLOCK_RENAMES = {
        {"self_attn.q.", "attn1.to_q."},
        {"self_attn.k.", "attn1.to_k."},
        {"self_attn.v.", "attn1.to_v."},
        {"self_attn.o.", "attn1.to_out.0."},
        {"self_attn.norm_q.", "attn1.norm_q."},
        {"self_attn.norm_k.", "attn1.norm_k."},
        {"cross_attn.q.", "attn2.to_q."},
        {"cross_attn.k.", "attn2.to_k."},
        {"cross_attn.v.", "attn2.to_v."},
        {"cross_attn.o.", "attn2.to_out.0."},
        {"cross_attn.norm_q.", "attn2.norm_q."},
        {"cross_attn.norm_k.", "attn2.norm_k."},
        {"norm3.", "norm2."},
        {"ffn.0.", "ffn.net.0.proj."},
        {"ffn.2.", "ffn.net.2."},
    };

    private static final Pattern BLOCK_KEY = Pattern.compile("blocks\\.(\\d+)\\.(.+)");

    /**
     * The diffusers key of an original-layout key (e.g. {@code blocks.3.norm3.weight} →
     * {@code blocks.3.norm2.weight}, {@code head.modulation} → {@code scale_shift_table}). Keys
     * that the conversion leaves alone (patch_embedding.*) come back unchanged.
     */
    public static String diffusersName(String originalKey) {
        if (originalKey.equals("head.modulation")) {
            return "scale_shift_table";
        }
        Matcher block = BLOCK_KEY.matcher(originalKey);
        if (block.matches()) {
            String prefix = "blocks." + block.group(1) + ".";
            String rest = block.group(2);
            if (rest.equals("modulation")) {
                return prefix + "scale_shift_table";
            }
            return prefix + renamed(rest, BLOCK_RENAMES);
        }
        return renamed(originalKey, TOP_LEVEL_RENAMES);
    }

    private static String renamed(String key, String[][] renames) {
        for (String[] rename : renames) {
            if (key.startsWith(rename[0])) {
                return rename[1] + key.substring(rename[0].length());
            }
        }
        return key;
    }

    /** Every parameter of {@code config}: original key → diffusers key, in module order. */
    public static Map<String, String> diffusersNames(WanConfig config) {
        Map<String, String> names = new LinkedHashMap<>();
        for (String key : config.parameterShapes().keySet()) {
            names.put(key, diffusersName(key));
        }
        return names;
    }

    /** The file's key of every parameter in {@code layout}: original key → stored key. */
    public static Map<String, String> storedNames(WanConfig config, Layout layout) {
        if (layout == Layout.DIFFUSERS) {
            return diffusersNames(config);
        }
        Map<String, String> names = new LinkedHashMap<>();
        config.parameterShapes().keySet().forEach(key -> names.put(key, key));
        return names;
    }

    private static final List<String> ORIGINAL_MARKERS = List.of("time_embedding.", "text_embedding.",
            "time_projection.", "head.", ".self_attn.", ".cross_attn.", ".modulation", ".norm3.");
    private static final List<String> DIFFUSERS_MARKERS = List.of("condition_embedder.", "proj_out.",
            "scale_shift_table", ".attn1.", ".attn2.", ".ffn.net.");

    /** The layout the names say, empty when they say neither; an error when they say both. */
    static Optional<Layout> layoutOfNames(Path path, List<String> names) throws InvalidCheckpointException {
        String original = names.stream().filter(n -> hasMarker(n, ORIGINAL_MARKERS)).findFirst().orElse(null);
        String diffusers = names.stream().filter(n -> hasMarker(n, DIFFUSERS_MARKERS)).findFirst().orElse(null);
        if (original != null && diffusers != null) {
            throw new InvalidCheckpointException(path, "the tensor names mix the original layout (e.g. '" + original
                    + "') and the diffusers layout (e.g. '" + diffusers + "')");
        }
        return original != null ? Optional.of(Layout.ORIGINAL)
                : diffusers != null ? Optional.of(Layout.DIFFUSERS) : Optional.empty();
    }

    private static boolean hasMarker(String name, List<String> markers) {
        for (String marker : markers) {
            if (marker.startsWith(".") ? name.contains(marker) : name.startsWith(marker)) {
                return true;
            }
        }
        return false;
    }

    private static Layout resolveLayout(Location location, Optional<ConfigFile> config, List<String> names)
            throws InvalidCheckpointException {
        Optional<Layout> fromNames = layoutOfNames(location.weights(), names);
        if (config.isPresent() && fromNames.isPresent() && config.get().layout() != fromNames.get()) {
            throw new InvalidCheckpointException(location.weights(), location.config().orElseThrow()
                    + " declares the " + config.get().layout().name().toLowerCase(Locale.ROOT) + " layout but the tensors"
                    + " are named in the " + fromNames.get().name().toLowerCase(Locale.ROOT) + " layout");
        }
        return fromNames.orElse(config.map(ConfigFile::layout).orElse(Layout.ORIGINAL));
    }

    // ---- loading ----

    /** Loads a checkpoint (file or folder, either layout) with its config.json; matrices as stored. */
    public static WanWeights load(Path path, Backend backend) throws IOException {
        return load(path, null, backend, null);
    }

    /**
     * Loads a checkpoint onto {@code backend}.
     *
     * @param path       a .safetensors file or index, a model folder, or a diffusers pipeline folder
     * @param config     the model; null to read it from the checkpoint's config.json (required then:
     *                   the number of heads is in no tensor's shape)
     * @param matrixType F32 or BF16 for every matrix; null to keep them as stored (F16 → F32)
     * @throws InvalidCheckpointException when the tensors do not fit the config (one message
     *                                    listing every missing, unexpected and wrongly shaped
     *                                    tensor) or the config is not a Wan2.1 T2V config
     */
    public static WanWeights load(Path path, WanConfig config, Backend backend, DType matrixType) throws IOException {
        if (matrixType != null && matrixType != DType.F32 && matrixType != DType.BF16) {
            throw new IllegalArgumentException("matrixType must be F32, BF16 or null (as stored), got " + matrixType);
        }
        Location location = locate(path);
        Optional<ConfigFile> configFile = location.config().isPresent()
                ? Optional.of(readConfigFile(location.config().get())) : Optional.empty();
        WanConfig model = config != null ? config : configFile.map(ConfigFile::config).orElseThrow(
                () -> new InvalidCheckpointException(path, "no " + CONFIG_FILE + " beside the weights, and no"
                        + " WanConfig given: the number of attention heads is not in the tensors"));
        try (ShardedSafetensors files = ShardedSafetensors.open(location.weights())) {
            Layout layout = resolveLayout(location, configFile, files.names());
            Map<String, String> stored = storedNames(model, layout);
            Map<String, String> originalOf = new LinkedHashMap<>();
            stored.forEach((original, name) -> originalOf.put(name, original));

            // Expected tensors first, in module order, then the unexpected ones under their stored names.
            List<String> order = new ArrayList<>();
            stored.forEach((original, name) -> {
                if (files.contains(name)) {
                    order.add(name);
                }
            });
            files.names().stream().filter(name -> !originalOf.containsKey(name)).forEach(order::add);

            Map<String, Tensor> tensors = new LinkedHashMap<>();
            try {
                for (String name : order) {
                    String key = originalOf.getOrDefault(name, name);
                    TensorInfo info = files.info(name);
                    DType target = targetType(key, info, matrixType);
                    if (tensors.put(key, files.load(name, backend, target)) != null) {
                        throw new InvalidCheckpointException(location.weights(), "tensor '" + name
                                + "' and another tensor both stand for '" + key + "'");
                    }
                }
                return WanWeights.of(model, tensors);
            } catch (IllegalArgumentException e) {
                tensors.values().forEach(Tensor::close);
                String message = layout == Layout.DIFFUSERS ? translate(e.getMessage(), stored) : e.getMessage();
                throw new InvalidCheckpointException(location.weights(), "(" + layout.name().toLowerCase(Locale.ROOT)
                        + " layout) " + message, e);
            } catch (IOException | RuntimeException e) {
                tensors.values().forEach(Tensor::close);
                throw e;
            }
        }
    }

    /** Vectors load as F32; matrices as asked, or as stored with F16 widened to F32. */
    private static DType targetType(String key, TensorInfo info, DType matrixType) {
        if (!WanWeights.isMatrix(key, info.shape())) {
            return DType.F32;
        }
        return matrixType != null ? matrixType : info.dtype().loadedAs();
    }

    private static final Pattern KEY_TOKEN = Pattern.compile("[A-Za-z0-9_.]+");

    /** Rewrites the original keys WanWeights.of names into the checkpoint's own (diffusers) keys. */
    private static String translate(String message, Map<String, String> stored) {
        Matcher matcher = KEY_TOKEN.matcher(message);
        StringBuilder out = new StringBuilder();
        while (matcher.find()) {
            matcher.appendReplacement(out, Matcher.quoteReplacement(stored.getOrDefault(matcher.group(), matcher.group())));
        }
        matcher.appendTail(out);
        return out.toString();
    }

    // ---- writing ----

    /**
     * Writes {@code weights} as a checkpoint folder {@code dir} in {@code layout}: config.json and
     * diffusion_pytorch_model.safetensors, or shards of at most {@code maxShardBytes} of data plus
     * their index. Tensors are stored in their own dtype. The folder is written whole or not at
     * all: everything goes into a temporary folder beside {@code dir}, which is then renamed to
     * {@code dir}. {@code dir} must not exist or be an empty folder.
     */
    public static void write(WanWeights weights, Path dir, Layout layout, long maxShardBytes) throws IOException {
        Path target = dir.toAbsolutePath().normalize();
        if (Files.exists(target) && !isEmptyFolder(target)) {
            throw new FileAlreadyExistsException(target.toString(), null,
                    "exists and is not an empty folder; a checkpoint is written into a new folder");
        }
        Path parent = target.getParent();
        Files.createDirectories(parent);
        Path temp = createTemporaryFolderBeside(target);
        boolean moved = false;
        try {
            AtomicFiles.write(temp.resolve(CONFIG_FILE), configJson(weights.config(), layout)
                    .getBytes(StandardCharsets.UTF_8));
            SafetensorsWriter writer = new SafetensorsWriter().metadata("format", "pt");
            Map<String, String> stored = storedNames(weights.config(), layout);
            for (Map.Entry<String, Tensor> entry : weights.tensors().entrySet()) {
                writer.add(stored.getOrDefault(entry.getKey(), entry.getKey()), entry.getValue());
            }
            ShardedSafetensors.write(temp, WEIGHTS_FILE, writer, maxShardBytes);
            // A rename replaces an empty folder in one step, or creates the name.
            Files.move(temp, target, StandardCopyOption.ATOMIC_MOVE);
            moved = true;
        } finally {
            if (!moved) {
                deleteTree(temp);
            }
        }
    }

    private static boolean isEmptyFolder(Path folder) throws IOException {
        if (!Files.isDirectory(folder)) {
            return false;
        }
        try (Stream<Path> entries = Files.list(folder)) {
            return entries.findAny().isEmpty();
        }
    }

    private static Path createTemporaryFolderBeside(Path target) throws IOException {
        while (true) {
            String random = Long.toUnsignedString(ThreadLocalRandom.current().nextLong(), 36);
            try {
                return Files.createDirectory(target.resolveSibling("." + target.getFileName() + "." + random + ".tmp"));
            } catch (FileAlreadyExistsException e) {
                // drawn before: draw again
            }
        }
    }

    /** Deletes the temporary folder this class created (and only what is inside it). */
    private static void deleteTree(Path folder) throws IOException {
        if (!Files.exists(folder)) {
            return;
        }
        try (Stream<Path> walk = Files.walk(folder)) {
            for (Path path : walk.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(path);
            }
        }
    }

    /**
     * The config.json of {@code config} in {@code layout}, keys sorted as save_pretrained writes
     * them. Values a layout has no key for are written under an extra key only when they differ
     * from the official default (original: text_dim, patch_size; diffusers: text_len; both:
     * rope_theta), so the configs of the published models come out with the published keys.
     */
    public static String configJson(WanConfig config, Layout layout) {
        Map<String, JsonElement> keys = new TreeMap<>();
        keys.put("_class_name", new JsonPrimitive(layout.className()));
        JsonArray patch = new JsonArray();
        patch.add(config.patchT());
        patch.add(config.patchH());
        patch.add(config.patchW());
        boolean defaultPatch = config.patchT() == DEFAULT_PATCH[0] && config.patchH() == DEFAULT_PATCH[1]
                && config.patchW() == DEFAULT_PATCH[2];
        JsonPrimitive eps = new JsonPrimitive(Double.parseDouble(Float.toString(config.eps())));
        if (layout == Layout.ORIGINAL) {
            keys.put("_diffusers_version", new JsonPrimitive("0.30.0"));
            keys.put("model_type", new JsonPrimitive("t2v"));
            keys.put("dim", new JsonPrimitive(config.dim()));
            keys.put("eps", eps);
            keys.put("ffn_dim", new JsonPrimitive(config.ffnDim()));
            keys.put("freq_dim", new JsonPrimitive(config.freqDim()));
            keys.put("in_dim", new JsonPrimitive(config.inDim()));
            keys.put("num_heads", new JsonPrimitive(config.heads()));
            keys.put("num_layers", new JsonPrimitive(config.layers()));
            keys.put("out_dim", new JsonPrimitive(config.outDim()));
            keys.put("text_len", new JsonPrimitive(config.textLength()));
            if (config.textDim() != DEFAULT_TEXT_DIM) {
                keys.put("text_dim", new JsonPrimitive(config.textDim()));
            }
            if (!defaultPatch) {
                keys.put("patch_size", patch);
            }
        } else {
            keys.put("_diffusers_version", new JsonPrimitive("0.33.0.dev0"));
            keys.put("added_kv_proj_dim", JsonNull.INSTANCE);
            keys.put("attention_head_dim", new JsonPrimitive(config.headDim()));
            keys.put("cross_attn_norm", new JsonPrimitive(true));
            keys.put("eps", eps);
            keys.put("ffn_dim", new JsonPrimitive(config.ffnDim()));
            keys.put("freq_dim", new JsonPrimitive(config.freqDim()));
            keys.put("image_dim", JsonNull.INSTANCE);
            keys.put("in_channels", new JsonPrimitive(config.inDim()));
            keys.put("num_attention_heads", new JsonPrimitive(config.heads()));
            keys.put("num_layers", new JsonPrimitive(config.layers()));
            keys.put("out_channels", new JsonPrimitive(config.outDim()));
            keys.put("patch_size", patch);
            keys.put("qk_norm", new JsonPrimitive("rms_norm_across_heads"));
            keys.put("rope_max_seq_len", new JsonPrimitive(1024));
            keys.put("text_dim", new JsonPrimitive(config.textDim()));
            if (config.textLength() != DEFAULT_TEXT_LENGTH) {
                keys.put(EXTRA_TEXT_LEN, new JsonPrimitive(config.textLength()));
            }
        }
        if (config.ropeTheta() != DEFAULT_ROPE_THETA) {
            keys.put(EXTRA_ROPE_THETA, new JsonPrimitive(Double.parseDouble(Float.toString(config.ropeTheta()))));
        }
        JsonObject json = new JsonObject();
        keys.forEach(json::add);
        return new GsonBuilder().serializeNulls().setPrettyPrinting().disableHtmlEscaping().create().toJson(json) + "\n";
    }
}
