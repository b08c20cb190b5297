package org.fastvmt.io;

import java.io.IOException;
import java.nio.file.Path;

/** A file that is not a video FFmpeg can decode, or whose video stream breaks while decoding. */
public final class InvalidVideoException extends IOException {
    private static final long serialVersionUID = 1L;

    public InvalidVideoException(Path file, String reason) {
        super(file + ": " + reason);
    }
}
