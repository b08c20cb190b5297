package org.fastvmt.io;

import java.awt.image.BufferedImage;
import java.awt.image.DataBufferByte;

/**
 * One picture as floats: {@code rgb[(y * width + x) * 3 + channel]}, channels red, green, blue,
 * values in [0, 1] (sRGB-encoded, as decoded). The form the motion code reads frames in.
 */
public record RgbFrame(int width, int height, float[] rgb) {

    public RgbFrame {
        if (width < 1 || height < 1) {
            throw new IllegalArgumentException("a frame needs a positive size, got " + width + "x" + height);
        }
        if (rgb.length != 3L * width * height) {
            throw new IllegalArgumentException("rgb must hold 3 * " + width + " * " + height + " values, got "
                    + rgb.length);
        }
    }

    /** The pixels of {@code image} (any type). */
    public static RgbFrame of(BufferedImage image) {
        int width = image.getWidth();
        int height = image.getHeight();
        float[] rgb = new float[3 * width * height];
        if (image.getType() == BufferedImage.TYPE_3BYTE_BGR) {
            // The decoder's own layout: read the bytes directly instead of one getRGB call per pixel.
            byte[] bgr = ((DataBufferByte) image.getRaster().getDataBuffer()).getData();
            for (int i = 0; i < width * height; i++) {
                rgb[3 * i] = (bgr[3 * i + 2] & 0xff) / 255f;
                rgb[3 * i + 1] = (bgr[3 * i + 1] & 0xff) / 255f;
                rgb[3 * i + 2] = (bgr[3 * i] & 0xff) / 255f;
            }
        } else {
            int[] row = new int[width];
            for (int y = 0; y < height; y++) {
                image.getRGB(0, y, width, 1, row, 0, width);
                for (int x = 0; x < width; x++) {
                    int i = 3 * (y * width + x);
                    rgb[i] = (row[x] >> 16 & 0xff) / 255f;
                    rgb[i + 1] = (row[x] >> 8 & 0xff) / 255f;
                    rgb[i + 2] = (row[x] & 0xff) / 255f;
                }
            }
        }
        return new RgbFrame(width, height, rgb);
    }

    /** An 8-bit picture of this frame (values clamped to [0, 1] and rounded). */
    public BufferedImage toImage() {
        BufferedImage image = new BufferedImage(width, height, BufferedImage.TYPE_3BYTE_BGR);
        byte[] bgr = ((DataBufferByte) image.getRaster().getDataBuffer()).getData();
        for (int i = 0; i < width * height; i++) {
            bgr[3 * i] = toByte(rgb[3 * i + 2]);
            bgr[3 * i + 1] = toByte(rgb[3 * i + 1]);
            bgr[3 * i + 2] = toByte(rgb[3 * i]);
        }
        return image;
    }

    /** Channel {@code channel} of pixel (x, y). */
    public float get(int x, int y, int channel) {
        return rgb[(y * width + x) * 3 + channel];
    }

    /**
     * This frame cut to the aspect ratio of {@code newWidth} x {@code newHeight} around its
     * centre and resampled to that size; see {@link #cropFor} for the crop.
     *
     * <p>The filter is a tent whose radius is one output pixel measured in input pixels, but
     * never less than one input pixel: bilinear interpolation when enlarging, and an
     * antialiasing average over the footprint of each output pixel when shrinking. It is
     * separable, so rows are filtered first, then columns.
     */
    public RgbFrame resizeCentreCrop(int newWidth, int newHeight) {
        Crop crop = cropFor(width, height, newWidth, newHeight);
        Tent horizontal = Tent.along(crop.x(), crop.width(), width, newWidth);
        Tent vertical = Tent.along(crop.y(), crop.height(), height, newHeight);
        // Rows first: every input row of the crop, filtered to newWidth columns.
        float[] rows = new float[3 * newWidth * height];
        for (int y = vertical.first(); y <= vertical.last(); y++) {
            for (int x = 0; x < newWidth; x++) {
                float r = 0;
                float g = 0;
                float b = 0;
                for (int n = horizontal.start[x]; n < horizontal.start[x + 1]; n++) {
                    int source = 3 * (y * width + horizontal.index[n]);
                    float w = horizontal.weight[n];
                    r += w * rgb[source];
                    g += w * rgb[source + 1];
                    b += w * rgb[source + 2];
                }
                int target = 3 * (y * newWidth + x);
                rows[target] = r;
                rows[target + 1] = g;
                rows[target + 2] = b;
            }
        }
        float[] out = new float[3 * newWidth * newHeight];
        for (int y = 0; y < newHeight; y++) {
            for (int n = vertical.start[y]; n < vertical.start[y + 1]; n++) {
                int sourceRow = 3 * vertical.index[n] * newWidth;
                float w = vertical.weight[n];
                int targetRow = 3 * y * newWidth;
                for (int i = 0; i < 3 * newWidth; i++) {
                    out[targetRow + i] += w * rows[sourceRow + i];
                }
            }
        }
        return new RgbFrame(newWidth, newHeight, out);
    }

