package org.fastvmt.model;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.Consumer;

import org.fastvmt.backend.Backend;
import org.fastvmt.io.pytorch.PthFile;
import org.fastvmt.io.safetensors.SafetensorsFile;
import org.fastvmt.io.safetensors.ShardedSafetensors;
import org.fastvmt.model.t5.UmT5Checkpoint;
import org.fastvmt.model.t5.UmT5Config;
import org.fastvmt.model.t5.UmT5Tokenizer;
import org.fastvmt.model.t5.UmT5Weights;
import org.fastvmt.model.vae.WanVaeConfig;
import org.fastvmt.model.vae.WanVaeWeights;
import org.fastvmt.model.wan.WanCheckpoint;
import org.fastvmt.model.wan.WanConfig;
import org.fastvmt.model.wan.WanWeights;
import org.fastvmt.tensor.DType;

/**
 * A Wan2.1 text-to-video model folder: the DiT, the VAE, the umT5 text encoder and its tokenizer,
 * in one of the two published layouts.
 *
 * <p><b>Official</b> (Wan-AI/Wan2.1-T2V-1.3B; file names from Wan-Video/Wan2.1
 * wan/configs/shared_config.py and wan_t2v_1_3B.py: {@code t5_checkpoint}, {@code t5_tokenizer},
 * {@code vae_checkpoint}): {@code config.json} and {@code diffusion_pytorch_model.safetensors}
 * (or shards and their index) at the top, {@code Wan2.1_VAE.pth}, {@code
 * models_t5_umt5-xxl-enc-bf16.pth} and {@code google/umt5-xxl/tokenizer.json}. After {@code
 * fastvmt convert} the two .pth files are .safetensors files of the same name; either is read.
 *
 * <p><b>Diffusers</b> (Wan-AI/Wan2.1-T2V-1.3B-Diffusers, a {@code WanPipeline}): {@code
 * transformer/} (config.json and diffusion_pytorch_model.safetensors or shards), {@code vae/}
 * (diffusion_pytorch_model.safetensors), {@code text_encoder/} (model.safetensors or shards and
 * model.safetensors.index.json) and {@code tokenizer/tokenizer.json}.
 *
 * <p>A folder with a {@code transformer/} folder is read as diffusers, any other as official.
 * {@link #open} finds every component before anything is loaded; a missing one is an error that
 * names the files looked for in both layouts. The VAE and the text encoder state no config in
 * the official layout, so their configs are those of the known models ({@link WanVaeConfig#WAN21},
 * {@link WanVaeConfig#TINY}; {@link UmT5Config#XXL}, {@link UmT5Config#TINY}) whose tensor shapes
 * the checkpoint has. The components load one at a time ({@link #loadDit}, {@link #loadVae},
 * {@link #loadTextEncoder}), so that a caller can free each before loading the next.
 */
public final class ModelFolder {

    /** The two published layouts. */
    public enum Layout {
        OFFICIAL, DIFFUSERS
    }

    public static final String VAE_PTH = "Wan2.1_VAE.pth";
    public static final String VAE_SAFETENSORS = "Wan2.1_VAE.safetensors";
    public static final String DIFFUSERS_VAE = "vae";
    public static final String DIFFUSERS_TOKENIZER = UmT5Tokenizer.DIFFUSERS_SUBFOLDER;

    private final Path root;
    private final Layout layout;
    private final Path ditFolder;
    private final Path vaeFile;
    private final Path textEncoderFile;
    private final Path tokenizerFile;
    private final WanConfig ditConfig;
    private final WanVaeConfig vaeConfig;
    private final UmT5Config textConfig;

