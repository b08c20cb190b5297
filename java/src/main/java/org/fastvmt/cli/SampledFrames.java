package org.fastvmt.cli;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import org.fastvmt.io.RgbFrame;
import org.fastvmt.io.SyntheticClip;
import org.fastvmt.io.VideoReader;
import org.fastvmt.motion.PatchDescriptors;

/**
 * The frames motion is read from: every {@code step}-th frame of a video or of a synthetic
 * clip (frames 0, step, 2·step, ...), centre-cropped and resized to the model size, kept as a
 * picture (for drawing) and as patch descriptors (for the AMF). Only sampled frames are kept.
 *
 * @param source      what was read, for people ("synthetic clip (seed 0)" or the file)
 * @param framesRead  frames in the input (decoded, or generated)
 * @param fps         the input's frame rate
 * @param inputWidth  the input's size in pixels
 * @param inputHeight
 * @param crop        the part of each input frame that was resized to the model size
 * @param frames      the sampled frames, in order
 * @param synthetic   true when the motion is known ({@link Sample#trueVelocity} is set)
 */
record SampledFrames(String source, int framesRead, double fps, int inputWidth, int inputHeight,
        RgbFrame.Crop crop, List<Sample> frames, boolean synthetic) {

    /**
     * One sampled frame.
     *
     * @param index        its index in the input
     * @param picture      the model-sized frame
     * @param patches      its descriptors, one per token
     * @param trueVelocity for a synthetic clip, [rows, cols, 2] = (vx, vy) in input pixels per
     *                     frame of what covers each cell's centre; null for a video
     */
    record Sample(int index, BufferedImage picture, PatchDescriptors.Patches patches, float[] trueVelocity) {
    }

    /** Frames 0, step, 2·step, ... of the standard synthetic clip, generated at the model size. */
    static SampledFrames synthetic(SyntheticClip clip, int step) {
        int rows = clip.height() / PatchDescriptors.CELL;
        int cols = clip.width() / PatchDescriptors.CELL;
        List<Sample> samples = new ArrayList<>();
        try (Progress bar = Progress.start("generate", (clip.frames() + step - 1) / step)) {
            for (int t = 0; t < clip.frames(); t += step) {
                samples.add(sample(t, clip.frame(t), clip.cellVelocities(t, rows, cols)));
                bar.step();
            }
        }
        return new SampledFrames("synthetic clip", clip.frames(), clip.fps(), clip.width(), clip.height(),
                RgbFrame.cropFor(clip.width(), clip.height(), clip.width(), clip.height()), samples, true);
    }

    /** Decodes {@code video}, keeping frames 0, step, 2·step, ... resized to width x height. */
    static SampledFrames decode(Path video, int width, int height, int step) throws IOException {
        try (VideoReader reader = VideoReader.open(video)) {
            List<Sample> samples = new ArrayList<>();
            try (Progress bar = Progress.start("decode", reader.estimatedFrameCount())) {
                while (true) {
                    int index = reader.framesRead();
                    if (index % step == 0) {
                        RgbFrame frame = reader.read();
                        if (frame == null) {
                            break;
                        }
                        samples.add(sample(index, frame.resizeCentreCrop(width, height), null));
                    } else if (!reader.skip()) {
                        break;
                    }
                    bar.step();
                }
            }
            return new SampledFrames(video.toString(), reader.framesRead(), reader.fps(), reader.width(),
                    reader.height(), RgbFrame.cropFor(reader.width(), reader.height(), width, height), samples, false);
        }
    }

    private static Sample sample(int index, RgbFrame frame, float[] trueVelocity) {
        return new Sample(index, frame.toImage(), PatchDescriptors.of(frame.rgb(), frame.width(), frame.height()),
                trueVelocity);
    }
}
