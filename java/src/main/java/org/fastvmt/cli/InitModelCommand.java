package org.fastvmt.cli;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.LongSupplier;
import java.util.stream.Stream;

import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import org.fastvmt.backend.Backend;
import org.fastvmt.backend.Backends;
import org.fastvmt.backend.Device;
import org.fastvmt.model.ModelFolder;
import org.fastvmt.model.t5.UmT5Config;
import org.fastvmt.model.vae.WanVaeConfig;
import org.fastvmt.model.wan.WanCheckpoint;
import org.fastvmt.model.wan.WanConfig;
import org.fastvmt.model.wan.WanWeights;
import org.fastvmt.tensor.DType;

/** {@code fastvmt init-model}: writes a randomly initialised Wan2.1 DiT checkpoint (tiny: a complete model folder). */
@Command(name = "init-model", mixinStandardHelpOptions = true, sortOptions = false,
        description = {
            "Write a randomly initialised Wan2.1 text-to-video DiT as a checkpoint folder (config.json and "
                    + "diffusion_pytorch_model.safetensors, or shards of at most 10 GB with their index), in the "
                    + "original Wan2.1 layout or the diffusers layout, for trying the tool and for tests. The "
                    + "weights are deterministic for a seed: matrices uniform in +-1/sqrt(fan_in), biases and "
                    + "modulation tables +-0.02, norm weights 1 +- 0.02.",
            "",
            "The folder is written whole or not at all (into a hidden temporary folder beside it, renamed at "
                    + "the end; Ctrl-C deletes it). --out must not exist or be an empty folder. The weights are "
                    + "generated in memory first: 1.3b needs 5.7 GB (f32) or 2.9 GB (bf16) of free memory and "
                    + "as much disk; 14b needs 57 GB or 29 GB. A run that would not fit is refused before it "
                    + "starts.",
            "",
            "--config tiny writes a complete model folder: the DiT, a tiny Wan VAE (Wan2.1_VAE.safetensors; "
                    + "vae/ in the diffusers layout), a tiny umT5 text encoder "
                    + "(models_t5_umt5-xxl-enc-bf16.safetensors; text_encoder/) and a small tokenizer "
                    + "(google/umt5-xxl/tokenizer.json; tokenizer/), so that transfer --reference VIDEO --prompt "
                    + "TEXT runs without downloading anything. 1.3b and 14b write the DiT only.",
        })
final class InitModelCommand implements Callable<Integer> {

    /** Shards of at most this much data, like diffusers' save_pretrained default (max_shard_size="10GB"). */
    static final long MAX_SHARD_BYTES = 10_000_000_000L;
    /** Memory kept free beside the weights (the JVM, the write buffers, the page cache). */
    private static final long MEMORY_HEADROOM = 1L << 30;

    @Option(names = "--config", required = true, paramLabel = "tiny|1.3b|14b",
            description = "Model: tiny (2 blocks, dim 64; for tests), 1.3b (Wan2.1-T2V-1.3B) or 14b (Wan2.1-T2V-14B).")
    private String config;

    @Option(names = "--seed", paramLabel = "S", defaultValue = "0",
            description = "Seed of the random weights. Default: ${DEFAULT-VALUE}.")
    private long seed;

    @Option(names = "--out", required = true, paramLabel = "DIR",
            description = "The checkpoint folder to create (must not exist, or be empty).")
    private Path out;

    @Option(names = "--layout", paramLabel = "original|diffusers", defaultValue = "original",
            description = "Tensor names and config keys: original (Wan-Video/Wan2.1 WanModel) or diffusers "
                    + "(WanTransformer3DModel). Default: ${DEFAULT-VALUE}.")
    private String layout;

    @Option(names = "--dtype", paramLabel = "f32|bf16", defaultValue = "f32",
            description = "Type of the weight matrices (vectors are always f32). The published Wan2.1 checkpoints "
                    + "are f32; bf16 halves the size. Default: ${DEFAULT-VALUE}.")
    private String dtype;

    @Spec
    private CommandSpec spec;