    private ModelFolder(Path root, Layout layout, Path ditFolder, Path vaeFile, Path textEncoderFile,
            Path tokenizerFile) throws IOException {
        this.root = root;
        this.layout = layout;
        this.ditFolder = ditFolder;
        this.vaeFile = vaeFile;
        this.textEncoderFile = textEncoderFile;
        this.tokenizerFile = tokenizerFile;
        this.ditConfig = WanCheckpoint.readConfig(ditFolder);
        this.vaeConfig = vaeConfigOf(vaeFile);
        this.textConfig = textConfigOf(textEncoderFile);
        List<String> problems = new ArrayList<>();
        if (vaeConfig.zDim() != ditConfig.inDim()) {
            problems.add("the VAE's latent has " + vaeConfig.zDim() + " channels but the DiT takes in_dim "
                    + ditConfig.inDim());
        }
        if (vaeConfig.zDim() != ditConfig.outDim()) {
            problems.add("the VAE's latent has " + vaeConfig.zDim() + " channels but the DiT gives out_dim "
                    + ditConfig.outDim());
        }
        if (textConfig.dim() != ditConfig.textDim()) {
            problems.add("the text encoder gives " + textConfig.dim() + "-wide embeddings but the DiT takes text_dim "
                    + ditConfig.textDim());
        }
        if (textConfig.textLength() > ditConfig.textLength()) {
            problems.add("the text encoder gives " + textConfig.textLength() + " tokens but the DiT takes text_len "
                    + ditConfig.textLength());
        }
        if (!problems.isEmpty()) {
            throw new IOException(root + ": the components do not fit together: " + String.join("; ", problems));
        }
    }

    /**
     * Finds and checks every component of {@code root} (files present, configs known, widths that
     * fit together); loads no weights.
     *
     * @throws java.nio.file.NoSuchFileException when a component is missing (the message names, for
     *                                           each, the files looked for in both layouts)
     */
    public static ModelFolder open(Path root) throws IOException {
        if (!Files.isDirectory(root)) {
            throw new java.nio.file.NoSuchFileException(root.toString(), null,
                    Files.exists(root) ? "not a folder (a Wan2.1 model folder was expected)" : "no such folder");
        }
        Layout layout = Files.isDirectory(root.resolve(WanCheckpoint.DIFFUSERS_SUBFOLDER)) ? Layout.DIFFUSERS
                : Layout.OFFICIAL;
        List<String> missing = new ArrayList<>();
        Path dit = layout == Layout.DIFFUSERS ? root.resolve(WanCheckpoint.DIFFUSERS_SUBFOLDER) : root;
        boolean ditWeights = Files.isRegularFile(dit.resolve(WanCheckpoint.WEIGHTS_FILE))
                || Files.isRegularFile(dit.resolve(WanCheckpoint.INDEX_FILE));
        if (!ditWeights || !Files.isRegularFile(dit.resolve(WanCheckpoint.CONFIG_FILE))) {
            missing.add("the DiT: looked for " + WanCheckpoint.CONFIG_FILE + " and " + WanCheckpoint.WEIGHTS_FILE
                    + " (or " + WanCheckpoint.INDEX_FILE + ") (official layout), "
                    + WanCheckpoint.DIFFUSERS_SUBFOLDER + "/" + WanCheckpoint.CONFIG_FILE + " and "
                    + WanCheckpoint.DIFFUSERS_SUBFOLDER + "/" + WanCheckpoint.WEIGHTS_FILE + " (or its index) "
                    + "(diffusers layout)");
        }
        Path vae = first(layout == Layout.DIFFUSERS
                ? List.of(root.resolve(DIFFUSERS_VAE).resolve(WanCheckpoint.WEIGHTS_FILE))
                : List.of(root.resolve(VAE_SAFETENSORS), root.resolve(VAE_PTH)));
        if (vae == null) {
            missing.add("the VAE: looked for " + VAE_PTH + " or " + VAE_SAFETENSORS + " (official layout), "
                    + DIFFUSERS_VAE + "/" + WanCheckpoint.WEIGHTS_FILE + " (diffusers layout)");
        }
        String t5Index = UmT5Checkpoint.DIFFUSERS_FILE + ShardedSafetensors.INDEX_SUFFIX;
        Path textEncoder = first(layout == Layout.DIFFUSERS
                ? List.of(root.resolve(UmT5Checkpoint.DIFFUSERS_SUBFOLDER).resolve(UmT5Checkpoint.DIFFUSERS_FILE),
                        root.resolve(UmT5Checkpoint.DIFFUSERS_SUBFOLDER).resolve(t5Index))
                : List.of(root.resolve(UmT5Checkpoint.ORIGINAL_SAFETENSORS), root.resolve(UmT5Checkpoint.ORIGINAL_FILE)));
        if (textEncoder == null) {
            missing.add("the text encoder: looked for " + UmT5Checkpoint.ORIGINAL_FILE + " or "
                    + UmT5Checkpoint.ORIGINAL_SAFETENSORS + " (official layout), "
                    + UmT5Checkpoint.DIFFUSERS_SUBFOLDER + "/" + UmT5Checkpoint.DIFFUSERS_FILE + " (or "
                    + UmT5Checkpoint.DIFFUSERS_SUBFOLDER + "/" + t5Index + ") (diffusers layout)");
        }
        Path tokenizer = first(List.of(layout == Layout.DIFFUSERS
                ? root.resolve(DIFFUSERS_TOKENIZER).resolve(UmT5Tokenizer.FILE)
                : root.resolve(UmT5Tokenizer.ORIGINAL_SUBFOLDER).resolve(UmT5Tokenizer.FILE)));
        if (tokenizer == null) {
            missing.add("the tokenizer: looked for " + UmT5Tokenizer.ORIGINAL_SUBFOLDER + "/" + UmT5Tokenizer.FILE
                    + " (official layout), " + DIFFUSERS_TOKENIZER + "/" + UmT5Tokenizer.FILE + " (diffusers layout)");
        }
        if (!missing.isEmpty()) {
            throw new java.nio.file.NoSuchFileException(root.toString(), null, "the model folder ("
                    + (layout == Layout.DIFFUSERS ? "diffusers" : "official") + " layout, since it "
                    + (layout == Layout.DIFFUSERS ? "has a " : "has no ") + WanCheckpoint.DIFFUSERS_SUBFOLDER
                    + "/ folder) lacks " + String.join("; ", missing));
        }
        return new ModelFolder(root, layout, dit, vae, textEncoder, tokenizer);
    }