    /** A rectangle of a frame in pixels: columns [x, x + width), rows [y, y + height). */
    public record Crop(double x, double y, double width, double height) {
    }

    /**
     * The largest centred rectangle of a {@code width} x {@code height} frame with the aspect
     * ratio of {@code targetWidth} x {@code targetHeight}: the whole frame along one axis and a
     * centred cut of the other (fractional, so the ratio is exact).
     */
    public static Crop cropFor(int width, int height, int targetWidth, int targetHeight) {
        if (targetWidth < 1 || targetHeight < 1) {
            throw new IllegalArgumentException("the target size must be positive, got " + targetWidth + "x"
                    + targetHeight);
        }
        double targetAspect = (double) targetWidth / targetHeight;
        if ((double) width / height > targetAspect) {
            double cropWidth = height * targetAspect;
            return new Crop((width - cropWidth) / 2, 0, cropWidth, height);
        }
        double cropHeight = width / targetAspect;
        return new Crop(0, (height - cropHeight) / 2, width, cropHeight);
    }

    /**
     * The normalised tent weights of one axis: output sample o reads input samples
     * index[start[o] .. start[o+1]) with weights weight[...] (summing to 1).
     */
    private record Tent(int[] start, int[] index, float[] weight) {

        static Tent along(double cropStart, double cropExtent, int inputExtent, int outputExtent) {
            double scale = cropExtent / outputExtent;
            double radius = Math.max(1.0, scale);
            int span = (int) Math.ceil(2 * radius) + 1;
            int[] start = new int[outputExtent + 1];
            int[] index = new int[outputExtent * span];
            float[] weight = new float[outputExtent * span];
            int n = 0;
            for (int o = 0; o < outputExtent; o++) {
                start[o] = n;
                // Pixel centres sit at half-integers: output centre o + 0.5 maps to this input coordinate.
                double centre = cropStart + (o + 0.5) * scale - 0.5;
                int lo = (int) Math.ceil(centre - radius);
                int hi = (int) Math.floor(centre + radius);
                double sum = 0;
                int first = n;
                for (int i = lo; i <= hi; i++) {
                    double w = 1 - Math.abs(i - centre) / radius;
                    if (w <= 0) {
                        continue;
                    }
                    // Samples beyond the frame repeat its edge.
                    index[n] = Math.clamp(i, 0, inputExtent - 1);
                    weight[n] = (float) w;
                    sum += w;
                    n++;
                }
                for (int m = first; m < n; m++) {
                    weight[m] = (float) (weight[m] / sum);
                }
            }
            start[outputExtent] = n;
            return new Tent(start, index, weight);
        }

        int first() {
            int min = Integer.MAX_VALUE;
            for (int n = 0; n < start[start.length - 1]; n++) {
                min = Math.min(min, index[n]);
            }
            return min;
        }

        int last() {
            int max = Integer.MIN_VALUE;
            for (int n = 0; n < start[start.length - 1]; n++) {
                max = Math.max(max, index[n]);
            }
            return max;
        }
    }

    private static byte toByte(float value) {
        return (byte) Math.round(Math.clamp(value, 0f, 1f) * 255f);
    }
}
