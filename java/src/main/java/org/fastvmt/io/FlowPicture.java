package org.fastvmt.io;

import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.geom.Ellipse2D;
import java.awt.geom.Line2D;
import java.awt.geom.Path2D;
import java.awt.image.BufferedImage;
import java.util.Arrays;

/**
 * Pictures of a motion field given per cell of a grid over a frame. Each cell is painted with
 * the colour wheel (hue = direction, saturation = speed relative to a scale, white = still)
 * blended over the dimmed frame; black arrows on a coarser grid show the displacement at true
 * length; a small wheel in the bottom-right corner is the legend (its rim is the full scale).
 *
 * <p>Flows are {@code [rows, cols, 2]} arrays of (dx, dy) in picture pixels, x to the right and
 * y downwards. A cell whose dx is NaN has no reading: it is veiled in grey and gets no arrow.
 */
public final class FlowPicture {

    /** How much of the frame shows through under the colours. */
    private static final float FRAME_SHARE = 0.45f;
    /** The veil over cells without a reading: mid grey, unlike the white of zero motion. */
    private static final int NO_READING = 0x808080;
    /** An arrow every this many cells along both axes. */
    private static final int ARROW_EVERY = 2;
    /** Shorter displacements get no arrow: they would be a dot under the arrowhead. */
    private static final double MIN_ARROW_LENGTH = 1.5;

    private FlowPicture() {
    }

    /**
     * The colour of displacement (dx, dy) as 0xRRGGBB: hue = the direction's angle atan2(dy, dx)
     * (right red, down yellow-green, left cyan, up violet), saturation = length / fullScale
     * capped at 1, brightness 1. Zero motion is white.
     */
    public static int wheelColour(double dx, double dy, double fullScale) {
        if (!(fullScale > 0)) {
            throw new IllegalArgumentException("fullScale must be > 0, got " + fullScale);
        }
        double angle = Math.atan2(dy, dx);
        float hue = (float) ((angle < 0 ? angle + 2 * Math.PI : angle) / (2 * Math.PI));
        float saturation = (float) Math.min(1.0, Math.hypot(dx, dy) / fullScale);
        return Color.HSBtoRGB(hue, saturation, 1f) & 0xffffff;
    }

    /**
     * A scale robust to a few wild vectors: the {@code quantile} (in [0, 1]) of the lengths of
     * the (dx, dy) vectors of {@code flows} that have a reading, but at least {@code floor} (so
     * a still scene stays white instead of amplifying noise to full colour).
     */
    public static double robustScale(float[][] flows, double quantile, double floor) {
        if (!(quantile >= 0 && quantile <= 1)) {
            throw new IllegalArgumentException("quantile must be in [0, 1], got " + quantile);
        }
        int total = 0;
        for (float[] flow : flows) {
            total += flow.length / 2;
        }
        double[] lengths = new double[total];
        int count = 0;
        for (float[] flow : flows) {
            for (int v = 0; v < flow.length / 2; v++) {
                if (!Float.isNaN(flow[2 * v])) {
                    lengths[count++] = Math.hypot(flow[2 * v], flow[2 * v + 1]);
                }
            }
        }
        if (count == 0) {
            return floor;
        }
        Arrays.sort(lengths, 0, count);
        return Math.max(floor, lengths[(int) Math.round(quantile * (count - 1))]);
    }

