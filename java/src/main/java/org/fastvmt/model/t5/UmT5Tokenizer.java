package org.fastvmt.model.t5;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.function.Consumer;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;

/**
 * umT5's tokenizer, as Wan's {@code HuggingfaceTokenizer} wrapper (wan/modules/tokenizers.py)
 * runs it for {@code T5EncoderModel}: clean='whitespace', add_special_tokens=True, truncation to
 * seq_len = text_len. The tokenizer itself is the model folder's {@code tokenizer.json} (the
 * HuggingFace tokenizers format of google/umt5-xxl: a Unigram model whose post-processor appends
 * EOS {@code </s>}), run by the Rust tokenizers library through DJL, offline.
 *
 * <p>{@link #encode} returns the prompt's ids without padding (Wan pads to text_len with id 0 and
 * masks the padding; {@link UmT5Encoder#encode} writes zeros there instead, the same result). A
 * prompt longer than textLength is truncated as transformers does with truncation=True: the text's
 * tokens are cut so that they and the special tokens fit, so the last id is still EOS; the
 * warning hook is told.
 *
 * <p>Cleaning, as tokenizers.py's basic_clean then whitespace_clean: HTML entities unescaped twice,
 * every run of whitespace made one space, the ends stripped. Not reproduced: {@code
 * ftfy.fix_text}, which repairs mojibake (text decoded with the wrong charset), and HTML's rarer
 * named entities (only {@code &amp; &lt; &gt; &quot; &apos; &nbsp;} and numeric ones are known
 * here); a prompt typed as plain text is unaffected by either.
 */
public final class UmT5Tokenizer implements AutoCloseable {

    public static final String FILE = "tokenizer.json";
    /** Where the official Wan2.1 folders keep the tokenizer (wan/configs/shared_config.py, t5_tokenizer). */
    public static final String ORIGINAL_SUBFOLDER = "google/umt5-xxl";
    /** Where a diffusers pipeline keeps it. */
    public static final String DIFFUSERS_SUBFOLDER = "tokenizer";

    private final HuggingFaceTokenizer untruncated;
    private final HuggingFaceTokenizer truncating;
    private final int textLength;
    private final Consumer<String> warnings;

    private UmT5Tokenizer(HuggingFaceTokenizer untruncated, HuggingFaceTokenizer truncating, int textLength,
            Consumer<String> warnings) {
        this.untruncated = untruncated;
        this.truncating = truncating;
        this.textLength = textLength;
        this.warnings = warnings;
    }

    /**
     * The tokenizer.json of {@code path}: the file itself, or in the folder, its {@value
     * #ORIGINAL_SUBFOLDER}/ or its {@value #DIFFUSERS_SUBFOLDER}/; the error names each place.
     */
    public static Path locate(Path path) throws IOException {
        if (Files.isRegularFile(path)) {
            return path;
        }
        List<Path> candidates = List.of(path.resolve(FILE), path.resolve(ORIGINAL_SUBFOLDER).resolve(FILE),
                path.resolve(DIFFUSERS_SUBFOLDER).resolve(FILE));
        for (Path candidate : candidates) {
            if (Files.isRegularFile(candidate)) {
                return candidate;
            }
        }
        List<String> tried = new ArrayList<>();
        candidates.forEach(c -> tried.add(c.toString()));
        throw new NoSuchFileException(path.toString(), null, "no umT5 tokenizer found: looked for "
                + String.join(", ", tried));
    }

    /** {@link #open(Path, int, Consumer)} reporting truncation on standard error. */
    public static UmT5Tokenizer open(Path path, int textLength) throws IOException {
        return open(path, textLength, message -> System.err.println("warning: " + message));
    }

