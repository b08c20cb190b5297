package org.fastvmt.io.safetensors;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Sharded checkpoints: writing with an index, reading them as one set, and refusing inconsistent ones. */
class ShardedSafetensorsTest {

    @TempDir
    Path dir;

    /** Ten F32 tensors "t0".."t9" of 10·(i+1) bytes… as floats i, i+1, …. */
    private static SafetensorsWriter tensors() {
        SafetensorsWriter writer = new SafetensorsWriter().metadata("format", "pt");
        for (int i = 0; i < 10; i++) {
            float[] values = new float[i + 2];
            for (int j = 0; j < values.length; j++) {
                values[j] = i + j * 0.25f;
            }
            writer.addFloats("t" + i, SafetensorsDType.F32, values, values.length);
        }
        return writer;
    }

    private static void assertMentions(Exception e, String... parts) {
        for (String part : parts) {
            assertTrue(e.getMessage().contains(part), "expected '" + part + "' in: " + e.getMessage());
        }
    }

    @Test
    void shardsAreNamedLikeSavePretrained() {
        assertEquals("diffusion_pytorch_model-00002-of-00006.safetensors",
                ShardedSafetensors.shardName("diffusion_pytorch_model.safetensors", 2, 6));
    }

    @Test
    void writesOneFileWhenEverythingFits() throws IOException {
        SafetensorsWriter writer = tensors();
        List<Path> written = ShardedSafetensors.write(dir, "model.safetensors", writer, writer.dataBytes());
        assertEquals(List.of(dir.resolve("model.safetensors")), written);
        try (ShardedSafetensors read = ShardedSafetensors.open(written.get(0))) {
            assertEquals(10, read.names().size());
            assertEquals(1, read.files().size());
            assertEquals(Map.of("format", "pt"), read.metadata());
        }
    }

    @Test
    void writesShardsAndAnIndexThatReadBackAsOneSet() throws IOException {
        SafetensorsWriter writer = tensors();
        long max = 40;  // t0..t9 hold 8, 12, …, 44 bytes
        List<Path> written = ShardedSafetensors.write(dir, "model.safetensors", writer, max);
        Path index = dir.resolve("model.safetensors.index.json");
        assertEquals(index, written.get(written.size() - 1));
        int shards = written.size() - 1;
        assertTrue(shards > 3, "expected several shards, got " + written);
        for (int k = 0; k < shards; k++) {
            assertEquals(dir.resolve(ShardedSafetensors.shardName("model.safetensors", k + 1, shards)), written.get(k));
            try (SafetensorsFile shard = SafetensorsFile.open(written.get(k))) {
                // At most max bytes, unless one tensor alone is larger (t9: 44 bytes).
                assertTrue(shard.dataBytes() <= max || shard.names().size() == 1, shard.toString());
                assertEquals(Map.of("format", "pt"), shard.metadata());
            }
        }
        JsonObject json = JsonParser.parseString(Files.readString(index)).getAsJsonObject();
        assertEquals(writer.dataBytes(), json.getAsJsonObject("metadata").get("total_size").getAsLong());
        assertEquals(10, json.getAsJsonObject("weight_map").size());

        try (ShardedSafetensors read = ShardedSafetensors.open(index)) {
            assertEquals(shards, read.files().size());
            assertEquals(String.valueOf(writer.dataBytes()), read.metadata().get("total_size"));
            List<String> names = new ArrayList<>(read.names());
            names.sort(null);
            assertEquals(List.of("t0", "t1", "t2", "t3", "t4", "t5", "t6", "t7", "t8", "t9"), names);
            for (int i = 0; i < 10; i++) {
                float[] values = read.readF32("t" + i);
                assertEquals(i + 2, values.length);
                assertEquals(i + 0.25f * (i + 1), values[i + 1]);
                assertEquals(SafetensorsDType.F32, read.info("t" + i).dtype());
            }
        }
    }

    /** Writes a sharded set and returns its index path; each test then breaks one thing. */
    private Path sharded() throws IOException {
        List<Path> written = ShardedSafetensors.write(dir, "model.safetensors", tensors(), 40);
        return written.get(written.size() - 1);
    }

    private String shardOf(Path index, String tensor) throws IOException {
        return JsonParser.parseString(Files.readString(index)).getAsJsonObject().getAsJsonObject("weight_map")
                .get(tensor).getAsString();
    }

    @Test
    void refusesAMissingShard() throws IOException {
        Path index = sharded();
        String shard = shardOf(index, "t9");
        Files.delete(dir.resolve(shard));
        InvalidSafetensorsException e = assertThrows(InvalidSafetensorsException.class,
                () -> ShardedSafetensors.open(index));
        assertMentions(e, index.toString(), "shard '" + shard + "'", "'t9'", "does not exist");
    }

