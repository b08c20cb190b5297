package org.fastvmt.model.wan;

import java.io.IOException;
import java.nio.file.Path;

/**
 * A Wan2.1 checkpoint whose config or tensors do not describe a model fastvmt runs. The message
 * starts with the checkpoint's path and lists every problem found.
 */
public final class InvalidCheckpointException extends IOException {
    private static final long serialVersionUID = 1L;

    public InvalidCheckpointException(Path path, String reason) {
        super(path + ": " + reason);
    }

    public InvalidCheckpointException(Path path, String reason, Throwable cause) {
        super(path + ": " + reason, cause);
    }
}
