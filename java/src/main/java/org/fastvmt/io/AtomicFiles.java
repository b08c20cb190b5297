package org.fastvmt.io;

import java.io.IOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NotDirectoryException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Writes files so that a reader never sees half of one: the content goes to a temporary file in
 * the target's folder, which is then renamed over the target. On failure the temporary file is
 * deleted and the target is left as it was.
 */
public final class AtomicFiles {

    /** Writes the content of a file at the path it is given. */
    @FunctionalInterface
    public interface FileWriter {
        void writeTo(Path file) throws IOException;
    }

    private AtomicFiles() {
    }

    /**
     * Runs {@code writer} on a fresh temporary file beside {@code target} and moves the result
     * to {@code target} (replacing it). The temporary name keeps the target's extension, so
     * tools that pick a format by extension still see it.
     */
    public static void write(Path target, FileWriter writer) throws IOException {
        Path temp = createTemporaryBeside(target);
        boolean moved = false;
        try {
            writer.writeTo(temp);
            // Same folder, so this is a rename, which replaces the target in one step.
            Files.move(temp, target, StandardCopyOption.ATOMIC_MOVE);
            moved = true;
        } finally {
            if (!moved) {
                Files.deleteIfExists(temp);
            }
        }
    }

    /** Writes {@code bytes} to {@code target} atomically. */
    public static void write(Path target, byte[] bytes) throws IOException {
        write(target, file -> Files.write(file, bytes));
    }

    /**
     * Creates {@code folder} (and its parents) when missing and proves that files can be
     * created in it by creating and deleting one. Throws an exception naming the folder
     * otherwise, so a command can refuse before doing any work.
     */
    public static void requireWritableFolder(Path folder) throws IOException {
        if (Files.exists(folder) && !Files.isDirectory(folder)) {
            throw new NotDirectoryException(folder + " exists and is not a folder");
        }
        try {
            Files.createDirectories(folder);
            Files.delete(createTemporaryBeside(folder.resolve("fastvmt-write-check")));
        } catch (AccessDeniedException e) {
            throw new AccessDeniedException(folder.toString(), null, "the folder cannot be written (permission denied)");
        } catch (FileSystemException e) {
            throw new FileSystemException(folder.toString(), null, "the folder cannot be written ("
                    + (e.getReason() == null ? e.getClass().getSimpleName() : e.getReason()) + ")");
        }
    }

    /**
     * Proves, before any work, that {@link #write} can later put a file at {@code target}: it
     * is not a folder or anything else but a regular file, its folder exists (created with its
     * parents when missing) and a file can be created there. Throws an exception whose message
     * starts with {@code target} otherwise.
     */
    public static void requireWritableFile(Path target) throws IOException {
        if (Files.isDirectory(target)) {
            throw new FileSystemException(target.toString(), null, "is a folder; the output must be a file name");
        }
        if (Files.exists(target, LinkOption.NOFOLLOW_LINKS) && !Files.isRegularFile(target, LinkOption.NOFOLLOW_LINKS)) {
            // Renaming over a device or a link would replace it: never what was meant.
            throw new FileSystemException(target.toString(), null, "exists and is not a regular file");
        }
        Path folder = target.toAbsolutePath().getParent();
        Path existing = folder;
        while (existing != null && !Files.exists(existing)) {
            existing = existing.getParent();
        }
        if (existing != null && !Files.isDirectory(existing)) {
            throw new FileSystemException(target.toString(), null, "cannot be written: " + existing
                    + " is a file, not a folder");
        }
        try {
            requireWritableFolder(folder);
        } catch (IOException e) {
            throw new FileSystemException(target.toString(), null, "cannot be written (" + e.getMessage() + ")");
        }
    }

    /**
     * A new empty file ".NAME.RANDOM.tmp.EXT" in the folder of {@code target} ("NAME.EXT"),
     * created with the default permissions (Files.createTempFile would make it private, and
     * the rename would keep that).
     */
    private static Path createTemporaryBeside(Path target) throws IOException {
        Path folder = target.toAbsolutePath().getParent();
        String name = target.getFileName().toString();
        int dot = name.lastIndexOf('.');
        String stem = dot > 0 ? name.substring(0, dot) : name;
        String extension = dot > 0 ? name.substring(dot) : "";
        while (true) {
            String random = Long.toUnsignedString(ThreadLocalRandom.current().nextLong(), 36);
            try {
                return Files.createFile(folder.resolve("." + stem + "." + random + ".tmp" + extension));
            } catch (FileAlreadyExistsException e) {
                // Another writer drew the same name: draw again.
            }
        }
    }
}