    @Test
    void refusesATensorMissingFromItsShard() throws IOException {
        Path index = sharded();
        String t0 = shardOf(index, "t0");
        String t9 = shardOf(index, "t9");
        String text = Files.readString(index).replace("\"t0\": \"" + t0 + "\"", "\"t0\": \"" + t9 + "\"");
        Files.writeString(index, text);
        InvalidSafetensorsException e = assertThrows(InvalidSafetensorsException.class,
                () -> ShardedSafetensors.open(index));
        // t0 is not where the index says, and its real shard holds a tensor the index sends elsewhere.
        assertMentions(e, "maps tensor 't0' to shard '" + t9 + "', which does not hold it",
                "shard '" + t0 + "' holds tensor 't0', which the index sends to shard '" + t9 + "'");
    }

    @Test
    void refusesATensorInTwoShards() throws IOException {
        new SafetensorsWriter().addFloats("a", SafetensorsDType.F32, new float[] {1}, 1)
                .write(dir.resolve("m-00001-of-00002.safetensors"));
        new SafetensorsWriter().addFloats("a", SafetensorsDType.F32, new float[] {2}, 1)
                .addFloats("b", SafetensorsDType.F32, new float[] {3}, 1)
                .write(dir.resolve("m-00002-of-00002.safetensors"));
        Path index = dir.resolve("m.safetensors.index.json");
        Files.writeString(index, "{\"metadata\": {}, \"weight_map\": {\"a\": \"m-00001-of-00002.safetensors\","
                + " \"b\": \"m-00002-of-00002.safetensors\"}}");
        InvalidSafetensorsException e = assertThrows(InvalidSafetensorsException.class,
                () -> ShardedSafetensors.open(index));
        assertMentions(e, "tensor 'a' is in both shard 'm-00001-of-00002.safetensors' and shard"
                + " 'm-00002-of-00002.safetensors'");
    }

    @Test
    void refusesMalformedIndexes() throws IOException {
        Path index = dir.resolve("m.safetensors.index.json");
        Files.writeString(index, "{\"weight_map\": ");
        assertMentions(assertThrows(InvalidSafetensorsException.class, () -> ShardedSafetensors.open(index)),
                "not valid JSON");
        Files.writeString(index, "[]");
        assertMentions(assertThrows(InvalidSafetensorsException.class, () -> ShardedSafetensors.open(index)),
                "not a JSON object");
        Files.writeString(index, "{\"metadata\": {}}");
        assertMentions(assertThrows(InvalidSafetensorsException.class, () -> ShardedSafetensors.open(index)),
                "no weight_map");
        Files.writeString(index, "{\"weight_map\": {\"a\": \"../elsewhere.safetensors\"}}");
        assertMentions(assertThrows(InvalidSafetensorsException.class, () -> ShardedSafetensors.open(index)),
                "'../elsewhere.safetensors'", "file name in the index's folder");
        Files.writeString(index, "{\"weight_map\": {\"a\": \"x.safetensors\", \"a\": \"x.safetensors\"}}");
        assertMentions(assertThrows(InvalidSafetensorsException.class, () -> ShardedSafetensors.open(index)),
                "lists tensor 'a' twice");
        Files.writeString(index, "{\"weight_map\": {\"a\": 3}}");
        assertMentions(assertThrows(InvalidSafetensorsException.class, () -> ShardedSafetensors.open(index)),
                "entry 'a' is not a shard file name");
        Files.delete(index);
        assertThrows(NoSuchFileException.class, () -> ShardedSafetensors.open(index));
    }

    @Test
    void aBrokenShardIsReportedByItsOwnName() throws IOException {
        Path index = sharded();
        String shard = shardOf(index, "t3");
        Files.write(dir.resolve(shard), "not a safetensors file".getBytes(StandardCharsets.UTF_8));
        InvalidSafetensorsException e = assertThrows(InvalidSafetensorsException.class,
                () -> ShardedSafetensors.open(index));
        assertTrue(e.getMessage().startsWith(dir.resolve(shard).toString()), e.getMessage());
    }

    @Test
    void aSingleFileOpensAsASet() throws IOException {
        Path file = dir.resolve("one.safetensors");
        new SafetensorsWriter().addFloats("x", SafetensorsDType.BF16, new float[] {1, 2, 3}, 3).write(file);
        try (ShardedSafetensors read = ShardedSafetensors.open(file)) {
            assertEquals(List.of("x"), read.names());
            assertArrayEquals(new float[] {1, 2, 3}, read.readF32("x"));
            assertThrows(IllegalArgumentException.class, () -> read.info("y"));
        }
    }
}
