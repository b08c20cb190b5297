package org.fastvmt.io;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Iterator;

import javax.imageio.IIOImage;
import javax.imageio.ImageIO;
import javax.imageio.ImageTypeSpecifier;
import javax.imageio.ImageWriter;
import javax.imageio.metadata.IIOMetadata;
import javax.imageio.metadata.IIOMetadataNode;
import javax.imageio.stream.ImageOutputStream;

/**
 * Encodes frames as an animated GIF that loops, through the JDK's GIF encoder (ImageIO). Each
 * frame gets its own 256-colour palette, built from that frame by the encoder's octree
 * quantiser, which keeps colours far closer than FFmpeg's GIF encoder fed through its fixed
 * 3-3-2 palette (the only 8-bit format JavaCV's recorder can convert to).
 *
 * <p>GIF states frame delays in hundredths of a second, so the rate is 100 / round(100 / fps)
 * (16 fps plays at 16.7, 15 at 14.3).
 */
final class GifWriter implements AutoCloseable {

    private static final String FORMAT = "javax_imageio_gif_image_1.0";
    /** Browsers play delays under 2 hundredths as 10; 50 fps is the fastest rate that plays as stated. */
    private static final int MIN_DELAY = 2;

    private final Path file;
    private final int width;
    private final int height;
    private final int delay;
    private final ImageWriter writer;
    private final ImageOutputStream output;
    private int framesWritten;

    private GifWriter(Path file, int width, int height, int delay, ImageWriter writer, ImageOutputStream output) {
        this.file = file;
        this.width = width;
        this.height = height;
        this.delay = delay;
        this.writer = writer;
        this.output = output;
    }

    /** Starts a GIF of {@code width} x {@code height} pixels at (about) {@code fps} frames per second. */
    static GifWriter open(Path file, int width, int height, double fps) throws IOException {
        if (width < 1 || height < 1 || width > 0xffff || height > 0xffff) {
            throw new IllegalArgumentException("a GIF needs a size from 1x1 to 65535x65535, got " + width + "x" + height);
        }
        if (!(Double.isFinite(fps) && fps > 0)) {
            throw new IllegalArgumentException("fps must be finite and > 0, got " + fps);
        }
        Iterator<ImageWriter> writers = ImageIO.getImageWritersByFormatName("gif");
        if (!writers.hasNext()) {
            throw new IOException(file + ": this Java runtime has no GIF writer");
        }
        ImageWriter writer = writers.next();
        ImageOutputStream output = ImageIO.createImageOutputStream(file.toFile());
        if (output == null) {
            writer.dispose();
            throw new IOException(file + ": cannot be opened for writing");
        }
        try {
            writer.setOutput(output);
            writer.prepareWriteSequence(null);
        } catch (IOException | RuntimeException e) {
            writer.dispose();
            output.close();
            throw new IOException(file + ": cannot start a GIF (" + e.getMessage() + ")", e);
        }
        int delay = (int) Math.max(MIN_DELAY, Math.min(0xffff, Math.round(100 / fps)));
        return new GifWriter(file, width, height, delay, writer, output);
    }

    /** Appends one frame, which must have the GIF's size. */
    void write(RgbFrame frame) throws IOException {
        if (frame.width() != width || frame.height() != height) {
            throw new IllegalArgumentException("the GIF is " + width + "x" + height + " but the frame is "
                    + frame.width() + "x" + frame.height());
        }
        var image = frame.toImage();
        IIOMetadata metadata = writer.getDefaultImageMetadata(ImageTypeSpecifier.createFromRenderedImage(image), null);
        IIOMetadataNode root = (IIOMetadataNode) metadata.getAsTree(FORMAT);
        IIOMetadataNode control = child(root, "GraphicControlExtension");
        control.setAttribute("disposalMethod", "none");
        control.setAttribute("userInputFlag", "FALSE");
        control.setAttribute("transparentColorFlag", "FALSE");
        control.setAttribute("transparentColorIndex", "0");
        control.setAttribute("delayTime", Integer.toString(delay));
        if (framesWritten == 0) {
            // The NETSCAPE2.0 extension with loop count 0: play forever.
            IIOMetadataNode loop = new IIOMetadataNode("ApplicationExtension");
            loop.setAttribute("applicationID", "NETSCAPE");
            loop.setAttribute("authenticationCode", "2.0");
            loop.setUserObject(new byte[] {1, 0, 0});
            child(root, "ApplicationExtensions").appendChild(loop);
        }
        try {
            metadata.setFromTree(FORMAT, root);
            writer.writeToSequence(new IIOImage(image, null, metadata), null);
        } catch (IOException | RuntimeException e) {
            throw new IOException(file + ": encoding GIF frame " + framesWritten + " failed (" + e.getMessage() + ")", e);
        }
        framesWritten++;
    }

    int framesWritten() {
        return framesWritten;
    }

    /** The frame rate the GIF plays at: 100 / delay. */
    double playbackFps() {
        return 100.0 / delay;
    }

    /** Writes the trailer; the file is complete only after this. */
    @Override
    public void close() throws IOException {
        try {
            writer.endWriteSequence();
        } catch (IllegalStateException e) {
            // No frame was written: there is no sequence to end, and the caller discards the file.
        } finally {
            writer.dispose();
            output.close();
        }
    }

    private static IIOMetadataNode child(IIOMetadataNode parent, String name) {
        for (int i = 0; i < parent.getLength(); i++) {
            if (parent.item(i).getNodeName().equalsIgnoreCase(name)) {
                return (IIOMetadataNode) parent.item(i);
            }
        }
        IIOMetadataNode node = new IIOMetadataNode(name);
        parent.appendChild(node);
        return node;
    }
}
