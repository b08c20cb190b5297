package org.fastvmt.guidance;

/**
 * AdamW hyper-parameters other than the learning rate (which {@link LearningRateSchedule}
 * gives per iteration).
 */
public record AdamWConfig(float beta1, float beta2, float eps, float weightDecay) {

    /**
     * torch.optim.AdamW's defaults: the official guidance_step builds
     * {@code AdamW([latents], lr=0.003)} and sets nothing else.
     */
    public static final AdamWConfig PYTORCH_DEFAULTS = new AdamWConfig(0.9f, 0.999f, 1e-8f, 0.01f);

    public AdamWConfig {
        if (!(beta1 >= 0 && beta1 < 1)) {
            throw new IllegalArgumentException("beta1 must be in [0, 1), got " + beta1);
        }
        if (!(beta2 >= 0 && beta2 < 1)) {
            throw new IllegalArgumentException("beta2 must be in [0, 1), got " + beta2);
        }
        if (!(eps > 0 && Float.isFinite(eps))) {
            throw new IllegalArgumentException("eps must be finite and > 0, got " + eps);
        }
        if (!(weightDecay >= 0 && Float.isFinite(weightDecay))) {
            throw new IllegalArgumentException("weightDecay must be finite and >= 0, got " + weightDecay);
        }
    }
}
