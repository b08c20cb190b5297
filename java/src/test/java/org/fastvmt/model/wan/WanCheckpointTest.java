package org.fastvmt.model.wan;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;

import org.fastvmt.backend.Backend;
import org.fastvmt.backend.Backends;
import org.fastvmt.backend.Device;
import org.fastvmt.io.safetensors.SafetensorsDType;
import org.fastvmt.io.safetensors.SafetensorsFile;
import org.fastvmt.io.safetensors.SafetensorsWriter;
import org.fastvmt.model.wan.WanCheckpoint.Layout;
import org.fastvmt.tensor.BFloat16;
import org.fastvmt.tensor.DType;
import org.fastvmt.tensor.Tensor;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Wan2.1 checkpoints in both layouts, sharded and not: exact round trips of the tiny model, the
 * published key names and configs, type policy, and one error listing every misfit tensor.
 */
class WanCheckpointTest {

    private static Backend backend;
    private static WanWeights tiny;

    @TempDir
    Path dir;

    @BeforeAll
    static void open() {
        backend = Backends.open(Device.CPU);
        tiny = WanWeights.random(WanConfig.TINY, backend, 7, DType.BF16);
    }

    @AfterAll
    static void close() {
        tiny.close();
        backend.close();
    }

    private static byte[] bytes(Tensor tensor) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment host = arena.allocate(Math.max(1, tensor.byteSize()));
            tensor.copyToHost(host);
            return host.asSlice(0, tensor.byteSize()).toArray(java.lang.foreign.ValueLayout.JAVA_BYTE);
        }
    }

    private static void assertSameWeights(WanWeights expected, WanWeights actual) {
        assertEquals(expected.config(), actual.config());
        assertEquals(List.copyOf(expected.tensors().keySet()), List.copyOf(actual.tensors().keySet()));
        for (Map.Entry<String, Tensor> entry : expected.tensors().entrySet()) {
            Tensor got = actual.get(entry.getKey());
            assertEquals(entry.getValue().dtype(), got.dtype(), entry.getKey());
            assertArrayEquals(entry.getValue().shape(), got.shape(), entry.getKey());
            assertArrayEquals(bytes(entry.getValue()), bytes(got), entry.getKey());
        }
    }

    private static void assertMentions(Exception e, String... parts) {
        for (String part : parts) {
            assertTrue(e.getMessage().contains(part), "expected '" + part + "' in: " + e.getMessage());
        }
    }

    // ---- round trips ----

    @ParameterizedTest(name = "{0}, max shard {1} bytes")
    @CsvSource({"ORIGINAL, 1000000000", "ORIGINAL, 60000", "DIFFUSERS, 1000000000", "DIFFUSERS, 60000"})
    void theTinyModelRoundTripsBitForBit(Layout layout, long maxShardBytes) throws IOException {
        Path folder = dir.resolve("model");
        WanCheckpoint.write(tiny, folder, layout, maxShardBytes);
        boolean sharded = maxShardBytes < 100_000;
        assertEquals(sharded, Files.exists(folder.resolve(WanCheckpoint.INDEX_FILE)));
        assertEquals(!sharded, Files.exists(folder.resolve(WanCheckpoint.WEIGHTS_FILE)));
        long shards = listNames(folder).stream().filter(n -> n.startsWith("diffusion_pytorch_model-0000")).count();
        assertEquals(sharded, shards > 1, listNames(folder).toString());
        assertEquals(layout, WanCheckpoint.detectLayout(folder));
        assertEquals(WanConfig.TINY, WanCheckpoint.readConfig(folder));
        try (WanWeights loaded = WanCheckpoint.load(folder, backend)) {
            assertSameWeights(tiny, loaded);
            // bf16 matrices stay bf16; vectors are f32.
            assertEquals(DType.BF16, loaded.get("blocks.1.self_attn.q.weight").dtype());
            assertEquals(DType.BF16, loaded.get("patch_embedding.weight").dtype());
            assertEquals(DType.F32, loaded.get("blocks.1.modulation").dtype());
            assertEquals(DType.F32, loaded.get("blocks.0.norm3.bias").dtype());
        }
        // Nothing but the checkpoint in the parent folder: no temporary leftovers.
        assertEquals(List.of("model"), listNames(dir));
    }

    private static List<String> listNames(Path folder) throws IOException {
        try (Stream<Path> files = Files.list(folder)) {
            return files.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }

    @Test
    void aDiffusersPipelineFolderIsReadThroughItsTransformerFolder() throws IOException {
        Path pipeline = dir.resolve("Wan2.1-T2V-tiny-Diffusers");
        WanCheckpoint.write(tiny, pipeline.resolve("transformer"), Layout.DIFFUSERS, 1L << 30);
        assertEquals(Layout.DIFFUSERS, WanCheckpoint.detectLayout(pipeline));
        try (WanWeights loaded = WanCheckpoint.load(pipeline, backend)) {
            assertSameWeights(tiny, loaded);
        }
    }

    @Test
    void theDiffusersFileUsesThePublishedNamesAndShapes() throws IOException {
        Path folder = dir.resolve("diffusers");
        WanCheckpoint.write(tiny, folder, Layout.DIFFUSERS, 1L << 30);
        try (SafetensorsFile file = SafetensorsFile.open(folder.resolve(WanCheckpoint.WEIGHTS_FILE))) {
            Map<String, long[]> expected = Map.of(
                    "patch_embedding.weight", new long[] {64, 4, 1, 2, 2},
                    "condition_embedder.time_embedder.linear_1.weight", new long[] {64, 32},
                    "condition_embedder.text_embedder.linear_2.bias", new long[] {64},
                    "condition_embedder.time_proj.weight", new long[] {384, 64},
                    "blocks.1.attn1.to_out.0.weight", new long[] {64, 64},
                    "blocks.0.attn2.norm_k.weight", new long[] {64},
                    "blocks.1.norm2.weight", new long[] {64},
                    "blocks.0.ffn.net.0.proj.weight", new long[] {96, 64},
                    "blocks.0.scale_shift_table", new long[] {1, 6, 64},
                    "scale_shift_table", new long[] {1, 2, 64});
            for (Map.Entry<String, long[]> entry : expected.entrySet()) {
                assertArrayEquals(entry.getValue(), file.info(entry.getKey()).shape(), entry.getKey());
            }
            assertArrayEquals(new long[] {16, 64}, file.info("proj_out.weight").shape());
            assertEquals(WanConfig.TINY.parameterShapes().size(), file.names().size());
            assertFalse(file.names().stream().anyMatch(n -> n.contains("self_attn") || n.contains("norm3")
                    || n.contains("modulation") || n.startsWith("head.")));
            assertEquals(SafetensorsDType.BF16, file.info("blocks.0.attn1.to_q.weight").dtype());
            assertEquals(SafetensorsDType.F32, file.info("blocks.0.attn1.to_q.bias").dtype());
            assertEquals("pt", file.metadata().get("format"));
        }
        JsonObject config = JsonParser.parseString(Files.readString(folder.resolve("config.json"))).getAsJsonObject();
        assertEquals("WanTransformer3DModel", config.get("_class_name").getAsString());
        assertEquals(2, config.get("num_attention_heads").getAsInt());
        assertEquals(32, config.get("attention_head_dim").getAsInt());
        assertEquals(24, config.get("text_dim").getAsInt());
        assertEquals(16, config.get("text_len").getAsInt(), "text_len differs from diffusers' fixed 512");
        assertTrue(config.get("image_dim").isJsonNull());
    }

    // ---- names and configs of the published models ----

    @Test
    void everyParameterOf13BHasADistinctDiffusersName() {
        Map<String, String> names = WanCheckpoint.diffusersNames(WanConfig.WAN_1_3B);
        assertEquals(825, names.size());
        assertEquals(825, new HashSet<>(names.values()).size());
        // TRANSFORMER_KEYS_RENAME_DICT of huggingface/diffusers scripts/convert_wan_to_diffusers.py.
        assertEquals("condition_embedder.time_embedder.linear_2.bias", names.get("time_embedding.2.bias"));
        assertEquals("condition_embedder.text_embedder.linear_1.weight", names.get("text_embedding.0.weight"));
        assertEquals("condition_embedder.time_proj.weight", names.get("time_projection.1.weight"));
        assertEquals("blocks.29.attn2.to_k.weight", names.get("blocks.29.cross_attn.k.weight"));
        assertEquals("blocks.7.attn1.to_out.0.bias", names.get("blocks.7.self_attn.o.bias"));
        assertEquals("blocks.7.attn1.norm_q.weight", names.get("blocks.7.self_attn.norm_q.weight"));
        assertEquals("blocks.12.norm2.bias", names.get("blocks.12.norm3.bias"));
        assertEquals("blocks.3.ffn.net.0.proj.weight", names.get("blocks.3.ffn.0.weight"));
        assertEquals("blocks.3.ffn.net.2.bias", names.get("blocks.3.ffn.2.bias"));
        assertEquals("blocks.0.scale_shift_table", names.get("blocks.0.modulation"));
        assertEquals("proj_out.weight", names.get("head.head.weight"));
        assertEquals("scale_shift_table", names.get("head.modulation"));
        assertEquals("patch_embedding.weight", names.get("patch_embedding.weight"));
    }

    /** The keys of Wan-AI/Wan2.1-T2V-1.3B/config.json (WanModel's registered config). */
    @Test
    void thePublishedOriginalConfigReadsAs13B() throws IOException {
        Path config = dir.resolve("config.json");
        Files.writeString(config, "{\"_class_name\": \"WanModel\", \"_diffusers_version\": \"0.30.0\", \"dim\": 1536,"
                + " \"eps\": 1e-06, \"ffn_dim\": 8960, \"freq_dim\": 256, \"in_dim\": 16, \"model_type\": \"t2v\","
                + " \"num_heads\": 12, \"num_layers\": 30, \"out_dim\": 16, \"text_len\": 512}");
        WanCheckpoint.ConfigFile read = WanCheckpoint.readConfigFile(config);
        assertEquals(Layout.ORIGINAL, read.layout());
        assertEquals(WanConfig.WAN_1_3B, read.config());
        JsonObject written = JsonParser.parseString(WanCheckpoint.configJson(WanConfig.WAN_1_3B, Layout.ORIGINAL))
                .getAsJsonObject();
        assertEquals(Set.of("_class_name", "_diffusers_version", "dim", "eps", "ffn_dim", "freq_dim", "in_dim",
                "model_type", "num_heads", "num_layers", "out_dim", "text_len"), written.keySet());
        assertEquals(JsonParser.parseString(Files.readString(config)), written);
    }

    /** The keys of Wan-AI/Wan2.1-T2V-1.3B-Diffusers/transformer/config.json. */
    @Test
    void thePublishedDiffusersConfigReadsAs13B() throws IOException {
        Path config = dir.resolve("config.json");
        Files.writeString(config, "{\"_class_name\": \"WanTransformer3DModel\", \"_diffusers_version\": \"0.33.0.dev0\","
                + " \"added_kv_proj_dim\": null, \"attention_head_dim\": 128, \"cross_attn_norm\": true,"
                + " \"eps\": 1e-06, \"ffn_dim\": 8960, \"freq_dim\": 256, \"image_dim\": null, \"in_channels\": 16,"
                + " \"num_attention_heads\": 12, \"num_layers\": 30, \"out_channels\": 16, \"patch_size\": [1, 2, 2],"
                + " \"qk_norm\": \"rms_norm_across_heads\", \"rope_max_seq_len\": 1024, \"text_dim\": 4096}");
        WanCheckpoint.ConfigFile read = WanCheckpoint.readConfigFile(config);
        assertEquals(Layout.DIFFUSERS, read.layout());
        assertEquals(WanConfig.WAN_1_3B, read.config());
        assertEquals(JsonParser.parseString(Files.readString(config)),
                JsonParser.parseString(WanCheckpoint.configJson(WanConfig.WAN_1_3B, Layout.DIFFUSERS)));
    }

    @Test
    void refusesConfigsOfOtherModels() throws IOException {
        Path config = dir.resolve("config.json");
        Files.writeString(config, "{\"_class_name\": \"WanModel\", \"dim\": 1536, \"ffn_dim\": 8960, \"in_dim\": 36,"
                + " \"model_type\": \"i2v\", \"num_heads\": 12, \"num_layers\": 30, \"out_dim\": 16}");
        assertMentions(assertThrows(InvalidCheckpointException.class, () -> WanCheckpoint.readConfigFile(config)),
                "model_type is 'i2v'");
        Files.writeString(config, "{\"_class_name\": \"WanTransformer3DModel\", \"attention_head_dim\": 128,"
                + " \"ffn_dim\": 13824, \"in_channels\": 36, \"num_attention_heads\": 40, \"num_layers\": 40,"
                + " \"image_dim\": 1280, \"added_kv_proj_dim\": 5120}");
        assertMentions(assertThrows(InvalidCheckpointException.class, () -> WanCheckpoint.readConfigFile(config)),
                "image_dim is set");
        Files.writeString(config, "{\"_class_name\": \"WanModel\", \"dim\": 1536}");
        assertMentions(assertThrows(InvalidCheckpointException.class, () -> WanCheckpoint.readConfigFile(config)),
                config.toString(), "lacks ffn_dim");
        Files.writeString(config, "{\"_class_name\": \"UNet3DConditionModel\"}");
        assertMentions(assertThrows(InvalidCheckpointException.class, () -> WanCheckpoint.readConfigFile(config)),
                "'UNet3DConditionModel'");
        Files.writeString(config, "{\"_class_name\": \"WanModel\", \"dim\": 1536.5}");
        assertMentions(assertThrows(InvalidCheckpointException.class, () -> WanCheckpoint.readConfigFile(config)),
                "dim is 1536.5, expected an integer");
    }

    // ---- types ----

    @Test
    void f16MatricesBecomeF32AndAMatrixTypeCanBeForced() throws IOException {
        Path folder = dir.resolve("f16");
        Files.createDirectories(folder);
        SafetensorsWriter writer = new SafetensorsWriter();
        for (Map.Entry<String, Tensor> entry : tiny.tensors().entrySet()) {
            boolean matrix = WanWeights.isMatrix(entry.getKey(), entry.getValue().shape());
            writer.addFloats(entry.getKey(), matrix ? SafetensorsDType.F16 : SafetensorsDType.F32,
                    entry.getValue().toFloatArray(), entry.getValue().shape());
        }
        writer.write(folder.resolve(WanCheckpoint.WEIGHTS_FILE));
        Files.writeString(folder.resolve("config.json"), WanCheckpoint.configJson(WanConfig.TINY, Layout.ORIGINAL));
        try (WanWeights loaded = WanCheckpoint.load(folder, backend)) {
            Tensor q = loaded.get("blocks.0.self_attn.q.weight");
            assertEquals(DType.F32, q.dtype());
            float[] original = tiny.get("blocks.0.self_attn.q.weight").toFloatArray();
            float[] got = q.toFloatArray();
            for (int i = 0; i < got.length; i++) {
                assertEquals(Float.float16ToFloat(Float.floatToFloat16(original[i])), got[i]);
            }
        }
        try (WanWeights asBf16 = WanCheckpoint.load(folder, null, backend, DType.BF16)) {
            Tensor q = asBf16.get("blocks.0.self_attn.q.weight");
            assertEquals(DType.BF16, q.dtype());
            float[] original = tiny.get("blocks.0.self_attn.q.weight").toFloatArray();
            float[] got = q.toFloatArray();
            for (int i = 0; i < got.length; i++) {
                assertEquals(BFloat16.round(Float.float16ToFloat(Float.floatToFloat16(original[i]))), got[i]);
            }
            assertEquals(DType.F32, asBf16.get("blocks.0.self_attn.q.bias").dtype());
        }
        Path bf16 = dir.resolve("bf16");
        WanCheckpoint.write(tiny, bf16, Layout.ORIGINAL, 1L << 30);
        try (WanWeights asF32 = WanCheckpoint.load(bf16, null, backend, DType.F32)) {
            assertEquals(DType.F32, asF32.get("head.head.weight").dtype());
            assertArrayEquals(tiny.get("head.head.weight").toFloatArray(), asF32.get("head.head.weight").toFloatArray());
        }
    }

    @Test
    void aSingleFileLoadsWithAGivenConfigOrItsNeighbourConfig() throws IOException {
        Path folder = dir.resolve("single");
        WanCheckpoint.write(tiny, folder, Layout.ORIGINAL, 1L << 30);
        Path file = folder.resolve(WanCheckpoint.WEIGHTS_FILE);
        try (WanWeights loaded = WanCheckpoint.load(file, backend)) {
            assertSameWeights(tiny, loaded);
        }
        Path alone = dir.resolve("alone.safetensors");
        Files.copy(file, alone);
        assertMentions(assertThrows(InvalidCheckpointException.class, () -> WanCheckpoint.load(alone, backend)),
                "no config.json", "heads");
        try (WanWeights loaded = WanCheckpoint.load(alone, WanConfig.TINY, backend, null)) {
            assertSameWeights(tiny, loaded);
        }
    }

    // ---- one error listing every misfit ----

    /** Writes tiny's tensors in {@code layout} minus two, plus two strangers, one of them wrongly shaped. */
    private Path misfit(Layout layout) throws IOException {
        Path folder = dir.resolve("misfit-" + layout);
        Files.createDirectories(folder);
        Map<String, String> stored = WanCheckpoint.storedNames(WanConfig.TINY, layout);
        SafetensorsWriter writer = new SafetensorsWriter();
        for (Map.Entry<String, Tensor> entry : tiny.tensors().entrySet()) {
            String key = entry.getKey();
            if (key.equals("blocks.1.cross_attn.k.weight") || key.equals("time_embedding.2.bias")) {
                continue;
            }
            if (key.equals("blocks.0.ffn.0.weight")) {
                writer.addFloats(stored.get(key), SafetensorsDType.BF16, new float[95 * 64], 95, 64);
                continue;
            }
            writer.add(stored.get(key), entry.getValue());
        }
        String extra = layout == Layout.DIFFUSERS ? "blocks.2.attn1.to_q.weight" : "blocks.2.self_attn.q.weight";
        writer.addFloats(extra, SafetensorsDType.F32, new float[64 * 64], 64, 64);
        writer.addFloats("img_emb.proj.0.weight", SafetensorsDType.F32, new float[4], 4);
        writer.write(folder.resolve(WanCheckpoint.WEIGHTS_FILE));
        Files.writeString(folder.resolve("config.json"), WanCheckpoint.configJson(WanConfig.TINY, layout));
        return folder;
    }

    @Test
    void anOriginalCheckpointThatDoesNotFitListsEveryProblemOnce() throws IOException {
        Path folder = misfit(Layout.ORIGINAL);
        long before = backend.allocatedBytes();
        InvalidCheckpointException e = assertThrows(InvalidCheckpointException.class,
                () -> WanCheckpoint.load(folder, backend));
        assertMentions(e, folder.resolve(WanCheckpoint.WEIGHTS_FILE).toString(), "missing (2)",
                "blocks.1.cross_attn.k.weight", "time_embedding.2.bias", "unexpected (2)", "blocks.2.self_attn.q.weight",
                "img_emb.proj.0.weight", "blocks.0.ffn.0.weight has shape [95, 64], expected [96, 64]");
        assertEquals(before, backend.allocatedBytes(), "the loaded tensors are freed");
    }

    @Test
    void aDiffusersCheckpointThatDoesNotFitListsEveryProblemByItsOwnNames() throws IOException {
        Path folder = misfit(Layout.DIFFUSERS);
        InvalidCheckpointException e = assertThrows(InvalidCheckpointException.class,
                () -> WanCheckpoint.load(folder, backend));
        assertMentions(e, "diffusers layout", "missing (2)", "blocks.1.attn2.to_k.weight",
                "condition_embedder.time_embedder.linear_2.bias", "unexpected (2)", "blocks.2.attn1.to_q.weight",
                "img_emb.proj.0.weight", "blocks.0.ffn.net.0.proj.weight has shape [95, 64], expected [96, 64]");
        assertFalse(e.getMessage().contains("cross_attn"), e.getMessage());
    }

    @Test
    void refusesNamesOfBothLayoutsAndAConfigThatContradictsTheNames() throws IOException {
        Path folder = dir.resolve("mixed");
        Files.createDirectories(folder);
        new SafetensorsWriter()
                .addFloats("blocks.0.self_attn.q.bias", SafetensorsDType.F32, new float[64], 64)
                .addFloats("blocks.0.attn1.to_q.bias", SafetensorsDType.F32, new float[64], 64)
                .write(folder.resolve(WanCheckpoint.WEIGHTS_FILE));
        Files.writeString(folder.resolve("config.json"), WanCheckpoint.configJson(WanConfig.TINY, Layout.ORIGINAL));
        assertMentions(assertThrows(InvalidCheckpointException.class, () -> WanCheckpoint.load(folder, backend)),
                "mix the original layout", "'blocks.0.self_attn.q.bias'", "'blocks.0.attn1.to_q.bias'");

        Path other = dir.resolve("contradiction");
        WanCheckpoint.write(tiny, other, Layout.DIFFUSERS, 1L << 30);
        Files.writeString(other.resolve("config.json"), WanCheckpoint.configJson(WanConfig.TINY, Layout.ORIGINAL));
        assertMentions(assertThrows(InvalidCheckpointException.class, () -> WanCheckpoint.detectLayout(other)),
                "declares the original layout", "diffusers layout");
    }

    // ---- writing is all or nothing ----

    @Test
    void refusesToWriteIntoAFolderThatHoldsFiles() throws IOException {
        Path folder = dir.resolve("taken");
        Files.createDirectories(folder);
        Files.writeString(folder.resolve("notes.txt"), "mine");
        assertThrows(FileAlreadyExistsException.class, () -> WanCheckpoint.write(tiny, folder, Layout.ORIGINAL, 1L << 30));
        assertEquals(List.of("notes.txt"), listNames(folder));

        Path empty = dir.resolve("empty");
        Files.createDirectories(empty);
        WanCheckpoint.write(tiny, empty, Layout.ORIGINAL, 1L << 30);
        assertEquals(List.of("config.json", WanCheckpoint.WEIGHTS_FILE), listNames(empty));
    }

    @Test
    void aFailedWriteLeavesNoFolder() throws IOException {
        WanWeights doomed = WanWeights.random(WanConfig.TINY, backend, 3, DType.F32);
        doomed.close();  // its tensors can no longer be read
        Path folder = dir.resolve("never");
        assertThrows(RuntimeException.class, () -> WanCheckpoint.write(doomed, folder, Layout.DIFFUSERS, 30000));
        assertEquals(List.of(), listNames(dir));
    }
}
