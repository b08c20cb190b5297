package org.fastvmt.cli;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.DirectoryNotEmptyException;
import java.nio.file.FileSystemLoopException;
import java.nio.file.FileVisitOption;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.ThreadLocalRandom;
import java.util.stream.Stream;

import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

import org.fastvmt.io.AtomicFiles;
import org.fastvmt.io.pytorch.InvalidPthException;
import org.fastvmt.io.pytorch.PthFile;
import org.fastvmt.io.pytorch.PthTensorInfo;
import org.fastvmt.io.safetensors.SafetensorsFile;
import org.fastvmt.io.safetensors.SafetensorsWriter;
import org.fastvmt.io.safetensors.TensorInfo;

/**
 * {@code fastvmt convert DIR --out DIR2}: a copy of a model folder in which every PyTorch
 * checkpoint (.pth, .pt) is a .safetensors file with the same tensor names and dtypes, so later
 * runs memory-map the weights instead of reading pickles. Everything else (DiT safetensors shards,
 * config.json, tokenizer files) is hard-linked, or copied where links are impossible or --copy asks.
 * The result appears at once: it is built in a hidden folder beside DIR2 and renamed to DIR2 only
 * when complete; on failure that folder is removed and DIR2 is untouched.
 */
@Command(name = "convert", mixinStandardHelpOptions = true, sortOptions = false,
        description = {
            "Convert a model folder's PyTorch checkpoints (.pth, .pt: the official Wan2.1 layout's "
                    + "Wan2.1_VAE.pth and models_t5_umt5-xxl-enc-bf16.pth) to .safetensors, keeping tensor "
                    + "names and dtypes, and hard-link (or copy) every other file, subfolders included, "
                    + "into DIR2.",
            "Checkpoints are read by a restricted reader that accepts only tensors (F32, F16, BF16) in "
                    + "dicts and runs no code: a pickle that asks for anything else is refused. Nested dicts "
                    + "are flattened with dots: tensor w inside dict model is named model.w.",
        })
final class ConvertCommand implements Callable<Integer> {

    private static final List<String> CHECKPOINT_EXTENSIONS = List.of(".pth", ".pt");

    @Parameters(index = "0", paramLabel = "DIR", description = "The model folder to convert.")
    private Path source;

    @Option(names = "--out", required = true, paramLabel = "DIR2",
            description = "The folder to create; it must not exist, or be empty.")
    private Path out;

    @Option(names = "--copy", description = "Copy the other files instead of hard-linking them.")
    private boolean copy;

    @Spec
    private CommandSpec spec;

    /** One file of the result: a checkpoint to convert or a file to link or copy. */
    private record Item(Path from, Path relativeTarget, boolean checkpoint) {
    }

    @Override
    public Integer call() throws IOException {
        PrintWriter err = spec.commandLine().getErr();
        PrintWriter stdout = spec.commandLine().getOut();
        Path from = source.toAbsolutePath().normalize();
        Path to = out.toAbsolutePath().normalize();
        checkFolders(from, to);
        List<Item> plan = plan(from);
        if (plan.stream().noneMatch(Item::checkpoint)) {
            throw new UserInputException("DIR " + source + " holds no .pth or .pt file; nothing to convert");
        }

        // Every checkpoint is validated before anything is written.
        Map<Item, PthFile> opened = new HashMap<>();
        Path temporary = null;
        try {
            for (Item item : plan) {
                if (item.checkpoint()) {
                    opened.put(item, openCheckpoint(item.from()));
                }
            }
            for (PthFile checkpoint : opened.values()) {
                for (String skipped : checkpoint.skipped()) {
                    err.println("fastvmt: warning: " + checkpoint.path() + ": " + skipped
                            + " is not a tensor; it is not converted");
                }
            }
            Path parent = to.getParent();
            temporary = parent.resolve("." + to.getFileName() + "."
                    + Long.toUnsignedString(ThreadLocalRandom.current().nextLong(), 36) + ".tmp");
            Files.createDirectory(temporary);

            long tensors = 0;
            long bytes = 0;
            int linked = 0;
            int copied = 0;
            try (Progress progress = Progress.start("convert", plan.size())) {
                for (Item item : plan) {
                    Path target = temporary.resolve(item.relativeTarget());
                    Files.createDirectories(target.getParent());
                    if (item.checkpoint()) {
                        PthFile checkpoint = opened.get(item);
                        bytes += convert(checkpoint, target);
                        tensors += checkpoint.tensors().size();
                        checkpoint.close();
                    } else if (link(item.from(), target)) {
                        linked++;
                    } else {
                        copied++;
                    }
                    progress.step();
                }
            }
            publish(temporary, to);
            temporary = null;
            long checkpoints = opened.size();
            stdout.printf(Locale.ROOT, "converted %d checkpoint%s (%d tensors, %.1f MB) and %s %d other file%s"
                    + " into %s%n", checkpoints, checkpoints == 1 ? "" : "s", tensors, bytes / 1e6,
                    copied == 0 ? "hard-linked" : linked == 0 ? "copied" : "linked or copied", linked + copied,
                    linked + copied == 1 ? "" : "s", out);
            return 0;
        } finally {
            for (PthFile checkpoint : opened.values()) {
                checkpoint.close();
            }
            if (temporary != null) {
                deleteTree(temporary);
            }
        }
    }

