package org.fastvmt.pipeline;

import java.util.List;
import java.util.Locale;

import com.google.gson.JsonObject;

/**
 * Wall-clock milliseconds and counts per phase of one {@link MotionTransfer#run}. Each phase ends
 * with a synchronisation of the backend, so on a GPU a phase is charged for its own kernels. The
 * phases:
 * <ul>
 * <li>{@value #REFERENCE_AMF}: noising the reference to the step's timestep, the truncated forward
 * to the AMF block with the empty prompt, and the reference AMF (once per guided step);</li>
 * <li>{@value #FRESH_GUIDANCE}: a fresh-gradient iteration: truncated forward to Q, K, AMF, losses,
 * their backward to dQ, dK, the backward through the DiT to the latents, and the AdamW step;</li>
 * <li>{@value #REUSED_ITERATIONS}: an iteration that applies the kept gradient (one AdamW step);</li>
 * <li>{@value #DENOISING}: the classifier-free-guidance forwards (two, or one when the scale is 1)
 * and the Euler step (once per denoising step);</li>
 * <li>{@value #TOTAL}: the whole run, including what no phase covers (validation, start noise,
 * the prompt's conditioning).</li>
 * </ul>
 */
public final class PhaseTimings {

    public static final String REFERENCE_AMF = "reference_amf";
    public static final String FRESH_GUIDANCE = "fresh_guidance";
    public static final String REUSED_ITERATIONS = "reused_iterations";
    public static final String DENOISING = "denoising";
    public static final String TOTAL = "total";

    /** Every phase in the order of {@link #toJson()}, {@value #TOTAL} last. */
    public static final List<String> PHASES = List.of(REFERENCE_AMF, FRESH_GUIDANCE, REUSED_ITERATIONS, DENOISING,
            TOTAL);

    private final long[] nanos = new long[PHASES.size()];
    private final int[] counts = new int[PHASES.size()];

    PhaseTimings() {
    }

    /** Milliseconds spent in {@code phase} (one of {@link #PHASES}). */
    public double ms(String phase) {
        return nanos[index(phase)] / 1e6;
    }

    /** How many times {@code phase} ran ({@value #TOTAL}: 1 for a finished run). */
    public int count(String phase) {
        return counts[index(phase)];
    }

    /**
     * {"reference_amf_ms": …, "reference_amf_count": …, …, "denoising_count": …, "total_ms": …},
     * milliseconds rounded to microseconds.
     */
    public JsonObject toJson() {
        JsonObject json = new JsonObject();
        for (String phase : PHASES) {
            json.addProperty(phase + "_ms", Math.round(ms(phase) * 1000) / 1000.0);
            if (!phase.equals(TOTAL)) {
                json.addProperty(phase + "_count", count(phase));
            }
        }
        return json;
    }

    /** Charges {@code elapsedNanos} and one more run to {@code phase}. */
    void add(String phase, long elapsedNanos) {
        int index = index(phase);
        nanos[index] += elapsedNanos;
        counts[index]++;
    }

    private static int index(String phase) {
        int index = phase == null ? -1 : PHASES.indexOf(phase);
        if (index < 0) {
            throw new IllegalArgumentException("phase must be one of " + PHASES + ", got " + phase);
        }
        return index;
    }

    @Override
    public String toString() {
        StringBuilder text = new StringBuilder();
        for (String phase : PHASES) {
            if (!text.isEmpty()) {
                text.append(", ");
            }
            text.append(phase).append(String.format(Locale.ROOT, " %.1f ms", ms(phase)));
            if (!phase.equals(TOTAL)) {
                text.append(" ×").append(count(phase));
            }
        }
        return text.toString();
    }
}