    /**
     * Reads the tokenizer of {@code path} (see {@link #locate}).
     *
     * @param textLength the most ids {@link #encode} returns (Wan: 512), EOS included
     * @param warnings   receives a sentence whenever a prompt is truncated
     */
    public static UmT5Tokenizer open(Path path, int textLength, Consumer<String> warnings) throws IOException {
        Objects.requireNonNull(warnings, "warnings");
        if (textLength < 2) {
            throw new IllegalArgumentException("textLength must be >= 2 (a token and EOS), got " + textLength);
        }
        Path file = locate(path);
        HuggingFaceTokenizer untruncated = read(file, Map.of("addSpecialTokens", "true", "truncation", "false",
                "padding", "false"));
        try {
            HuggingFaceTokenizer truncating = read(file, Map.of("addSpecialTokens", "true", "truncation", "true",
                    "padding", "false", "maxLength", Integer.toString(textLength)));
            return new UmT5Tokenizer(untruncated, truncating, textLength, warnings);
        } catch (IOException | RuntimeException e) {
            untruncated.close();
            throw e;
        }
    }

    private static HuggingFaceTokenizer read(Path file, Map<String, String> options) throws IOException {
        // From a stream: only tokenizer.json is read (no tokenizer_config.json beside it).
        try (InputStream in = Files.newInputStream(file)) {
            return HuggingFaceTokenizer.newInstance(in, options);
        } catch (RuntimeException e) {
            throw new IOException(file + ": not a HuggingFace tokenizer.json: " + e.getMessage(), e);
        }
    }

    public int textLength() {
        return textLength;
    }

    /**
     * The ids of {@code prompt} after cleaning, with the special tokens the tokenizer adds (umT5:
     * EOS at the end), at most textLength of them.
     */
    public int[] encode(String prompt) {
        Objects.requireNonNull(prompt, "prompt");
        String text = clean(prompt);
        long[] all = untruncated.encode(text).getIds();
        Encoding cut = truncating.encode(text);
        long[] ids = cut.getIds();
        if (all.length > textLength) {
            warnings.accept("the prompt has " + all.length + " tokens, more than the text encoder's " + textLength
                    + ": it is truncated to " + ids.length + " (what follows \"" + excerpt(ids) + "\" is dropped)");
        }
        int[] out = new int[ids.length];
        for (int i = 0; i < ids.length; i++) {
            out[i] = Math.toIntExact(ids[i]);
        }
        return out;
    }

    private String excerpt(long[] ids) {
        int from = Math.max(0, ids.length - 6);
        String tail = truncating.decode(Arrays.copyOfRange(ids, from, ids.length), true);
        return (from > 0 ? "…" : "") + tail;
    }

    /** The text of {@code ids}, special tokens skipped. */
    public String decode(int[] ids) {
        long[] wide = new long[ids.length];
        for (int i = 0; i < ids.length; i++) {
            wide[i] = ids[i];
        }
        return untruncated.decode(wide, true);
    }

    private static final Pattern WHITESPACE = Pattern.compile("\\s+", Pattern.UNICODE_CHARACTER_CLASS);
    private static final Pattern ENTITY = Pattern.compile("&(#[0-9]+|#[xX][0-9a-fA-F]+|amp|lt|gt|quot|apos|nbsp);");

    /** tokenizers.py's whitespace_clean(basic_clean(text)), without ftfy (see the class comment). */
    public static String clean(String text) {
        String unescaped = unescape(unescape(text)).strip();
        return WHITESPACE.matcher(unescaped).replaceAll(" ").strip();
    }

    private static String unescape(String text) {
        Matcher matcher = ENTITY.matcher(text);
        StringBuilder out = new StringBuilder();
        while (matcher.find()) {
            String entity = matcher.group(1);
            String replacement = switch (entity) {
                case "amp" -> "&";
                case "lt" -> "<";
                case "gt" -> ">";
                case "quot" -> "\"";
                case "apos" -> "'";
                case "nbsp" -> "\u00a0";
                default -> codePoint(entity, matcher.group());
            };
            matcher.appendReplacement(out, Matcher.quoteReplacement(replacement));
        }
        matcher.appendTail(out);
        return out.toString();
    }

    private static String codePoint(String entity, String original) {
        try {
            int value = entity.charAt(1) == 'x' || entity.charAt(1) == 'X' ? Integer.parseInt(entity.substring(2), 16)
                    : Integer.parseInt(entity.substring(1));
            return Character.isValidCodePoint(value) && value != 0 ? new String(Character.toChars(value)) : "\ufffd";
        } catch (NumberFormatException e) {
            return original;
        }
    }

    @Override
    public void close() {
        untruncated.close();
        truncating.close();
    }
}
