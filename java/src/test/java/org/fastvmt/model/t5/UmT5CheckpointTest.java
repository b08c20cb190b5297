package org.fastvmt.model.t5;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Map;

import org.fastvmt.backend.Backend;
import org.fastvmt.backend.Device;
import org.fastvmt.io.pytorch.TorchSaveFixture;
import org.fastvmt.io.safetensors.SafetensorsDType;
import org.fastvmt.io.safetensors.SafetensorsWriter;
import org.fastvmt.reference.OpenBackends;
import org.fastvmt.tensor.DType;
import org.fastvmt.tensor.Tensor;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Tiny umT5 checkpoints written here in the official layout (safetensors, and a torch.save .pth
 * built by {@link TorchSaveFixture}) and in the transformers layout load to the same model; key
 * names of both layouts; the tied embedding alias; one error listing every problem.
 */
class UmT5CheckpointTest {

    private static final UmT5Config TINY = UmT5Config.TINY;
    private static final OpenBackends BACKENDS = new OpenBackends();

    @AfterAll
    static void closeBackends() {
        BACKENDS.close();
    }

    private static Backend cpu() {
        return BACKENDS.get(Device.CPU);
    }

    private static void assertSameWeights(UmT5Weights expected, UmT5Weights actual) {
        assertEquals(expected.tensors().keySet(), actual.tensors().keySet());
        expected.tensors().forEach((key, tensor) -> {
            Tensor other = actual.get(key);
            assertEquals(tensor.dtype(), other.dtype(), key);
            assertArrayEquals(tensor.shape(), other.shape(), key);
            assertArrayEquals(tensor.toFloatArray(), other.toFloatArray(), key);
        });
    }

    @Test
    void keyNamesOfBothLayouts() {
        assertEquals("shared.weight", UmT5Checkpoint.diffusersName("token_embedding.weight"));
        assertEquals("encoder.final_layer_norm.weight", UmT5Checkpoint.diffusersName("norm.weight"));
        assertEquals("encoder.block.3.layer.0.layer_norm.weight", UmT5Checkpoint.diffusersName("blocks.3.norm1.weight"));
        assertEquals("encoder.block.3.layer.0.SelfAttention.o.weight",
                UmT5Checkpoint.diffusersName("blocks.3.attn.o.weight"));
        assertEquals("encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
                UmT5Checkpoint.diffusersName("blocks.0.pos_embedding.embedding.weight"));
        assertEquals("encoder.block.23.layer.1.layer_norm.weight", UmT5Checkpoint.diffusersName("blocks.23.norm2.weight"));
        assertEquals("encoder.block.1.layer.1.DenseReluDense.wi_0.weight",
                UmT5Checkpoint.diffusersName("blocks.1.ffn.gate.0.weight"));
        assertEquals("encoder.block.1.layer.1.DenseReluDense.wi_1.weight",
                UmT5Checkpoint.diffusersName("blocks.1.ffn.fc1.weight"));
        assertEquals("encoder.block.1.layer.1.DenseReluDense.wo.weight",
                UmT5Checkpoint.diffusersName("blocks.1.ffn.fc2.weight"));
        // XXL: 1 + 24 · 10 + 1 tensors, the published count of models_t5_umt5-xxl-enc-bf16.pth.
        assertEquals(242, UmT5Config.XXL.parameterShapes().size());
        assertArrayEquals(new long[] {32, 64},
                UmT5Config.XXL.parameterShapes().get("blocks.5.pos_embedding.embedding.weight"));
        assertArrayEquals(new long[] {10240, 4096}, UmT5Config.XXL.parameterShapes().get("blocks.5.ffn.gate.0.weight"));
        assertArrayEquals(new long[] {256384, 4096}, UmT5Config.XXL.parameterShapes().get("token_embedding.weight"));
    }

    @Test
    void bothLayoutsAndThePthLoadToTheSameModel(@TempDir Path dir) throws IOException {
        Backend backend = cpu();
        try (UmT5Weights weights = UmT5Weights.random(TINY, backend, 21, DType.BF16)) {
            Path original = dir.resolve("wan").resolve(UmT5Checkpoint.ORIGINAL_SAFETENSORS);
            UmT5Checkpoint.write(weights, original, UmT5Checkpoint.Layout.ORIGINAL);
            Path diffusers = dir.resolve("pipe").resolve(UmT5Checkpoint.DIFFUSERS_SUBFOLDER)
                    .resolve(UmT5Checkpoint.DIFFUSERS_FILE);
            UmT5Checkpoint.write(weights, diffusers, UmT5Checkpoint.Layout.DIFFUSERS);
            Path pth = writePth(weights, dir.resolve("pth").resolve(UmT5Checkpoint.ORIGINAL_FILE));

            try (UmT5Weights a = UmT5Checkpoint.load(dir.resolve("wan"), TINY, backend);
                    UmT5Weights b = UmT5Checkpoint.load(dir.resolve("pipe"), TINY, backend);
                    UmT5Weights c = UmT5Checkpoint.load(dir.resolve("pth"), TINY, backend)) {
                assertSameWeights(weights, a);
                assertSameWeights(weights, b);
                assertSameWeights(weights, c);
                try (Tensor x = new UmT5Encoder(a).encode(new int[] {3, 1});
                        Tensor y = new UmT5Encoder(b).encode(new int[] {3, 1})) {
                    assertArrayEquals(x.toFloatArray(), y.toFloatArray());
                }
            }
            assertEquals(pth, UmT5Checkpoint.locate(dir.resolve("pth")));
            // matrixType converts every matrix, and only matrices.
            try (UmT5Weights f32 = UmT5Checkpoint.load(pth, TINY, backend, DType.F32)) {
                assertEquals(DType.F32, f32.get("token_embedding.weight").dtype());
                assertArrayEquals(weights.get("blocks.0.attn.q.weight").toFloatArray(),
                        f32.get("blocks.0.attn.q.weight").toFloatArray());
            }
        }
    }

