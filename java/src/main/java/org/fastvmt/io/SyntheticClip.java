package org.fastvmt.io;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * A generated clip whose motion is known exactly: a textured background panning slowly and a
 * few textured shapes (ellipses and rectangles) in front of it, each moving with its own
 * constant velocity. Velocities are whole pixels per frame, so every frame is an exact shift
 * of each layer's texture and the motion of every point is the velocity of the layer on top
 * there. Everything follows from the seed.
 *
 * <p>Textures are value noise (random values on lattices of 32, 16 and 8 pixels, smoothly
 * interpolated) in colour, so every 16-pixel cell has structure to match.
 */
public final class SyntheticClip {

    /** Frames per second, Wan2.1's output rate (16 fps). */
    public static final double FPS = 16;
    /** The default length: 41 frames give ten pairs at a temporal stride of 4. */
    public static final int DEFAULT_FRAMES = 41;
    /** The most a shape moves per frame along each axis, in pixels. */
    public static final int MAX_SHAPE_SPEED = 5;

    private static final int SHAPES = 4;
    private static final int[] LATTICE_SPACINGS = {32, 16, 8};
    private static final float[] OCTAVE_WEIGHTS = {0.4f, 0.35f, 0.25f};

    /** One moving layer: its texture at frame 0 covers [x0, x0 + width) x [y0, y0 + height). */
    private record Layer(Outline outline, int x0, int y0, int vx, int vy, Texture texture) {

        int left(int t) {
            return x0 + vx * t;
        }

        int top(int t) {
            return y0 + vy * t;
        }

        /** Whether the point (x, y), in continuous frame coordinates, is on this layer at frame t. */
        boolean covers(int t, double x, double y) {
            double lx = x - left(t);
            double ly = y - top(t);
            int w = texture.width();
            int h = texture.height();
            if (lx < 0 || ly < 0 || lx >= w || ly >= h) {
                return false;
            }
            return switch (outline) {
                case EVERYWHERE, RECTANGLE -> true;
                case ELLIPSE -> {
                    double ex = (lx - w / 2.0) / (w / 2.0);
                    double ey = (ly - h / 2.0) / (h / 2.0);
                    yield ex * ex + ey * ey <= 1;
                }
            };
        }
    }

    private enum Outline { EVERYWHERE, RECTANGLE, ELLIPSE }

    /** A colour raster, rgb interleaved like {@link RgbFrame}. */
    private record Texture(int width, int height, float[] rgb) {
    }

    private final int width;
    private final int height;
    private final int frames;
    /** Back to front; layer 0 is the background. */
    private final List<Layer> layers;

    private SyntheticClip(int width, int height, int frames, List<Layer> layers) {
        this.width = width;
        this.height = height;
        this.frames = frames;
        this.layers = layers;
    }

    /**
     * The standard clip: the background pans by one pixel per frame along x, y or both (the
     * direction drawn from the seed), and four shapes move with distinct velocities of 1 to
     * {@link #MAX_SHAPE_SPEED} pixels per frame along x and y, each sign occurring.
     */
    public static SyntheticClip moving(int width, int height, int frames, long seed) {
        checkSize(width, height, frames);
        SplittableRandom random = new SplittableRandom(seed);
        int[][] pans = {{1, 0}, {-1, 0}, {0, 1}, {0, -1}, {1, 1}, {-1, 1}, {1, -1}, {-1, -1}};
        int[] pan = pans[random.nextInt(pans.length)];
        List<Layer> layers = new ArrayList<>();
        layers.add(background(width, height, frames, pan[0], pan[1], random));
        List<int[]> used = new ArrayList<>();
        used.add(pan);
        for (int s = 0; s < SHAPES; s++) {
            int[] velocity = distinctVelocity(random, used, s);
            used.add(velocity);
            int shapeWidth = Math.max(16, (int) (width * (0.16 + 0.12 * random.nextDouble())));
            int shapeHeight = Math.max(16, (int) (height * (0.22 + 0.16 * random.nextDouble())));
            // Place the shape so that it is in the frame at mid-clip; it may leave at the ends.
            double midX = width * (0.15 + 0.7 * random.nextDouble());
            double midY = height * (0.15 + 0.7 * random.nextDouble());
            int x0 = (int) Math.round(midX - shapeWidth / 2.0 - velocity[0] * (frames - 1) / 2.0);
            int y0 = (int) Math.round(midY - shapeHeight / 2.0 - velocity[1] * (frames - 1) / 2.0);
            Outline outline = s % 2 == 0 ? Outline.ELLIPSE : Outline.RECTANGLE;
            layers.add(new Layer(outline, x0, y0, velocity[0], velocity[1],
                    texture(shapeWidth, shapeHeight, random)));
        }
        return new SyntheticClip(width, height, frames, layers);
    }

    /** Only the background, moving by (vx, vy) whole pixels per frame; (0, 0) is a still clip. */
    public static SyntheticClip pan(int width, int height, int frames, long seed, int vx, int vy) {
        checkSize(width, height, frames);
        SplittableRandom random = new SplittableRandom(seed);
        return new SyntheticClip(width, height, frames, List.of(background(width, height, frames, vx, vy, random)));
    }

    public int width() {
        return width;
    }

    public int height() {
        return height;
    }

    public int frames() {
        return frames;
    }

    public double fps() {
        return FPS;
    }

    /** Frame {@code t} (0-based). */
    public RgbFrame frame(int t) {
        checkFrame(t);
        float[] rgb = new float[3 * width * height];
        for (int y = 0; y < height; y++) {
            for (int x = 0; x < width; x++) {
                Layer layer = topLayer(t, x + 0.5, y + 0.5);
                Texture texture = layer.texture();
                int source = 3 * ((y - layer.top(t)) * texture.width() + x - layer.left(t));
                System.arraycopy(texture.rgb(), source, rgb, 3 * (y * width + x), 3);
            }
        }
        return new RgbFrame(width, height, rgb);
    }

