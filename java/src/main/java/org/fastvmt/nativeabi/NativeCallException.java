package org.fastvmt.nativeabi;

/** A native function returned a status other than FVMT_OK; the message is the library's sentence. */
public final class NativeCallException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    private final int status;

    public NativeCallException(int status, String message) {
        super(message);
        this.status = status;
    }

    /** The FVMT_* status code. */
    public int status() {
        return status;
    }
}
