package org.fastvmt.tensor;

import org.fastvmt.nativeabi.FastVmtH;

/** Element types of tensors. */
public enum DType {
    F32(4, FastVmtH.FVMT_DTYPE_F32),
    BF16(2, FastVmtH.FVMT_DTYPE_BF16),
    I32(4, -1);

    private final int bytes;
    private final int nativeCode;

    DType(int bytes, int nativeCode) {
        this.bytes = bytes;
        this.nativeCode = nativeCode;
    }

    public int bytes() {
        return bytes;
    }

    /** The FVMT_DTYPE_* value of a floating-point type. */
    public int nativeCode() {
        if (nativeCode < 0) {
            throw new IllegalArgumentException(this + " is not a floating-point type of fastvmt.h");
        }
        return nativeCode;
    }
}
