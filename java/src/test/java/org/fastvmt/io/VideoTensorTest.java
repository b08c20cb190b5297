package org.fastvmt.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;

import org.fastvmt.backend.Backend;
import org.fastvmt.backend.Backends;
import org.fastvmt.backend.Device;
import org.fastvmt.tensor.DType;
import org.fastvmt.tensor.Tensor;
import org.junit.jupiter.api.Test;

/** The [3, F, H, W] layout in [-1, 1] that the Wan VAE reads, and its way back to pictures. */
class VideoTensorTest {

    private static final int W = 5;
    private static final int H = 3;
    private static final int F = 2;

    /** A frame whose every value is distinct and exact in 8 bits: (channel, frame, y, x) encoded. */
    private static RgbFrame frame(int t) {
        float[] rgb = new float[3 * W * H];
        for (int y = 0; y < H; y++) {
            for (int x = 0; x < W; x++) {
                for (int c = 0; c < 3; c++) {
                    rgb[3 * (y * W + x) + c] = (c * 60 + t * 30 + y * W + x) / 255f;
                }
            }
        }
        return new RgbFrame(W, H, rgb);
    }

    @Test
    void framesBecomeChannelFirstValuesInMinusOneToOne() {
        VideoTensor clip = VideoTensor.of(List.of(frame(0), frame(1)), 15);
        assertArrayEquals(new long[] {3, F, H, W}, clip.shape());
        assertEquals(15, clip.fps());
        for (int c = 0; c < 3; c++) {
            for (int t = 0; t < F; t++) {
                for (int y = 0; y < H; y++) {
                    for (int x = 0; x < W; x++) {
                        float v = (c * 60 + t * 30 + y * W + x) / 255f;
                        float expected = 2 * v - 1;
                        // data[((c F + t) H + y) W + x]
                        assertEquals(expected, clip.data()[((c * F + t) * H + y) * W + x], 1e-6f);
                        assertEquals(expected, clip.get(c, t, y, x), 1e-6f);
                    }
                }
            }
        }
        assertEquals(-1f, VideoTensor.of(List.of(new RgbFrame(1, 1, new float[3])), 0).data()[0]);
        assertEquals(1f, VideoTensor.of(List.of(new RgbFrame(1, 1, new float[] {1, 1, 1})), 0).data()[2]);
    }

    @Test
    void theInverseGivesTheFramesBackAndClamps() {
        VideoTensor clip = VideoTensor.of(List.of(frame(0), frame(1)), 15);
        for (int t = 0; t < F; t++) {
            assertArrayEquals(frame(t).rgb(), clip.frame(t).rgb(), 1e-6f);
        }
        // A decoder may overshoot: -1.5 and 3 are clamped to black and white, 0 is mid-grey.
        VideoTensor overshoot = new VideoTensor(1, 1, 1, 16, new float[] {-1.5f, 0f, 3f});
        assertArrayEquals(new float[] {0f, 0.5f, 1f}, overshoot.frame(0).rgb());
        assertEquals(0x0080ff, overshoot.frame(0).toImage().getRGB(0, 0) & 0xffffff);
    }

    @Test
    void aTensorCarriesTheClipBothWays() {
        VideoTensor clip = VideoTensor.of(List.of(frame(0), frame(1)), 15);
        try (Backend backend = Backends.open(Device.CPU); Tensor tensor = clip.toTensor(backend)) {
            assertEquals(DType.F32, tensor.dtype());
            assertArrayEquals(new long[] {3, F, H, W}, tensor.shape());
            VideoTensor back = VideoTensor.fromTensor(tensor, 15);
            assertArrayEquals(clip.data(), back.data());
            assertEquals(F, back.frames());
            // A batch of one, as the VAE's decoder returns it, and bf16 output.
            try (Tensor batch = Tensor.of(backend, DType.BF16, clip.data(), 1, 3, F, H, W)) {
                VideoTensor fromBatch = VideoTensor.fromTensor(batch, 16);
                assertEquals(16, fromBatch.fps());
                assertArrayEquals(clip.data(), fromBatch.data(), 1f / 128);
            }
            try (Tensor wrong = Tensor.of(backend, clip.data(), F, 3, H, W)) {
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                        () -> VideoTensor.fromTensor(wrong, 15));
                assertTrue(e.getMessage().contains("[3, F, H, W]") && e.getMessage().contains("[2, 3, 3, 5]"),
                        e.getMessage());
            }
        }
    }

    @Test
    void badShapesAreRefusedWithTheirSizes() {
        IllegalArgumentException length = assertThrows(IllegalArgumentException.class,
                () -> new VideoTensor(2, 3, 5, 15, new float[10]));
        assertTrue(length.getMessage().contains("90 values") && length.getMessage().contains("got 10"),
                length.getMessage());
        assertThrows(IllegalArgumentException.class, () -> new VideoTensor(0, 3, 5, 15, new float[0]));
        assertThrows(IllegalArgumentException.class, () -> new VideoTensor(1, 1, 1, Double.NaN, new float[3]));
        assertThrows(IllegalArgumentException.class, () -> VideoTensor.of(List.of(frame(0), new RgbFrame(2, 2,
                new float[12])), 15));
        IllegalArgumentException huge = assertThrows(IllegalArgumentException.class,
                () -> VideoTensor.zeros(1000, 1080, 1920, 30));
        assertTrue(huge.getMessage().contains("do not fit"), huge.getMessage());
    }
}