    /** The official state dict as torch.save writes it: one storage per tensor, bf16 matrices. */
    private static Path writePth(UmT5Weights weights, Path file) throws IOException {
        TorchSaveFixture fixture = new TorchSaveFixture();
        int n = 0;
        for (Map.Entry<String, Tensor> entry : weights.tensors().entrySet()) {
            String key = Integer.toString(n++);
            Tensor tensor = entry.getValue();
            SafetensorsDType dtype = tensor.dtype() == DType.BF16 ? SafetensorsDType.BF16 : SafetensorsDType.F32;
            fixture.storage(key, dtype, tensor.toFloatArray());
            fixture.put(entry.getKey(), TorchSaveFixture.contiguous(key, 0, tensor.shape()));
        }
        java.nio.file.Files.createDirectories(file.getParent());
        return fixture.write(file);
    }

    @Test
    void theTiedEmbeddingAliasIsAccepted(@TempDir Path dir) throws IOException {
        Backend backend = cpu();
        try (UmT5Weights weights = UmT5Weights.random(TINY, backend, 22, DType.F32)) {
            Map<String, String> names = UmT5Checkpoint.storedNames(TINY, UmT5Checkpoint.Layout.DIFFUSERS);
            // Beside shared.weight (as transformers may save it), and alone.
            SafetensorsWriter both = new SafetensorsWriter();
            weights.tensors().forEach((key, tensor) -> both.add(names.get(key), tensor));
            both.add(UmT5Checkpoint.TIED_EMBEDDING, weights.get("token_embedding.weight"));
            both.write(dir.resolve("both.safetensors"));
            SafetensorsWriter alone = new SafetensorsWriter();
            weights.tensors().forEach((key, tensor) -> alone.add(key.equals("token_embedding.weight")
                    ? UmT5Checkpoint.TIED_EMBEDDING : names.get(key), tensor));
            alone.write(dir.resolve("alone.safetensors"));
            try (UmT5Weights a = UmT5Checkpoint.load(dir.resolve("both.safetensors"), TINY, backend);
                    UmT5Weights b = UmT5Checkpoint.load(dir.resolve("alone.safetensors"), TINY, backend)) {
                assertSameWeights(weights, a);
                assertSameWeights(weights, b);
            }
        }
    }

    @Test
    void oneErrorListsEveryProblemUnderTheFilesNames(@TempDir Path dir) throws IOException {
        Backend backend = cpu();
        try (UmT5Weights weights = UmT5Weights.random(TINY, backend, 23, DType.F32);
                Tensor wrong = Tensor.zeros(backend, DType.F32, 5, 4);
                Tensor extra = Tensor.zeros(backend, DType.F32, 3)) {
            Map<String, String> names = UmT5Checkpoint.storedNames(TINY, UmT5Checkpoint.Layout.DIFFUSERS);
            SafetensorsWriter writer = new SafetensorsWriter();
            weights.tensors().forEach((key, tensor) -> {
                if (key.equals("blocks.1.ffn.fc1.weight")) {
                    return; // missing
                }
                writer.add(names.get(key), key.equals("blocks.0.pos_embedding.embedding.weight") ? wrong : tensor);
            });
            writer.add("encoder.block.0.layer.2.extra.weight", extra);
            Path file = dir.resolve(UmT5Checkpoint.DIFFUSERS_FILE);
            writer.write(file);
            InvalidTextEncoderException e = assertThrows(InvalidTextEncoderException.class,
                    () -> UmT5Checkpoint.load(dir, TINY, backend));
            String message = e.getMessage();
            assertTrue(message.startsWith(file.toString()), message);
            assertTrue(message.contains("diffusers layout"), message);
            assertTrue(message.contains("missing (1): encoder.block.1.layer.1.DenseReluDense.wi_1.weight"), message);
            assertTrue(message.contains("unexpected (1): encoder.block.0.layer.2.extra.weight"), message);
            assertTrue(message.contains("encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight has"
                    + " shape [5, 4], expected [8, 4]"), message);
        }
        NoSuchFileException none = assertThrows(NoSuchFileException.class,
                () -> UmT5Checkpoint.load(dir.resolve("nothing"), TINY, backend));
        assertTrue(none.getMessage().contains("no umT5 checkpoint"), none.getMessage());
        java.nio.file.Files.createDirectories(dir.resolve("empty"));
        NoSuchFileException empty = assertThrows(NoSuchFileException.class,
                () -> UmT5Checkpoint.load(dir.resolve("empty"), TINY, backend));
        assertTrue(empty.getMessage().contains(UmT5Checkpoint.ORIGINAL_FILE)
                && empty.getMessage().contains("text_encoder/model.safetensors"), empty.getMessage());
    }
}
