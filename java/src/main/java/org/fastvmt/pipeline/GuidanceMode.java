package org.fastvmt.pipeline;

import java.util.Locale;

/**
 * How the latents are guided towards the reference's motion during the first denoising steps.
 * The three modes run one code path ({@link MotionTransfer}); they differ only where the methods
 * differ:
 * <ul>
 * <li>{@link #FASTVMT}: sliding-window AMF over the frame pairs j ∈ [i, i + sf), loss =
 * window loss + tracking loss, a fresh gradient every {@code interval} iterations and the kept
 * one in between;</li>
 * <li>{@link #DITFLOW}: DiTFlow's configuration, the full AMF over every frame pair, loss = window
 * loss only, a fresh gradient every iteration;</li>
 * <li>{@link #NONE}: plain sampling, no AMF and no guidance.</li>
 * </ul>
 */
public enum GuidanceMode {
    FASTVMT("fastvmt"),
    DITFLOW("ditflow"),
    NONE("none");

    private final String label;

    GuidanceMode(String label) {
        this.label = label;
    }

    /** The mode called {@code name} ("fastvmt", "ditflow" or "none", any case). */
    public static GuidanceMode parse(String name) {
        if (name != null) {
            String wanted = name.trim().toLowerCase(Locale.ROOT);
            for (GuidanceMode mode : values()) {
                if (mode.label.equals(wanted)) {
                    return mode;
                }
            }
        }
        throw new IllegalArgumentException("mode must be one of fastvmt, ditflow, none; got "
                + (name == null ? "null" : "'" + name + "'"));
    }

    /** The name the CLI and the timings use: "fastvmt", "ditflow" or "none". */
    public String label() {
        return label;
    }

    /** Whether this mode guides the latents at all (computes AMF). */
    public boolean guides() {
        return this != NONE;
    }

    @Override
    public String toString() {
        return label;
    }
}
