package org.fastvmt.pipeline;

import java.util.SplittableRandom;

import org.fastvmt.backend.Backend;
import org.fastvmt.tensor.Tensor;

/**
 * The Gaussian noise of one run, all of it derived from the seed: stream 0 noises the reference
 * to the first timestep (the start latents), stream 1 + s noises the reference for the reference
 * AMF of denoising step s. Each stream has its own generator, so a stream's noise does not depend
 * on which other streams a mode uses (fastvmt, ditflow and none start from the same latents), and
 * it is drawn on the host, so it is the same on every backend.
 */
final class TransferNoise {

    private final long seed;
    private final long[] shape;

    TransferNoise(long seed, long[] shape) {
        this.seed = seed;
        this.shape = shape.clone();
    }

    /** ε of the start latents. */
    Tensor start(Backend backend) {
        return stream(backend, 0);
    }

    /** ε of the noised reference of denoising step {@code step}. */
    Tensor reference(Backend backend, int step) {
        return stream(backend, 1L + step);
    }

    private Tensor stream(Backend backend, long stream) {
        // Stream n's generator is seeded with the n-th output of a generator seeded with the seed.
        SplittableRandom root = new SplittableRandom(seed);
        long streamSeed = 0;
        for (long n = 0; n <= stream; n++) {
            streamSeed = root.nextLong();
        }
        SplittableRandom random = new SplittableRandom(streamSeed);
        long count = 1;
        for (long d : shape) {
            count = Math.multiplyExact(count, d);
        }
        float[] data = new float[Math.toIntExact(count)];
        for (int i = 0; i < data.length; i++) {
            data[i] = (float) random.nextGaussian();
        }
        return Tensor.of(backend, data, shape);
    }
}
