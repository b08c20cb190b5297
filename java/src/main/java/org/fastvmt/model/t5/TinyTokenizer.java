package org.fastvmt.model.t5;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A small Unigram tokenizer.json in the HuggingFace tokenizers format of google/umt5-xxl
 * (Metaspace pre-tokenizer, a TemplateProcessing post-processor that appends {@code </s>}, ids
 * 0 = pad, 1 = EOS, 2 = unk as in umT5), for tiny model folders and tests. Its vocabulary (a
 * few words, the letters, digits and common punctuation) fits {@link UmT5Config#TINY}'s 64 rows;
 * any other character becomes {@code <unk>}.
 */
public final class TinyTokenizer {

    /** Unigram pieces: whole words are likely, single characters the fallback. */
    private static final String[] PIECES = {"<pad>", "</s>", "<unk>", "▁a", "▁cat", "▁dog", "▁runs", "▁the", "▁",
        "s", "c", "a", "t", "d", "o", "g", "r", "u", "n", "e", "h", "&", "<", ">",
        "b", "f", "i", "j", "k", "l", "m", "p", "q", "v", "w", "x", "y", "z",
        "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", ".", ",", "!", "?", "'", "-"};

    /** Rows of the vocabulary (the token ids are 0 .. VOCAB − 1). */
    public static final int VOCAB = PIECES.length;

    private TinyTokenizer() {
    }

    /** Writes {@value UmT5Tokenizer#FILE} into {@code folder} (created if missing) and returns its path. */
    public static Path write(Path folder) throws IOException {
        StringBuilder vocab = new StringBuilder();
        for (int i = 0; i < PIECES.length; i++) {
            double score = i < 3 ? 0.0 : PIECES[i].startsWith("▁") && PIECES[i].length() > 1 ? -2.0 : -6.0;
            String piece = PIECES[i].replace("\\", "\\\\").replace("\"", "\\\"");
            vocab.append(i == 0 ? "" : ",").append("[\"").append(piece).append("\",").append(score).append(']');
        }
        String special = """
                {"id":%d,"content":"%s","single_word":false,"lstrip":false,"rstrip":false,"normalized":false,\
                "special":true}""";
        String json = """
                {"version":"1.0","truncation":null,"padding":null,
                 "added_tokens":[%s,%s,%s],
                 "normalizer":null,
                 "pre_tokenizer":{"type":"Metaspace","replacement":"▁","prepend_scheme":"always","split":true},
                 "post_processor":{"type":"TemplateProcessing",
                   "single":[{"Sequence":{"id":"A","type_id":0}},{"SpecialToken":{"id":"</s>","type_id":0}}],
                   "pair":[{"Sequence":{"id":"A","type_id":0}},{"SpecialToken":{"id":"</s>","type_id":0}},
                           {"Sequence":{"id":"B","type_id":0}},{"SpecialToken":{"id":"</s>","type_id":0}}],
                   "special_tokens":{"</s>":{"id":"</s>","ids":[1],"tokens":["</s>"]}}},
                 "decoder":{"type":"Metaspace","replacement":"▁","prepend_scheme":"always","split":true},
                 "model":{"type":"Unigram","unk_id":2,"vocab":[%s],"byte_fallback":false}}
                """.formatted(special.formatted(0, "<pad>"), special.formatted(1, "</s>"),
                special.formatted(2, "<unk>"), vocab);
        Files.createDirectories(folder);
        Path file = folder.resolve(UmT5Tokenizer.FILE);
        Files.writeString(file, json, StandardCharsets.UTF_8);
        return file;
    }
}
