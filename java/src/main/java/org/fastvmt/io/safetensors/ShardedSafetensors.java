package org.fastvmt.io.safetensors;

import java.io.Closeable;
import java.io.IOException;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;

import com.google.gson.JsonElement;
import com.google.gson.JsonParser;
import com.google.gson.Strictness;
import com.google.gson.stream.JsonReader;
import com.google.gson.stream.JsonToken;
import com.google.gson.stream.JsonWriter;

import org.fastvmt.backend.Backend;
import org.fastvmt.io.AtomicFiles;
import org.fastvmt.tensor.DType;
import org.fastvmt.tensor.Tensor;

/**
 * The tensors of one .safetensors file, or of a sharded checkpoint, as one set.
 *
 * <p>A sharded checkpoint is the layout of Hugging Face's {@code save_pretrained} (transformers
 * and diffusers): shards {@code NAME-00001-of-0000n.safetensors} beside an index
 * {@code NAME.safetensors.index.json} = {"metadata": {"total_size": bytes, …}, "weight_map":
 * {tensor: shard file name}}. Opening an index opens every shard it names (each validated by
 * {@link SafetensorsFile#open}) and checks that the index and the shards agree: every shard
 * exists, every mapped tensor is in the shard the map names, and no tensor is in two shards or in
 * a shard the map does not send it to. All disagreements are reported in one error.
 */
public final class ShardedSafetensors implements Closeable {

    /** The suffix of an index file: "model.safetensors" + INDEX_SUFFIX. */
    public static final String INDEX_SUFFIX = ".index.json";

    private final Path source;
    private final List<SafetensorsFile> shards;
    private final Map<String, SafetensorsFile> byTensor;
    private final Map<String, String> metadata;

    private ShardedSafetensors(Path source, List<SafetensorsFile> shards, Map<String, SafetensorsFile> byTensor,
            Map<String, String> metadata) {
        this.source = source;
        this.shards = List.copyOf(shards);
        this.byTensor = Collections.unmodifiableMap(byTensor);
        this.metadata = Collections.unmodifiableMap(metadata);
    }

    /** Whether {@code path} names an index file (by its name). */
    public static boolean isIndex(Path path) {
        return path.getFileName().toString().endsWith(INDEX_SUFFIX);
    }

    /** Opens one .safetensors file, or the shards of an index file ({@code *.index.json}). */
    public static ShardedSafetensors open(Path path) throws IOException {
        if (isIndex(path)) {
            return openIndex(path);
        }
        SafetensorsFile file = SafetensorsFile.open(path);
        Map<String, SafetensorsFile> byTensor = new LinkedHashMap<>();
        file.names().forEach(name -> byTensor.put(name, file));
        return new ShardedSafetensors(path, List.of(file), byTensor, file.metadata());
    }

