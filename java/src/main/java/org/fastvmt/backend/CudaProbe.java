package org.fastvmt.backend;

import java.util.Optional;

import jcuda.CudaException;
import jcuda.Pointer;
import jcuda.runtime.JCuda;

import org.fastvmt.nativeabi.FastVmtLibrary;
import org.fastvmt.nativeabi.NativeLibraryException;

/**
 * Finds out whether a GPU really works here: JCuda must load and see a device that accepts an
 * allocation, and libfastvmt_cuda must be built and pass its own runtime check (its CUDA
 * runtime may need a newer driver than JCuda's).
 */
final class CudaProbe {

    private CudaProbe() {
    }

    /** Why cuda cannot run here, or empty when it can. */
    static Optional<String> problem() {
        try {
            JCuda.setExceptionsEnabled(true);
            int[] count = new int[1];
            JCuda.cudaGetDeviceCount(count);
            if (count[0] < 1) {
                return Optional.of("no CUDA device is visible");
            }
            Pointer probe = new Pointer();
            JCuda.cudaMalloc(probe, 256);
            JCuda.cudaFree(probe);
        } catch (CudaException e) {
            return Optional.of("CUDA is unavailable (" + e.getMessage() + ")");
        } catch (LinkageError e) {
            return Optional.of("JCuda cannot load its native library (" + e.getMessage() + ")");
        }
        if (FastVmtLibrary.locate("cuda").isEmpty()) {
            return Optional.of("libfastvmt_cuda was not built (no CUDA compiler when fastvmt was built)");
        }
        try {
            return FastVmtLibrary.load("cuda").runtimeProblem();
        } catch (NativeLibraryException e) {
            return Optional.of(e.getMessage());
        }
    }
}
