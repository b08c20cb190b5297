package org.fastvmt.io.pytorch;

import java.io.IOException;
import java.nio.file.Path;

/**
 * A PyTorch checkpoint (.pth/.pt) that does not follow the torch.save zip format, or that asks for
 * something the restricted reader refuses (a global or pickle opcode outside its short list, a
 * tensor type fastvmt does not read). The message starts with the file and says what was found
 * and what was expected.
 */
public final class InvalidPthException extends IOException {
    private static final long serialVersionUID = 1L;

    public InvalidPthException(Path file, String reason) {
        super(file + ": " + reason);
    }

    public InvalidPthException(Path file, String reason, Throwable cause) {
        super(file + ": " + reason, cause);
    }
}