    private static ShardedSafetensors openIndex(Path index) throws IOException {
        String text;
        try {
            text = Files.readString(index, StandardCharsets.UTF_8);
        } catch (NoSuchFileException e) {
            throw new NoSuchFileException(index.toString(), null, "the index file does not exist");
        } catch (java.nio.charset.MalformedInputException e) {
            throw new InvalidSafetensorsException(index, "the index is not valid UTF-8");
        }
        Map<String, String> metadata = new LinkedHashMap<>();
        Map<String, String> weightMap = new LinkedHashMap<>();
        parseIndex(index, text, metadata, weightMap);

        // Shards in the order they first appear in the map.
        Map<String, List<String>> tensorsOfShard = new LinkedHashMap<>();
        for (Map.Entry<String, String> entry : weightMap.entrySet()) {
            tensorsOfShard.computeIfAbsent(entry.getValue(), shard -> new ArrayList<>()).add(entry.getKey());
        }
        Path folder = index.toAbsolutePath().getParent();
        List<String> problems = new ArrayList<>();
        for (Map.Entry<String, List<String>> shard : tensorsOfShard.entrySet()) {
            if (!Files.isRegularFile(folder.resolve(shard.getKey()))) {
                problems.add("shard '" + shard.getKey() + "' (holding " + listed(shard.getValue())
                        + ") does not exist in " + folder);
            }
        }
        if (!problems.isEmpty()) {
            throw new InvalidSafetensorsException(index, String.join("; ", problems));
        }

        List<SafetensorsFile> opened = new ArrayList<>();
        try {
            Map<String, SafetensorsFile> files = new LinkedHashMap<>();
            for (String shard : tensorsOfShard.keySet()) {
                SafetensorsFile file = SafetensorsFile.open(folder.resolve(shard));
                opened.add(file);
                files.put(shard, file);
            }
            Map<String, String> foundIn = new LinkedHashMap<>();
            for (Map.Entry<String, SafetensorsFile> shard : files.entrySet()) {
                for (String tensor : shard.getValue().names()) {
                    String earlier = foundIn.putIfAbsent(tensor, shard.getKey());
                    if (earlier != null) {
                        problems.add("tensor '" + tensor + "' is in both shard '" + earlier + "' and shard '"
                                + shard.getKey() + "'");
                    } else if (!weightMap.containsKey(tensor)) {
                        problems.add("shard '" + shard.getKey() + "' holds tensor '" + tensor
                                + "', which the index does not list");
                    } else if (!weightMap.get(tensor).equals(shard.getKey())) {
                        problems.add("shard '" + shard.getKey() + "' holds tensor '" + tensor
                                + "', which the index sends to shard '" + weightMap.get(tensor) + "'");
                    }
                }
            }
            Map<String, SafetensorsFile> byTensor = new LinkedHashMap<>();
            for (Map.Entry<String, String> entry : weightMap.entrySet()) {
                SafetensorsFile file = files.get(entry.getValue());
                if (!file.contains(entry.getKey())) {
                    problems.add("the index maps tensor '" + entry.getKey() + "' to shard '" + entry.getValue()
                            + "', which does not hold it");
                } else {
                    byTensor.put(entry.getKey(), file);
                }
            }
            if (!problems.isEmpty()) {
                throw new InvalidSafetensorsException(index, String.join("; ", problems));
            }
            // Tensors in shard order, each shard in data order.
            Map<String, SafetensorsFile> ordered = new LinkedHashMap<>();
            for (SafetensorsFile file : opened) {
                file.names().forEach(name -> ordered.put(name, file));
            }
            return new ShardedSafetensors(index, opened, ordered, metadata);
        } catch (IOException | RuntimeException e) {
            opened.forEach(SafetensorsFile::close);
            throw e;
        }
    }

    private static String listed(List<String> names) {
        int shown = Math.min(names.size(), 3);
        String head = String.join(", ", names.subList(0, shown).stream().map(n -> "'" + n + "'").toList());
        return names.size() > shown ? head + " and " + (names.size() - shown) + " more" : head;
    }