    private static Path first(List<Path> candidates) {
        for (Path candidate : candidates) {
            if (Files.isRegularFile(candidate)) {
                return candidate;
            }
        }
        return null;
    }

    public Path root() {
        return root;
    }

    public Layout layout() {
        return layout;
    }

    public WanConfig ditConfig() {
        return ditConfig;
    }

    public WanVaeConfig vaeConfig() {
        return vaeConfig;
    }

    public UmT5Config textEncoderConfig() {
        return textConfig;
    }

    /** The folder of the DiT checkpoint (the root, or transformer/). */
    public Path ditFolder() {
        return ditFolder;
    }

    public Path vaeFile() {
        return vaeFile;
    }

    public Path textEncoderFile() {
        return textEncoderFile;
    }

    public Path tokenizerFile() {
        return tokenizerFile;
    }

    /** The DiT's weights (matrices as stored, or in {@code matrixType}); the caller closes them. */
    public WanWeights loadDit(Backend backend, DType matrixType) throws IOException {
        return WanCheckpoint.load(ditFolder, ditConfig, backend, matrixType);
    }

    /** The VAE's weights; the caller closes them. */
    public WanVaeWeights loadVae(Backend backend) throws IOException {
        return WanVaeWeights.load(vaeConfig, vaeFile, backend);
    }

    /** The text encoder's weights (matrices as stored); the caller closes them. */
    public UmT5Weights loadTextEncoder(Backend backend) throws IOException {
        return UmT5Checkpoint.load(textEncoderFile, textConfig, backend);
    }

    /** The tokenizer, returning at most the DiT's text length of ids; truncations go to {@code warnings}. */
    public UmT5Tokenizer openTokenizer(Consumer<String> warnings) throws IOException {
        return UmT5Tokenizer.open(tokenizerFile, Math.min(ditConfig.textLength(), textConfig.textLength()), warnings);
    }

    // ---- writing a tiny folder ----

