package org.fastvmt.io.safetensors;

import java.io.IOException;
import java.nio.file.Path;

/**
 * A safetensors file (or sharded checkpoint index) that does not follow the format, or that holds
 * something fastvmt cannot read. The message starts with the file and says what was expected.
 */
public final class InvalidSafetensorsException extends IOException {
    private static final long serialVersionUID = 1L;

    public InvalidSafetensorsException(Path file, String reason) {
        super(file + ": " + reason);
    }

    public InvalidSafetensorsException(Path file, String reason, Throwable cause) {
        super(file + ": " + reason, cause);
    }
}
