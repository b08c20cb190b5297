package org.fastvmt.model.t5;

import java.io.IOException;
import java.nio.file.Path;

/**
 * A text encoder checkpoint whose tensors do not describe the umT5 encoder asked for. The message
 * starts with the file's path and lists every problem found.
 */
public final class InvalidTextEncoderException extends IOException {
    private static final long serialVersionUID = 1L;

    public InvalidTextEncoderException(Path path, String reason) {
        super(path + ": " + reason);
    }

    public InvalidTextEncoderException(Path path, String reason, Throwable cause) {
        super(path + ": " + reason, cause);
    }
}
