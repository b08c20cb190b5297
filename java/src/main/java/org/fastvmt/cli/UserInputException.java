package org.fastvmt.cli;

/** Input the user gave cannot be used (a file that is not a video, a folder that cannot be written). */
final class UserInputException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    UserInputException(String message) {
        super(message);
    }

    UserInputException(String message, Throwable cause) {
        super(message, cause);
    }
}
