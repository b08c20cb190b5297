package org.fastvmt.sampling;

import java.util.Arrays;

import org.fastvmt.nativeabi.FastVmtLibrary;
import org.fastvmt.tensor.DType;
import org.fastvmt.tensor.Tensor;

/**
 * The flow-matching Euler sampler of Wan2.1 (DiffSynth-Studio's {@code FlowMatchScheduler} with
 * {@code sigma_min = 0}, {@code extra_one_step = True}, as the official FastVMT pipeline runs it):
 * <ul>
 * <li>σᵢ = linspace(strength, 0, N + 1)[i], i &lt; N (the last point, 0, is dropped);</li>
 * <li>shifted σ'ᵢ = s·σᵢ / (1 + (s − 1)·σᵢ); the timestep fed to the DiT is 1000·σ'ᵢ;</li>
 * <li>{@link #step}: x ← x + v·(σ'ᵢ₊₁ − σ'ᵢ), with σ'_N = 0 after the last step;</li>
 * <li>{@link #addNoise}: (1 − σ'ᵢ)·x₀ + σ'ᵢ·ε, the video-to-video start at step 0.</li>
 * </ul>
 *
 * @param steps     denoising steps N
 * @param shift     the timestep shift s
 * @param strength  the denoising strength: the first σ, 1 starting from pure noise
 */
public record FlowMatchScheduler(int steps, double shift, double strength) {

    // FastVMT's sampling defaults on Wan2.1 (DESIGN.md, "Numbers to know").
    /** Denoising steps. */
    public static final int DEFAULT_STEPS = 50;
    /** The timestep shift. */
    public static final double DEFAULT_SHIFT = 7;
    /** The denoising strength: sampling starts from the reference noised to σ = 0.75. */
    public static final double DEFAULT_STRENGTH = 0.75;

    public FlowMatchScheduler {
        if (steps < 1) {
            throw new IllegalArgumentException("steps must be >= 1, got " + steps);
        }
        if (!(shift > 0) || !Double.isFinite(shift)) {
            throw new IllegalArgumentException("shift must be a positive number, got " + shift);
        }
        if (!(strength > 0 && strength <= 1)) {
            throw new IllegalArgumentException("strength must be in (0, 1], got " + strength);
        }
    }

    /** The defaults of FastVMT's motion transfer: 50 steps, shift 7, strength 0.75. */
    public static FlowMatchScheduler defaults() {
        return new FlowMatchScheduler(DEFAULT_STEPS, DEFAULT_SHIFT, DEFAULT_STRENGTH);
    }

    /** The shifted σ' of step {@code index}; {@code index == steps} gives 0 (the end of sampling). */
    public double sigma(int index) {
        if (index < 0 || index > steps) {
            throw new IllegalArgumentException("step index must be in [0, " + steps + "], got " + index);
        }
        if (index == steps) {
            return 0;
        }
        double sigma = strength + (0 - strength) * index / steps;
        return shift * sigma / (1 + (shift - 1) * sigma);
    }

    /** The timestep of step {@code index} as the DiT takes it: 1000·σ'. */
    public double timestep(int index) {
        if (index == steps) {
            throw new IllegalArgumentException("step index must be in [0, " + (steps - 1) + "], got " + index);
        }
        return 1000 * sigma(index);
    }

    /** Every step's timestep, in sampling order. */
    public double[] timesteps() {
        double[] t = new double[steps];
        for (int i = 0; i < steps; i++) {
            t[i] = timestep(i);
        }
        return t;
    }

    /** The Euler step of step {@code index}, in place: x += velocity · (σ'ᵢ₊₁ − σ'ᵢ). */
    public void step(Tensor x, Tensor velocity, int index) {
        requireSame(x, velocity, "velocity");
        float delta = (float) (sigma(index + 1) - sigma(index));
        addScaled(velocity, delta, x);
    }

    /** A new tensor (1 − σ'ᵢ)·clean + σ'ᵢ·noise, on clean's backend. */
    public Tensor addNoise(Tensor clean, Tensor noise, int index) {
        requireSame(clean, noise, "noise");
        double sigma = sigma(index);
        Tensor noisy = Tensor.zeros(clean.backend(), DType.F32, clean.shape());
        try {
            addScaled(clean, (float) (1 - sigma), noisy);
            addScaled(noise, (float) sigma, noisy);
        } catch (RuntimeException e) {
            noisy.close();
            throw e;
        }
        return noisy;
    }

    private static void addScaled(Tensor x, float alpha, Tensor y) {
        FastVmtLibrary library = y.backend().library();
        library.check(library.h().fvmt_add_scaled(x.segment(), alpha, y.segment(), y.elementCount(),
                y.backend().stream()));
    }

    private static void requireSame(Tensor x, Tensor other, String name) {
        if (x.dtype() != DType.F32 || other.dtype() != DType.F32) {
            throw new IllegalArgumentException("latents and " + name + " must be F32, got " + x.dtype() + " and "
                    + other.dtype());
        }
        if (!Arrays.equals(x.shape(), other.shape())) {
            throw new IllegalArgumentException(name + " must have the latents' shape " + Arrays.toString(x.shape())
                    + ", got " + Arrays.toString(other.shape()));
        }
        if (x.backend() != other.backend()) {
            throw new IllegalArgumentException(name + " must be on the latents' backend " + x.backend().name());
        }
    }
}
