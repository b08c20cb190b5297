package org.fastvmt.tensor;

import org.fastvmt.nativeabi.FastVmtH;

/** The order of the channels·pt·ph·pw features of a patch token (fastvmt.h FVMT_PATCH_*). */
public enum PatchLayout {
    /** ((ch·pt + a)·ph + b)·pw + e: the order of a Conv3d weight, as in Wan's patch_embedding. */
    CHANNEL_FIRST(FastVmtH.FVMT_PATCH_CHANNEL_FIRST),
    /** ((a·ph + b)·pw + e)·channels + ch: the order of Wan's unpatchify of the head's output. */
    CHANNEL_LAST(FastVmtH.FVMT_PATCH_CHANNEL_LAST);

    private final int nativeCode;

    PatchLayout(int nativeCode) {
        this.nativeCode = nativeCode;
    }

    /** The FVMT_PATCH_* value. */
    public int nativeCode() {
        return nativeCode;
    }
}