    @Override
    public Integer call() throws IOException {
        WanConfig model;
        try {
            model = WanConfig.named(config);
        } catch (IllegalArgumentException e) {
            throw new UserInputException("--config must be tiny, 1.3b or 14b, got '" + config + "'");
        }
        WanCheckpoint.Layout keyLayout = parseLayout(layout);
        DType matrixType = parseDType(dtype);
        Path target = out.toAbsolutePath().normalize();
        requireNewFolder(target);
        long bytes = weightBytes(model, matrixType);
        requireRoom(target, model, matrixType, bytes);
        PrintWriter err = spec.commandLine().getErr();
        long parameters = parameterCount(model);
        err.printf(Locale.ROOT, "fastvmt: generating Wan2.1 %s (%,d parameters, %s, %s matrices, seed %d) ...%n",
                model.name(), parameters, size(bytes), matrixType, seed);
        err.flush();
        long start = System.nanoTime();
        if (model.equals(WanConfig.TINY)) {
            return writeTinyFolder(target, keyLayout, matrixType, parameters, bytes, start);
        }
        try (CancelOnSignal cancel = CancelOnSignal.install("init-model", true);
                Backend backend = Backends.open(Device.CPU);
                Progress bar = Progress.start("init-model", 2 * megabytes(bytes))) {
            WanWeights weights;
            try (Watcher _ = new Watcher(bar, () -> megabytes(backend.allocatedBytes()))) {
                weights = WanWeights.random(model, backend, seed, matrixType);
            }
            try (weights) {
                cancel.throwIfCancelled();
                bar.message("writing");
                long generated = megabytes(bytes);
                try (Watcher _ = new Watcher(bar, () -> generated + megabytes(temporaryBytes(target)))) {
                    WanCheckpoint.write(weights, target, keyLayout, MAX_SHARD_BYTES);
                } catch (IOException | RuntimeException e) {
                    // The hook interrupts blocking writes; write() has deleted its temporary folder.
                    cancel.throwIfCancelled();
                    throw e;
                }
                cancel.written();
                bar.stepTo(2 * generated);
            }
        }
        spec.commandLine().getOut().printf(Locale.ROOT, "wrote %s: Wan2.1 %s, %,d parameters, %s (%s matrices, %s "
                + "layout, seed %d) in %.1f s%n", target, model.name(), parameters, size(bytes), matrixType,
                keyLayout.name().toLowerCase(Locale.ROOT), seed, (System.nanoTime() - start) / 1e9);
        spec.commandLine().getOut().flush();
        return 0;
    }

    /**
     * tiny: a complete model folder (DiT, VAE, text encoder, tokenizer), so that {@code transfer
     * --reference VIDEO --prompt TEXT} runs on it. The larger configs write the DiT only: a random
     * Wan2.1 VAE (127 M parameters) would be possible, but a random umT5-XXL is 5.7 G parameters
     * (11 GB in bf16) that no test or trial needs; real runs use the published files.
     */
    private int writeTinyFolder(Path target, WanCheckpoint.Layout keyLayout, DType matrixType, long parameters,
            long bytes, long start) throws IOException {
        ModelFolder.Layout folderLayout = keyLayout == WanCheckpoint.Layout.DIFFUSERS ? ModelFolder.Layout.DIFFUSERS
                : ModelFolder.Layout.OFFICIAL;
        try (CancelOnSignal cancel = CancelOnSignal.install("init-model", true);
                Backend backend = Backends.open(Device.CPU)) {
            try {
                ModelFolder.writeTiny(target, folderLayout, seed, matrixType, backend);
            } catch (IOException | RuntimeException e) {
                cancel.throwIfCancelled();
                throw e;
            }
            cancel.written();
        }
        spec.commandLine().getOut().printf(Locale.ROOT, "wrote %s: a complete tiny model folder (DiT %,d parameters, "
                + "%s, %s matrices; VAE %s; text encoder %s; tokenizer; %s layout, seed %d) in %.1f s%n", target,
                parameters, size(bytes), matrixType, WanVaeConfig.TINY.name(), UmT5Config.TINY.name(),
                keyLayout == WanCheckpoint.Layout.DIFFUSERS ? "diffusers" : "original", seed,
                (System.nanoTime() - start) / 1e9);
        spec.commandLine().getOut().flush();
        return 0;
    }

    static WanCheckpoint.Layout parseLayout(String name) {
        return switch (name.toLowerCase(Locale.ROOT)) {
            case "original" -> WanCheckpoint.Layout.ORIGINAL;
            case "diffusers" -> WanCheckpoint.Layout.DIFFUSERS;
            default -> throw new IllegalArgumentException("--layout must be original or diffusers, got '" + name + "'");
        };
    }

    static DType parseDType(String name) {
        return switch (name.toLowerCase(Locale.ROOT)) {
            case "f32", "float32", "fp32" -> DType.F32;
            case "bf16", "bfloat16" -> DType.BF16;
            default -> throw new IllegalArgumentException("--dtype must be f32 or bf16, got '" + name + "'");
        };
    }

