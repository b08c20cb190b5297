package org.fastvmt.cli;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;

import org.fastvmt.backend.Backend;
import org.fastvmt.io.safetensors.SafetensorsFile;
import org.fastvmt.io.safetensors.TensorInfo;
import org.fastvmt.tensor.DType;
import org.fastvmt.tensor.Tensor;

/**
 * One tensor given on the command line as a .safetensors file: the file's only tensor, or, when
 * it holds several, the one named {@code defaultName} (so one file may hold the latents and every
 * embedding). F32, F16 and BF16 are accepted and loaded as F32. A leading batch dimension of 1
 * ([1, ...], as diffusers writes) is dropped. Inspecting reads only the header, so every input
 * can be checked before any work.
 *
 * @param option  the command-line option that named the file (for messages)
 * @param file    the file
 * @param name    the tensor's name in the file
 * @param shape   its shape, without a leading batch dimension of 1
 */
record InputTensor(String option, Path file, String name, long[] shape) {

    /** Opens the header of {@code file} and picks the tensor, or throws a message naming {@code option} and the file. */
    static InputTensor inspect(String option, Path file, String defaultName, int rank) {
        if (!Files.isRegularFile(file)) {
            throw new UserInputException(option + " " + file + ": "
                    + (Files.exists(file) ? "not a regular file" : "no such file"));
        }
        if (!Files.isReadable(file)) {
            throw new UserInputException(option + " " + file + ": the file cannot be read (permission denied)");
        }
        try (SafetensorsFile safetensors = SafetensorsFile.open(file)) {
            Map<String, TensorInfo> tensors = safetensors.tensors();
            TensorInfo info;
            if (tensors.size() == 1) {
                info = tensors.values().iterator().next();
            } else if (tensors.containsKey(defaultName)) {
                info = tensors.get(defaultName);
            } else {
                throw new UserInputException(option + " " + file + ": the file holds " + tensors.size()
                        + " tensors " + tensors.keySet() + " and none is named '" + defaultName
                        + "'; give a file with one tensor, or name it '" + defaultName + "'");
            }
            long[] shape = info.shape();
            if (shape.length == rank + 1 && shape[0] == 1) {
                shape = Arrays.copyOfRange(shape, 1, shape.length);
            }
            if (shape.length != rank) {
                throw new UserInputException(option + " " + file + ": tensor '" + info.name() + "' has shape "
                        + Arrays.toString(info.shape()) + ", expected " + rank + " dimensions");
            }
            return new InputTensor(option, file, info.name(), shape);
        } catch (NoSuchFileException e) {
            throw new UserInputException(option + " " + file + ": no such file", e);
        } catch (IOException e) {
            if (looksLikePyTorch(file)) {
                throw new UserInputException(option + " " + file + ": this looks like a PyTorch file (torch.save); "
                        + "fastvmt reads only .safetensors (convert it with safetensors.torch.save_file, or put it in a "
                        + "folder and run fastvmt convert on that folder)", e);
            }
            throw new UserInputException(option + " " + file + ": " + e.getMessage(), e);
        }
    }

    /** A torch.save file: a zip archive ("PK"), a legacy pickle (0x80), or a PyTorch file name. */
    private static boolean looksLikePyTorch(Path file) {
        String name = file.getFileName().toString().toLowerCase(java.util.Locale.ROOT);
        if (name.endsWith(".pt") || name.endsWith(".pth") || name.endsWith(".bin") || name.endsWith(".ckpt")) {
            return true;
        }
        try (java.io.InputStream in = Files.newInputStream(file)) {
            byte[] start = in.readNBytes(2);
            return start.length == 2 && ((start[0] == 'P' && start[1] == 'K') || (start[0] & 0xff) == 0x80);
        } catch (IOException e) {
            return false;
        }
    }

    long dim(int axis) {
        return shape[axis];
    }

    /** Loads the tensor as F32 [shape] on {@code backend}; refuses NaN and infinite values. */
    Tensor load(Backend backend) {
        try (SafetensorsFile safetensors = SafetensorsFile.open(file)) {
            Tensor stored = safetensors.load(name, backend, DType.F32);
            try {
                long bad = stored.nonFiniteCount();
                if (bad > 0) {
                    throw new UserInputException(option + " " + file + ": tensor '" + name + "' has " + bad
                            + " NaN or infinite values");
                }
                if (stored.rank() == shape.length) {
                    return stored;
                }
                // Drop the batch dimension: a copy, so the caller owns one plain tensor.
                Tensor squeezed = Tensor.zeros(backend, DType.F32, shape);
                squeezed.copyFrom(stored.view(shape));
                stored.close();
                return squeezed;
            } catch (RuntimeException e) {
                stored.close();
                throw e;
            }
        } catch (IOException e) {
            throw new UserInputException(option + " " + file + ": " + e.getMessage(), e);
        }
    }

    String describe() {
        return option + " " + file + " (tensor '" + name + "', shape " + Arrays.toString(shape) + ")";
    }
}