    /**
     * Writes a complete, randomly initialised tiny model folder ({@link WanConfig#TINY}, {@link
     * WanVaeConfig#TINY}, {@link UmT5Config#TINY} and the {@link org.fastvmt.model.t5.TinyTokenizer})
     * in {@code layout}, deterministic for {@code seed}. The official layout gets the VAE and
     * the text encoder as .safetensors (the form {@code fastvmt convert} gives the .pth files).
     * Everything is written into a temporary folder beside {@code target}, renamed to it at the
     * end; on failure nothing is left. {@code target} must not exist or be an empty folder.
     */
    public static void writeTiny(Path target, Layout layout, long seed, DType matrixType, Backend backend)
            throws IOException {
        Path folder = target.toAbsolutePath().normalize();
        Files.createDirectories(folder.getParent());
        Path temp = Files.createTempDirectory(folder.getParent(), "." + folder.getFileName() + ".");
        boolean moved = false;
        try {
            boolean diffusers = layout == Layout.DIFFUSERS;
            try (WanWeights dit = WanWeights.random(WanConfig.TINY, backend, seed, matrixType)) {
                Path ditFolder = diffusers ? temp.resolve(WanCheckpoint.DIFFUSERS_SUBFOLDER) : temp;
                WanCheckpoint.write(dit, ditFolder, diffusers ? WanCheckpoint.Layout.DIFFUSERS
                        : WanCheckpoint.Layout.ORIGINAL, Long.MAX_VALUE);
            }
            WanVaeConfig vae = WanVaeConfig.TINY;
            java.util.Map<String, float[]> values = WanVaeWeights.randomParameters(vae, seed + 1);
            org.fastvmt.io.safetensors.SafetensorsWriter vaeWriter = new org.fastvmt.io.safetensors.SafetensorsWriter()
                    .metadata("format", "pt");
            for (WanVaeConfig.Parameter p : vae.parameters()) {
                vaeWriter.addFloats(diffusers ? p.diffusersKey() : p.key(),
                        org.fastvmt.io.safetensors.SafetensorsDType.F32, values.get(p.key()), p.shape());
            }
            if (diffusers) {
                Files.createDirectories(temp.resolve(DIFFUSERS_VAE));
                vaeWriter.write(temp.resolve(DIFFUSERS_VAE).resolve(WanCheckpoint.WEIGHTS_FILE));
                Files.writeString(temp.resolve(DIFFUSERS_VAE).resolve(WanCheckpoint.CONFIG_FILE), vaeConfigJson(vae));
            } else {
                vaeWriter.write(temp.resolve(VAE_SAFETENSORS));
            }
            try (UmT5Weights t5 = UmT5Weights.random(UmT5Config.TINY, backend, seed + 2, matrixType)) {
                if (diffusers) {
                    Path dir = temp.resolve(UmT5Checkpoint.DIFFUSERS_SUBFOLDER);
                    UmT5Checkpoint.write(t5, dir.resolve(UmT5Checkpoint.DIFFUSERS_FILE), UmT5Checkpoint.Layout.DIFFUSERS);
                    Files.writeString(dir.resolve(WanCheckpoint.CONFIG_FILE), textConfigJson(UmT5Config.TINY));
                } else {
                    UmT5Checkpoint.write(t5, temp.resolve(UmT5Checkpoint.ORIGINAL_SAFETENSORS),
                            UmT5Checkpoint.Layout.ORIGINAL);
                }
            }
            org.fastvmt.model.t5.TinyTokenizer.write(diffusers ? temp.resolve(DIFFUSERS_TOKENIZER)
                    : temp.resolve(UmT5Tokenizer.ORIGINAL_SUBFOLDER));
            // A rename replaces an empty folder in one step, or creates the name.
            Files.move(temp, folder, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
            moved = true;
        } finally {
            if (!moved) {
                deleteTree(temp);
            }
        }
    }

    /** diffusers' AutoencoderKLWan config keys (autoencoder_kl_wan.py). */
    private static String vaeConfigJson(WanVaeConfig c) {
        return "{\n  \"_class_name\": \"AutoencoderKLWan\",\n  \"base_dim\": " + c.dim() + ",\n  \"z_dim\": "
                + c.zDim() + ",\n  \"dim_mult\": " + Arrays.toString(c.dimMult()) + ",\n  \"num_res_blocks\": "
                + c.numResBlocks() + ",\n  \"attn_scales\": [],\n  \"temperal_downsample\": "
                + Arrays.toString(c.temporalDownsample()) + ",\n  \"dropout\": 0.0,\n  \"latents_mean\": "
                + Arrays.toString(c.latentMean()) + ",\n  \"latents_std\": " + Arrays.toString(c.latentStd())
                + "\n}\n";
    }

    /** transformers' UMT5Config keys. */
    private static String textConfigJson(UmT5Config c) {
        return "{\n  \"architectures\": [\"UMT5EncoderModel\"],\n  \"model_type\": \"umt5\",\n  \"vocab_size\": "
                + c.vocab() + ",\n  \"d_model\": " + c.dim() + ",\n  \"d_kv\": " + c.headDim()
                + ",\n  \"d_ff\": " + c.ffnDim() + ",\n  \"num_heads\": " + c.heads() + ",\n  \"num_layers\": "
                + c.layers() + ",\n  \"relative_attention_num_buckets\": " + c.numBuckets()
                + ",\n  \"relative_attention_max_distance\": " + c.maxDistance() + ",\n  \"layer_norm_epsilon\": "
                + c.eps() + ",\n  \"feed_forward_proj\": \"gated-gelu\"\n}\n";
    }

    private static void deleteTree(Path root) throws IOException {
        if (!Files.exists(root)) {
            return;
        }
        try (java.util.stream.Stream<Path> walk = Files.walk(root)) {
            for (Path p : walk.sorted(java.util.Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }

    // ---- configs from shapes ----

    /** The known VAE whose every parameter the file has, with as many elements (either key layout); loading checks the shapes. */
    static WanVaeConfig vaeConfigOf(Path file) throws IOException {
        List<WanVaeConfig> known = List.of(WanVaeConfig.WAN21, WanVaeConfig.TINY);
        try (Shapes shapes = Shapes.open(file)) {
            for (WanVaeConfig config : known) {
                boolean fits = true;
                for (WanVaeConfig.Parameter p : config.parameters()) {
                    long[] got = shapes.shape(p.key());
                    if (got == null) {
                        got = shapes.shape(p.diffusersKey());
                    }
                    if (got == null || count(got) != count(p.shape())) {
                        fits = false;
                        break;
                    }
                }
                if (fits) {
                    return config;
                }
            }
            long[] first = shapes.shape("encoder.conv1.weight");
            if (first == null) {
                first = shapes.shape("encoder.conv_in.weight");
            }
            throw new IOException(file + ": not a Wan2.1 VAE of a known size (wan2.1: dim 96, tiny: dim 8); its "
                    + "first convolution is " + (first == null ? "missing (encoder.conv1.weight)" : Arrays.toString(first)));
        }
    }

    /** The known umT5 whose every parameter the file has, with as many elements (either key layout); loading checks the shapes. */
    static UmT5Config textConfigOf(Path file) throws IOException {
        List<UmT5Config> known = List.of(UmT5Config.XXL, UmT5Config.TINY);
        try (Shapes shapes = Shapes.open(file)) {
            for (UmT5Config config : known) {
                boolean fits = true;
                for (var entry : config.parameterShapes().entrySet()) {
                    long[] expected = entry.getValue();
                    long[] got = shapes.shape(entry.getKey());
                    if (got == null) {
                        got = shapes.shape(UmT5Checkpoint.diffusersName(entry.getKey()));
                    }
                    if (got == null || count(got) != count(expected)) {
                        fits = false;
                        break;
                    }
                }
                if (fits) {
                    return config;
                }
            }
            long[] embedding = shapes.shape("token_embedding.weight");
            if (embedding == null) {
                embedding = shapes.shape("shared.weight");
            }
            throw new IOException(file + ": not a umT5 encoder of a known size (umt5-xxl, tiny); its token "
                    + "embedding is " + (embedding == null ? "missing (token_embedding.weight)" : Arrays.toString(embedding)));
        }
    }

    /** Elements of a shape: configs are told apart by sizes, so a layout that squeezes a dim still matches. */
    private static long count(long[] shape) {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        return n;
    }

    /** Tensor shapes of a .pth or .safetensors file (or index), read from its header only. */
    private interface Shapes extends AutoCloseable {
        /** The shape of {@code name}, or null when the file has no such tensor. */
        long[] shape(String name);

        @Override
        void close() throws IOException;

        static Shapes open(Path file) throws IOException {
            String name = file.getFileName().toString().toLowerCase(java.util.Locale.ROOT);
            if (name.endsWith(".pth") || name.endsWith(".pt")) {
                PthFile pth = PthFile.open(file);
                return new Shapes() {
                    public long[] shape(String key) {
                        return pth.contains(key) ? pth.info(key).shape() : null;
                    }

                    public void close() throws IOException {
                        pth.close();
                    }
                };
            }
            if (ShardedSafetensors.isIndex(file)) {
                ShardedSafetensors sharded = ShardedSafetensors.open(file);
                return new Shapes() {
                    public long[] shape(String key) {
                        return sharded.contains(key) ? sharded.info(key).shape() : null;
                    }

                    public void close() {
                        sharded.close();
                    }
                };
            }
            SafetensorsFile st = SafetensorsFile.open(file);
            return new Shapes() {
                public long[] shape(String key) {
                    return st.tensors().containsKey(key) ? st.info(key).shape() : null;
                }

                public void close() {
                    st.close();
                }
            };
        }
    }
}
