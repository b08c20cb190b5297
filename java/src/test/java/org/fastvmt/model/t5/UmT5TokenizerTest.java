package org.fastvmt.model.t5;

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

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link UmT5Tokenizer} on a small Unigram tokenizer.json written here in the HuggingFace
 * tokenizers format of google/umt5-xxl (Metaspace pre-tokenizer, a TemplateProcessing
 * post-processor that appends {@code </s>}, ids 0 = pad, 1 = EOS, 2 = unk as in umT5).
 */
class UmT5TokenizerTest {

    static final int EOS = 1;

    /** Writes the tiny tokenizer.json ({@link TinyTokenizer}) into {@code folder} and returns its path. */
    static Path writeTokenizer(Path folder) throws IOException {
        return TinyTokenizer.write(folder);
    }

    @Test
    void encodesWordsAndAppendsEos(@TempDir Path dir) throws IOException {
        writeTokenizer(dir);
        try (UmT5Tokenizer tokenizer = UmT5Tokenizer.open(dir, 512, m -> { })) {
            assertArrayEquals(new int[] {7, 4, 6, EOS}, tokenizer.encode("the cat runs"));
            // "cats": the word piece and a character; unknown characters map to <unk> (2).
            assertArrayEquals(new int[] {3, 4, 9, EOS}, tokenizer.encode("a cats"));
            assertArrayEquals(new int[] {EOS}, tokenizer.encode(""));
            int[] ids = tokenizer.encode("the dog runs");
            assertEquals("the dog runs", tokenizer.decode(ids));
        }
    }

    @Test
    void cleansWhitespaceAndHtmlLikeWan(@TempDir Path dir) throws IOException {
        assertEquals("a cat & dog", UmT5Tokenizer.clean("  a\t\n cat &amp;amp;   dog\u00a0 "));
        assertEquals("<a> & é x", UmT5Tokenizer.clean("&lt;a&gt; &amp;#38; &#xe9; x"));
        writeTokenizer(dir);
        try (UmT5Tokenizer tokenizer = UmT5Tokenizer.open(dir, 512, m -> { })) {
            assertArrayEquals(tokenizer.encode("the cat"), tokenizer.encode("\n the\t\tcat  "));
        }
    }

    @Test
    void truncatesLongPromptsKeepingEosAndWarns(@TempDir Path dir) throws IOException {
        writeTokenizer(dir);
        List<String> warnings = new ArrayList<>();
        try (UmT5Tokenizer tokenizer = UmT5Tokenizer.open(dir, 4, warnings::add)) {
            assertArrayEquals(new int[] {7, 4, 6, EOS}, tokenizer.encode("the cat runs"));
            assertTrue(warnings.isEmpty(), "exactly textLength ids is no truncation: " + warnings);
            int[] ids = tokenizer.encode("the cat runs the dog runs");
            // transformers' truncation=True: text tokens cut so that they and EOS fit.
            assertArrayEquals(new int[] {7, 4, 6, EOS}, ids);
            assertEquals(1, warnings.size());
            assertTrue(warnings.get(0).contains("7 tokens") && warnings.get(0).contains("truncated to 4"),
                    warnings.get(0));
        }
    }

    @Test
    void findsTheTokenizerInEitherLayout(@TempDir Path dir) throws IOException {
        Path official = writeTokenizer(dir.resolve("wan").resolve(UmT5Tokenizer.ORIGINAL_SUBFOLDER));
        assertEquals(official, UmT5Tokenizer.locate(dir.resolve("wan")));
        Path diffusers = writeTokenizer(dir.resolve("pipe").resolve(UmT5Tokenizer.DIFFUSERS_SUBFOLDER));
        assertEquals(diffusers, UmT5Tokenizer.locate(dir.resolve("pipe")));
        NoSuchFileException missing = assertThrows(NoSuchFileException.class,
                () -> UmT5Tokenizer.open(dir.resolve("empty"), 512));
        assertTrue(missing.getMessage().contains("google/umt5-xxl/tokenizer.json")
                && missing.getMessage().contains("tokenizer/tokenizer.json"), missing.getMessage());
    }

    @Test
    void refusesBadInput(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("bad").resolve(UmT5Tokenizer.FILE);
        Files.createDirectories(file.getParent());
        Files.writeString(file, "{\"model\": 3}");
        IOException e = assertThrows(IOException.class, () -> UmT5Tokenizer.open(file, 512));
        assertTrue(e.getMessage().contains("not a HuggingFace tokenizer.json"), e.getMessage());
        writeTokenizer(dir);
        IllegalArgumentException length = assertThrows(IllegalArgumentException.class,
                () -> UmT5Tokenizer.open(dir, 1));
        assertTrue(length.getMessage().contains("textLength"), length.getMessage());
    }
}