    private static void requireNewFolder(Path target) throws IOException {
        if (Files.isDirectory(target)) {
            try (DirectoryStream<Path> entries = Files.newDirectoryStream(target)) {
                if (entries.iterator().hasNext()) {
                    throw new UserInputException("--out " + target + " is a folder that is not empty; init-model "
                            + "writes a new folder (choose a new name, or empty this one)");
                }
            }
        } else if (Files.exists(target)) {
            throw new UserInputException("--out " + target + " exists and is not a folder");
        }
        Path parent = target.getParent();
        try {
            org.fastvmt.io.AtomicFiles.requireWritableFolder(parent);
        } catch (IOException e) {
            throw new UserInputException("--out " + target + ": its folder cannot be written: " + e.getMessage(), e);
        }
    }

    /** Refuses, before generating anything, a model that does not fit in free memory or on the disk. */
    private static void requireRoom(Path target, WanConfig model, DType matrixType, long bytes) throws IOException {
        long disk = Files.getFileStore(target.getParent()).getUsableSpace();
        if (disk < bytes) {
            throw new UserInputException(String.format(Locale.ROOT, "--out %s: the %s model needs %s on disk, the "
                    + "disk has %s free", target, model.name(), size(bytes), size(disk)));
        }
        long memory = availableMemory();
        if (memory >= 0 && memory < bytes + MEMORY_HEADROOM) {
            throw new IllegalStateException(String.format(Locale.ROOT, "the %s model's weights are generated in "
                    + "memory and need %s (plus about 1 GB), but only %s is available; %s", model.name(), size(bytes),
                    size(memory), matrixType == DType.F32 ? "try --dtype bf16 (half the size) or a machine with more "
                            + "memory" : "use a machine with more memory"));
        }
    }

    /** MemAvailable of /proc/meminfo in bytes, or -1 when unknown (not Linux). */
    private static long availableMemory() {
        try (Stream<String> lines = Files.lines(Path.of("/proc/meminfo"))) {
            return lines.filter(line -> line.startsWith("MemAvailable:")).findFirst()
                    .map(line -> Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024).orElse(-1L);
        } catch (IOException | RuntimeException e) {
            return -1;
        }
    }

    static long weightBytes(WanConfig model, DType matrixType) {
        long bytes = 0;
        for (Map.Entry<String, long[]> entry : model.parameterShapes().entrySet()) {
            long count = count(entry.getValue());
            bytes += count * (WanWeights.isMatrix(entry.getKey(), entry.getValue()) ? matrixType.bytes() : 4);
        }
        return bytes;
    }

    static long parameterCount(WanConfig model) {
        return model.parameterShapes().values().stream().mapToLong(InitModelCommand::count).sum();
    }

    private static long count(long[] shape) {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        return n;
    }

    /** Progress unit: MiB (at least 1, so a tiny model still has a bar with an end). */
    private static long megabytes(long bytes) {
        return Math.max(1, bytes >> 20);
    }

    static String size(long bytes) {
        if (bytes < 1_000_000) {
            return String.format(Locale.ROOT, "%.1f kB", bytes / 1e3);
        }
        if (bytes < 1_000_000_000) {
            return String.format(Locale.ROOT, "%.1f MB", bytes / 1e6);
        }
        return String.format(Locale.ROOT, "%.1f GB", bytes / 1e9);
    }

    /**
     * Bytes written so far into WanCheckpoint.write's temporary folder beside {@code target} (a
     * hidden ".NAME.*.tmp" folder); only a progress figure, 0 when there is none.
     */
    private static long temporaryBytes(Path target) {
        String prefix = "." + target.getFileName() + ".";
        long total = 0;
        try (DirectoryStream<Path> siblings = Files.newDirectoryStream(target.getParent(),
                entry -> entry.getFileName().toString().startsWith(prefix) && Files.isDirectory(entry))) {
            for (Path folder : siblings) {
                try (Stream<Path> files = Files.list(folder)) {
                    for (Path file : files.toList()) {
                        total += Files.size(file);
                    }
                }
            }
        } catch (IOException | RuntimeException e) {
            // Files come and go while we look: this is only a progress figure.
        }
        return total;
    }

    /** Moves the bar to a measured figure five times a second while work that has no callback runs. */
    private static final class Watcher implements AutoCloseable {
        private final AtomicBoolean running = new AtomicBoolean(true);
        private final Thread thread;

        Watcher(Progress bar, LongSupplier done) {
            this.thread = bar.visible() ? Thread.ofPlatform().daemon().start(() -> {
                while (running.get()) {
                    bar.stepTo(done.getAsLong());
                    try {
                        Thread.sleep(200);
                    } catch (InterruptedException e) {
                        return;
                    }
                }
            }) : null;
        }

        @Override
        public void close() {
            running.set(false);
            if (thread != null) {
                thread.interrupt();
                try {
                    thread.join();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
        }
    }
}