    /** Reads {"metadata": {...}, "weight_map": {tensor: shard}}, refusing duplicates and odd shard names. */
    private static void parseIndex(Path index, String text, Map<String, String> metadata,
            Map<String, String> weightMap) throws InvalidSafetensorsException {
        boolean sawMap = false;
        boolean sawMetadata = false;
        try (JsonReader reader = new JsonReader(new java.io.StringReader(text))) {
            reader.setStrictness(Strictness.STRICT);
            if (reader.peek() != JsonToken.BEGIN_OBJECT) {
                throw new InvalidSafetensorsException(index, "the index is not a JSON object");
            }
            reader.beginObject();
            while (reader.hasNext()) {
                String key = reader.nextName();
                switch (key) {
                    case "weight_map" -> {
                        if (sawMap) {
                            throw new InvalidSafetensorsException(index, "the index has weight_map twice");
                        }
                        sawMap = true;
                        if (reader.peek() != JsonToken.BEGIN_OBJECT) {
                            throw new InvalidSafetensorsException(index,
                                    "weight_map is not an object of tensor name -> shard file");
                        }
                        reader.beginObject();
                        while (reader.hasNext()) {
                            String tensor = reader.nextName();
                            if (reader.peek() != JsonToken.STRING) {
                                throw new InvalidSafetensorsException(index, "weight_map entry '" + tensor
                                        + "' is not a shard file name (a string)");
                            }
                            String shard = reader.nextString();
                            checkShardName(index, tensor, shard);
                            if (weightMap.put(tensor, shard) != null) {
                                throw new InvalidSafetensorsException(index, "weight_map lists tensor '" + tensor
                                        + "' twice");
                            }
                        }
                        reader.endObject();
                    }
                    case "metadata" -> {
                        if (sawMetadata) {
                            throw new InvalidSafetensorsException(index, "the index has metadata twice");
                        }
                        sawMetadata = true;
                        if (reader.peek() == JsonToken.NULL) {
                            reader.nextNull();
                        } else if (reader.peek() != JsonToken.BEGIN_OBJECT) {
                            throw new InvalidSafetensorsException(index, "metadata is not an object");
                        } else {
                            reader.beginObject();
                            while (reader.hasNext()) {
                                String name = reader.nextName();
                                JsonElement value = JsonParser.parseReader(reader);
                                metadata.put(name, value.isJsonPrimitive() && value.getAsJsonPrimitive().isString()
                                        ? value.getAsString() : value.toString());
                            }
                            reader.endObject();
                        }
                    }
                    default -> reader.skipValue();
                }
            }
            reader.endObject();
            if (reader.peek() != JsonToken.END_DOCUMENT) {
                throw new InvalidSafetensorsException(index, "the index has content after its JSON object");
            }
        } catch (InvalidSafetensorsException e) {
            throw e;
        } catch (IOException | IllegalStateException | com.google.gson.JsonParseException e) {
            throw new InvalidSafetensorsException(index, "the index is not valid JSON: " + e.getMessage());
        }
        if (!sawMap) {
            throw new InvalidSafetensorsException(index, "the index has no weight_map (tensor name -> shard file)");
        }
    }

    /** Shards are plain file names beside the index: nothing may point elsewhere. */
    private static void checkShardName(Path index, String tensor, String shard) throws InvalidSafetensorsException {
        if (shard.isEmpty() || shard.contains("/") || shard.contains("\\") || shard.equals(".")
                || shard.equals("..") || shard.indexOf('\0') >= 0) {
            throw new InvalidSafetensorsException(index, "weight_map sends tensor '" + tensor + "' to '" + shard
                    + "', expected a file name in the index's folder");
        }
    }

    /** The file or index this was opened from. */
    public Path source() {
        return source;
    }

    /** The opened files: one, or every shard in index order. */
    public List<SafetensorsFile> files() {
        return shards;
    }

    /** Every tensor name: shard by shard, each in data order. */
    public List<String> names() {
        return List.copyOf(byTensor.keySet());
    }

    public boolean contains(String name) {
        return byTensor.containsKey(name);
    }

    /** The shard holding a tensor. */
    public SafetensorsFile fileOf(String name) {
        SafetensorsFile file = byTensor.get(name);
        if (file == null) {
            throw new IllegalArgumentException(source + ": no tensor named '" + name + "'");
        }
        return file;
    }

    public TensorInfo info(String name) {
        return fileOf(name).info(name);
    }

    /**
     * For one file, its "__metadata__"; for an index, its "metadata" object (non-string values as
     * their JSON text, e.g. total_size).
     */
    public Map<String, String> metadata() {
        return metadata;
    }

    public float[] readF32(String name) {
        return fileOf(name).readF32(name);
    }

    /** See {@link SafetensorsFile#load(String, Backend)}. */
    public Tensor load(String name, Backend backend) {
        return fileOf(name).load(name, backend);
    }