    /**
     * The true motion at frame {@code t} of the centres of a grid of {@code rows} x {@code cols}
     * equal cells: [rows, cols, 2] = (vx, vy) in pixels per frame, the velocity of the layer
     * that covers each cell's centre.
     */
    public float[] cellVelocities(int t, int rows, int cols) {
        checkFrame(t);
        if (rows < 1 || cols < 1) {
            throw new IllegalArgumentException("the grid needs at least one cell, got " + rows + "x" + cols);
        }
        float[] velocity = new float[2 * rows * cols];
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                Layer layer = topLayer(t, (c + 0.5) * width / cols, (r + 0.5) * height / rows);
                velocity[2 * (r * cols + c)] = layer.vx();
                velocity[2 * (r * cols + c) + 1] = layer.vy();
            }
        }
        return velocity;
    }

    private Layer topLayer(int t, double x, double y) {
        for (int n = layers.size() - 1; n > 0; n--) {
            if (layers.get(n).covers(t, x, y)) {
                return layers.get(n);
            }
        }
        return layers.get(0);
    }

    private static Layer background(int width, int height, int frames, int vx, int vy, SplittableRandom random) {
        // Large enough that the frame stays inside it for the whole pan.
        int travelX = Math.abs(vx) * (frames - 1);
        int travelY = Math.abs(vy) * (frames - 1);
        return new Layer(Outline.EVERYWHERE, vx > 0 ? -travelX : 0, vy > 0 ? -travelY : 0, vx, vy,
                texture(width + travelX, height + travelY, random));
    }

    /** A velocity of 1 to MAX_SHAPE_SPEED pixels per frame per axis, unlike the ones used; shape s gets signs s. */
    private static int[] distinctVelocity(SplittableRandom random, List<int[]> used, int s) {
        int signX = (s & 1) == 0 ? 1 : -1;
        int signY = (s & 2) == 0 ? 1 : -1;
        while (true) {
            int[] candidate = {signX * (1 + random.nextInt(MAX_SHAPE_SPEED)),
                    signY * (1 + random.nextInt(MAX_SHAPE_SPEED))};
            boolean fresh = used.stream().noneMatch(v -> v[0] == candidate[0] && v[1] == candidate[1]);
            if (fresh) {
                return candidate;
            }
        }
    }

    /**
     * Colour value noise: a base colour, a luminance pattern shared by the channels, and a
     * stronger pattern of its own per channel, so that patches differ in hue as well as in
     * brightness, as patches of real scenes do.
     */
    private static Texture texture(int width, int height, SplittableRandom random) {
        float[] base = {0.25f + 0.5f * random.nextFloat(), 0.25f + 0.5f * random.nextFloat(),
                0.25f + 0.5f * random.nextFloat()};
        float[] luminance = valueNoise(width, height, random);
        float[][] tint = {valueNoise(width, height, random), valueNoise(width, height, random),
                valueNoise(width, height, random)};
        float[] rgb = new float[3 * width * height];
        for (int i = 0; i < width * height; i++) {
            for (int ch = 0; ch < 3; ch++) {
                float value = base[ch] + 0.5f * (luminance[i] - 0.5f) + 1.2f * (tint[ch][i] - 0.5f);
                rgb[3 * i + ch] = Math.clamp(value, 0f, 1f);
            }
        }
        return new Texture(width, height, rgb);
    }

    /** Octaves of smoothly interpolated lattice noise, values in [0, 1]. */
    private static float[] valueNoise(int width, int height, SplittableRandom random) {
        float[] noise = new float[width * height];
        for (int octave = 0; octave < LATTICE_SPACINGS.length; octave++) {
            int spacing = LATTICE_SPACINGS[octave];
            int latticeW = width / spacing + 2;
            int latticeH = height / spacing + 2;
            float[] lattice = new float[latticeW * latticeH];
            for (int n = 0; n < lattice.length; n++) {
                lattice[n] = random.nextFloat();
            }
            for (int y = 0; y < height; y++) {
                int ly = y / spacing;
                float fy = smoothstep((y % spacing + 0.5f) / spacing);
                for (int x = 0; x < width; x++) {
                    int lx = x / spacing;
                    float fx = smoothstep((x % spacing + 0.5f) / spacing);
                    float top = lerp(lattice[ly * latticeW + lx], lattice[ly * latticeW + lx + 1], fx);
                    float bottom = lerp(lattice[(ly + 1) * latticeW + lx], lattice[(ly + 1) * latticeW + lx + 1], fx);
                    noise[y * width + x] += OCTAVE_WEIGHTS[octave] * lerp(top, bottom, fy);
                }
            }
        }
        return noise;
    }

    private static float smoothstep(float t) {
        return t * t * (3 - 2 * t);
    }

    private static float lerp(float a, float b, float t) {
        return a + (b - a) * t;
    }

    private static void checkSize(int width, int height, int frames) {
        if (width < 16 || height < 16) {
            throw new IllegalArgumentException("a synthetic clip needs at least 16x16 pixels, got " + width + "x"
                    + height);
        }
        if (frames < 1) {
            throw new IllegalArgumentException("frames must be >= 1, got " + frames);
        }
    }

    private void checkFrame(int t) {
        if (t < 0 || t >= frames) {
            throw new IllegalArgumentException("frame " + t + " is outside [0, " + frames + ")");
        }
    }
}