    private void checkFolders(Path from, Path to) {
        if (!Files.isDirectory(from)) {
            throw new UserInputException("DIR " + source + (Files.exists(from) ? " is not a folder" : " does not exist"));
        }
        if (to.startsWith(from) || from.startsWith(to)) {
            throw new UserInputException("--out " + out + " must lie outside DIR " + source + " (and not contain it)");
        }
        try {
            AtomicFiles.requireWritableFolder(to.getParent());
        } catch (IOException e) {
            throw new UserInputException("--out " + out + " cannot be created: " + e.getMessage(), e);
        }
        if (Files.exists(to)) {
            if (!Files.isDirectory(to)) {
                throw new UserInputException("--out " + out + " exists and is not a folder");
            }
            try (Stream<Path> entries = Files.list(to)) {
                if (entries.findAny().isPresent()) {
                    throw new UserInputException("--out " + out + " exists and is not empty; choose a new folder");
                }
            } catch (IOException e) {
                throw new UserInputException("--out " + out + " cannot be read: " + e.getMessage(), e);
            }
        }
    }

    /** Every regular file under DIR (links followed), in a stable order, with its place in DIR2. */
    private List<Item> plan(Path from) throws IOException {
        List<Path> files = new ArrayList<>();
        try {
            Files.walkFileTree(from, EnumSet.of(FileVisitOption.FOLLOW_LINKS), Integer.MAX_VALUE,
                    new SimpleFileVisitor<>() {
                        @Override
                        public FileVisitResult visitFile(Path file, BasicFileAttributes attributes) {
                            if (attributes.isRegularFile()) {
                                files.add(file);
                            }
                            return FileVisitResult.CONTINUE;
                        }

                        @Override
                        public FileVisitResult visitFileFailed(Path file, IOException e) throws IOException {
                            if (e instanceof FileSystemLoopException) {
                                throw new UserInputException("DIR " + source + " has a link loop at " + file);
                            }
                            throw e;
                        }
                    });
        } catch (IOException e) {
            throw new UserInputException("DIR " + source + " cannot be read: " + e.getMessage(), e);
        }
        files.sort(null);
        List<Item> plan = new ArrayList<>();
        Map<Path, Path> targets = new HashMap<>();
        for (Path file : files) {
            Path relative = from.relativize(file);
            String name = relative.getFileName().toString();
            String lower = name.toLowerCase(Locale.ROOT);
            boolean checkpoint = name.lastIndexOf('.') > 0 && CHECKPOINT_EXTENSIONS.stream().anyMatch(lower::endsWith);
            Path target = checkpoint
                    ? relative.resolveSibling(name.substring(0, name.lastIndexOf('.')) + ".safetensors")
                    : relative;
            Path clash = targets.putIfAbsent(target, relative);
            if (clash != null) {
                throw new UserInputException("DIR " + source + ": " + clash + " and " + relative + " would both become "
                        + target + " in --out; rename one of them");
            }
            plan.add(new Item(file, target, checkpoint));
        }
        return plan;
    }

    private static PthFile openCheckpoint(Path file) throws IOException {
        try {
            return PthFile.open(file);
        } catch (InvalidPthException e) {
            throw new UserInputException(e.getMessage(), e);
        }
    }

    /** Writes the checkpoint's tensors as one .safetensors file and checks what was written; returns its data bytes. */
    private static long convert(PthFile checkpoint, Path target) throws IOException {
        SafetensorsWriter writer = new SafetensorsWriter();
        writer.metadata("format", "pt"); // what huggingface/safetensors' torch helpers write
        for (Map.Entry<String, PthTensorInfo> entry : checkpoint.tensors().entrySet()) {
            PthTensorInfo info = entry.getValue();
            writer.add(entry.getKey(), info.dtype(), info.shape(), checkpoint.bytes(entry.getKey()));
        }
        writer.write(target);
        try (SafetensorsFile written = SafetensorsFile.open(target)) {
            if (written.tensors().size() != checkpoint.tensors().size()) {
                throw new IOException(target + ": wrote " + written.tensors().size() + " tensors, expected "
                        + checkpoint.tensors().size());
            }
            for (PthTensorInfo info : checkpoint.tensors().values()) {
                TensorInfo got = written.info(info.name());
                if (got.dtype() != info.dtype() || !Arrays.equals(got.shape(), info.shape())) {
                    throw new IOException(target + ": tensor '" + info.name() + "' was written as " + got
                            + ", expected " + info);
                }
            }
        }
        return writer.dataBytes();
    }

    /** Hard-links {@code target} to the file behind {@code from}; copies when linking is impossible or unwanted. */
    private boolean link(Path from, Path target) throws IOException {
        Path real = from.toRealPath(); // a link's own target, so the result does not depend on relative links
        if (!copy) {
            try {
                Files.createLink(target, real);
                return true;
            } catch (IOException | UnsupportedOperationException e) {
                // another file system, or links not supported: copy instead
            }
        }
        Files.copy(real, target, StandardCopyOption.COPY_ATTRIBUTES);
        return false;
    }

    /** Renames the finished folder to DIR2 (replacing it only when it is an empty folder). */
    private void publish(Path temporary, Path to) throws IOException {
        if (Files.isDirectory(to)) {
            try {
                Files.delete(to);
            } catch (DirectoryNotEmptyException e) {
                throw new UserInputException("--out " + out + " was filled by someone else while converting;"
                        + " nothing was written", e);
            }
        }
        Files.move(temporary, to, StandardCopyOption.ATOMIC_MOVE);
    }

    private static void deleteTree(Path root) throws IOException {
        if (!Files.exists(root)) {
            return;
        }
        Files.walkFileTree(root, new SimpleFileVisitor<>() {
            @Override
            public FileVisitResult visitFile(Path file, BasicFileAttributes attributes) throws IOException {
                Files.delete(file);
                return FileVisitResult.CONTINUE;
            }

            @Override
            public FileVisitResult postVisitDirectory(Path dir, IOException e) throws IOException {
                Files.delete(dir);
                return FileVisitResult.CONTINUE;
            }
        });
    }
}
