package org.fastvmt.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.NotDirectoryException;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class AtomicFilesTest {

    @TempDir
    Path dir;

    @Test
    void writesTheContentAndLeavesNoTemporaryFile() throws IOException {
        Path target = dir.resolve("motion.json");
        AtomicFiles.write(target, "{}".getBytes(StandardCharsets.UTF_8));
        AtomicFiles.write(target, "{\"a\":1}".getBytes(StandardCharsets.UTF_8));
        assertEquals("{\"a\":1}", Files.readString(target));
        assertEquals(List.of(target), list(dir));
    }

    @Test
    void theWriterSeesATemporaryNameWithTheTargetsExtension() throws IOException {
        Path target = dir.resolve("motion.mp4");
        AtomicFiles.write(target, file -> {
            assertTrue(file.getFileName().toString().endsWith(".mp4"), file.toString());
            assertTrue(!file.equals(target) && file.getParent().equals(target.toAbsolutePath().getParent()));
            Files.writeString(file, "video");
        });
        assertEquals("video", Files.readString(target));
    }

    @Test
    void aFailingWriterLeavesTheOldTargetAndNoTemporaryFile() throws IOException {
        Path target = dir.resolve("flow_0000.png");
        Files.writeString(target, "old");
        IOException thrown = assertThrows(IOException.class, () -> AtomicFiles.write(target, file -> {
            Files.writeString(file, "half");
            throw new IOException("disk full");
        }));
        assertEquals("disk full", thrown.getMessage());
        assertArrayEquals("old".getBytes(StandardCharsets.UTF_8), Files.readAllBytes(target));
        assertEquals(List.of(target), list(dir));
    }

    @Test
    void requireWritableFolderCreatesMissingFolders() throws IOException {
        Path folder = dir.resolve("a/b/c");
        AtomicFiles.requireWritableFolder(folder);
        assertTrue(Files.isDirectory(folder));
        assertEquals(List.of(), list(folder));
    }

    @Test
    void requireWritableFolderRefusesAFileAndAFolderBelowAFile() throws IOException {
        Path file = Files.writeString(dir.resolve("plain.txt"), "x");
        NotDirectoryException onFile = assertThrows(NotDirectoryException.class,
                () -> AtomicFiles.requireWritableFolder(file));
        assertTrue(onFile.getMessage().contains(file.toString()), onFile.getMessage());
        Path below = file.resolve("out");
        FileSystemException belowFile = assertThrows(FileSystemException.class,
                () -> AtomicFiles.requireWritableFolder(below));
        assertTrue(belowFile.getMessage().contains(below.toString()), belowFile.getMessage());
    }

    private static List<Path> list(Path folder) throws IOException {
        try (Stream<Path> files = Files.list(folder)) {
            return files.sorted().toList();
        }
    }
}