    /**
     * The picture of {@code flow} ([rows, cols, 2], (dx, dy) in picture pixels) over
     * {@code frame}, whose size must be a multiple of the grid. Speeds of {@code fullScale}
     * pixels or more get full colour.
     */
    public static BufferedImage render(BufferedImage frame, int rows, int cols, float[] flow, double fullScale) {
        int width = frame.getWidth();
        int height = frame.getHeight();
        if (rows < 1 || cols < 1 || width % cols != 0 || height % rows != 0) {
            throw new IllegalArgumentException("a " + width + "x" + height + " frame cannot be cut into " + rows
                    + " rows and " + cols + " columns of equal cells");
        }
        if (flow.length != 2 * rows * cols) {
            throw new IllegalArgumentException("flow must hold 2 * " + rows + " * " + cols + " values, got "
                    + flow.length);
        }
        int cellWidth = width / cols;
        int cellHeight = height / rows;
        int[] colours = new int[rows * cols];
        for (int cell = 0; cell < rows * cols; cell++) {
            colours[cell] = Float.isNaN(flow[2 * cell]) ? NO_READING
                    : wheelColour(flow[2 * cell], flow[2 * cell + 1], fullScale);
        }
        BufferedImage picture = new BufferedImage(width, height, BufferedImage.TYPE_3BYTE_BGR);
        int[] line = new int[width];
        for (int y = 0; y < height; y++) {
            frame.getRGB(0, y, width, 1, line, 0, width);
            int rowOfCells = y / cellHeight * cols;
            for (int x = 0; x < width; x++) {
                int colour = colours[rowOfCells + x / cellWidth];
                line[x] = blend(line[x] >> 16, colour >> 16) << 16 | blend(line[x] >> 8, colour >> 8) << 8
                        | blend(line[x], colour);
            }
            picture.setRGB(0, y, width, 1, line, 0, width);
        }
        Graphics2D g = picture.createGraphics();
        try {
            g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
            g.setRenderingHint(RenderingHints.KEY_STROKE_CONTROL, RenderingHints.VALUE_STROKE_PURE);
            drawArrows(g, rows, cols, cellWidth, cellHeight, flow);
            drawLegend(picture, g);
        } finally {
            g.dispose();
        }
        return picture;
    }

    /** One 8-bit channel of the frame under one of the colour (only the low 8 bits of each are read). */
    private static int blend(int frame, int colour) {
        return Math.round(FRAME_SHARE * (frame & 0xff) + (1 - FRAME_SHARE) * (colour & 0xff));
    }

    private static void drawArrows(Graphics2D g, int rows, int cols, int cellWidth, int cellHeight, float[] flow) {
        g.setColor(Color.BLACK);
        g.setStroke(new BasicStroke(1.2f, BasicStroke.CAP_ROUND, BasicStroke.JOIN_ROUND));
        // Start half a step in, so the arrows sit centred on the picture.
        for (int r = ARROW_EVERY / 2; r < rows; r += ARROW_EVERY) {
            for (int c = ARROW_EVERY / 2; c < cols; c += ARROW_EVERY) {
                double dx = flow[2 * (r * cols + c)];
                double dy = flow[2 * (r * cols + c) + 1];
                double length = Math.hypot(dx, dy);
                if (Double.isNaN(length) || length < MIN_ARROW_LENGTH) {
                    continue;
                }
                double x0 = (c + 0.5) * cellWidth;
                double y0 = (r + 0.5) * cellHeight;
                double x1 = x0 + dx;
                double y1 = y0 + dy;
                g.draw(new Line2D.Double(x0, y0, x1, y1));
                double head = Math.min(5.0, 0.4 * length);
                double ux = dx / length;
                double uy = dy / length;
                Path2D.Double tip = new Path2D.Double();
                tip.moveTo(x1, y1);
                tip.lineTo(x1 - head * (ux - 0.5 * uy), y1 - head * (uy + 0.5 * ux));
                tip.lineTo(x1 - head * (ux + 0.5 * uy), y1 - head * (uy - 0.5 * ux));
                tip.closePath();
                g.fill(tip);
            }
        }
    }

    /** The colour wheel itself: direction by angle, speed by radius, the rim at full scale. */
    private static void drawLegend(BufferedImage picture, Graphics2D g) {
        int radius = Math.max(6, Math.min(picture.getWidth(), picture.getHeight()) / 12);
        int margin = Math.max(2, radius / 4);
        int cx = picture.getWidth() - margin - radius;
        int cy = picture.getHeight() - margin - radius;
        if (cx - radius < 0 || cy - radius < 0) {
            return;
        }
        for (int y = -radius; y <= radius; y++) {
            for (int x = -radius; x <= radius; x++) {
                if (x * x + y * y <= radius * radius) {
                    picture.setRGB(cx + x, cy + y, wheelColour(x, y, radius));
                }
            }
        }
        g.setColor(Color.BLACK);
        g.setStroke(new BasicStroke(1f));
        g.draw(new Ellipse2D.Double(cx - radius - 0.5, cy - radius - 0.5, 2 * radius + 1, 2 * radius + 1));
    }
}