    /** See {@link SafetensorsFile#load(String, Backend, DType)}. */
    public Tensor load(String name, Backend backend, DType target) {
        return fileOf(name).load(name, backend, target);
    }

    @Override
    public void close() {
        shards.forEach(SafetensorsFile::close);
    }

    /**
     * The name of shard {@code index} (1-based) of {@code count} for {@code fileName}
     * ("model.safetensors" → "model-00001-of-00003.safetensors"), as save_pretrained names them.
     */
    public static String shardName(String fileName, int index, int count) {
        String stem = fileName.endsWith(".safetensors")
                ? fileName.substring(0, fileName.length() - ".safetensors".length()) : fileName;
        return String.format(Locale.ROOT, "%s-%05d-of-%05d.safetensors", stem, index, count);
    }

    /**
     * Writes {@code tensors} into {@code folder} as {@code fileName} when their data fits in
     * {@code maxShardBytes}, else as shards of at most {@code maxShardBytes} of data each (a
     * tensor larger than that gets a shard of its own) plus the index {@code fileName.index.json}.
     * Tensors are packed in the writer's file order; the metadata goes into every shard. Every
     * file is written atomically and the index last, so an index never names a shard not yet
     * written; for all-or-nothing replacement of a folder, write into a fresh one and move it.
     *
     * @return the files written: the single file, or the shards then the index
     */
    public static List<Path> write(Path folder, String fileName, SafetensorsWriter tensors, long maxShardBytes)
            throws IOException {
        if (maxShardBytes <= 0) {
            throw new IllegalArgumentException("maxShardBytes must be positive, got " + maxShardBytes);
        }
        if (!fileName.endsWith(".safetensors") || fileName.contains("/")) {
            throw new IllegalArgumentException("fileName must be a plain name ending in .safetensors, got " + fileName);
        }
        List<List<SafetensorsWriter.Entry>> groups = new ArrayList<>();
        List<SafetensorsWriter.Entry> current = new ArrayList<>();
        long currentBytes = 0;
        for (SafetensorsWriter.Entry entry : tensors.entries()) {
            if (!current.isEmpty() && currentBytes + entry.byteSize() > maxShardBytes) {
                groups.add(current);
                current = new ArrayList<>();
                currentBytes = 0;
            }
            current.add(entry);
            currentBytes += entry.byteSize();
        }
        if (!current.isEmpty() || groups.isEmpty()) {
            groups.add(current);
        }
        if (groups.size() == 1) {
            Path file = folder.resolve(fileName);
            tensors.write(file);
            return List.of(file);
        }
        List<Path> written = new ArrayList<>();
        Map<String, String> weightMap = new TreeMap<>();
        for (int i = 0; i < groups.size(); i++) {
            String shardName = shardName(fileName, i + 1, groups.size());
            SafetensorsWriter shard = new SafetensorsWriter().metadata(tensors.metadataMap());
            for (SafetensorsWriter.Entry entry : groups.get(i)) {
                shard.put(entry);
                weightMap.put(entry.name(), shardName);
            }
            Path file = folder.resolve(shardName);
            shard.write(file);
            written.add(file);
        }
        Path index = folder.resolve(fileName + INDEX_SUFFIX);
        AtomicFiles.write(index, indexJson(tensors.dataBytes(), weightMap).getBytes(StandardCharsets.UTF_8));
        written.add(index);
        return written;
    }

    private static String indexJson(long totalSize, Map<String, String> weightMap) throws IOException {
        StringWriter text = new StringWriter();
        try (JsonWriter json = new JsonWriter(text)) {
            json.setHtmlSafe(false);
            json.setIndent("  ");
            json.beginObject();
            json.name("metadata").beginObject().name("total_size").value(totalSize).endObject();
            json.name("weight_map").beginObject();
            for (Map.Entry<String, String> entry : weightMap.entrySet()) {
                json.name(entry.getKey()).value(entry.getValue());
            }
            json.endObject();
            json.endObject();
        }
        return text + "\n";
    }
}
