// What every native/cuda/*.cu includes first. The same sources build two ways:
//  - by nvcc, for the GPU (libfastvmt_cuda);
//  - by g++ as C++20 with FVMT_CUDA_EMULATION defined (libfastvmt_cudaemu),
//    where native/emu/cuda_emu.h supplies the CUDA vocabulary on CPU threads.
// Two spellings differ between the two and are hidden behind macros:
//  - a kernel launch:     FVMT_LAUNCH(grid, block, shared_bytes, stream, kernel)(args...)
//                         (kernel last, so a template-id with commas is fine);
//  - dynamic shared mem:  FVMT_DYNAMIC_SHARED(float, name);  inside a kernel.
// Everything else is plain CUDA (see cuda_emu.h for the list it supports).
#pragma once

#if defined(FVMT_CUDA_EMULATION)
#include "cuda_emu.h"
#else
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#define FVMT_LAUNCH(grid, block, shared_bytes, stream, ...) \
  __VA_ARGS__<<<(grid), (block), (shared_bytes), (stream)>>>
#define FVMT_DYNAMIC_SHARED(type, name) extern __shared__ type name[]
#endif

// Loop unrolling hint, spelled for each compiler (g++ -Wall rejects CUDA's spelling).
#define FVMT_PRAGMA(text) _Pragma(#text)
#if defined(FVMT_CUDA_EMULATION)
#define FVMT_UNROLL(count) FVMT_PRAGMA(GCC unroll count)
#else
#define FVMT_UNROLL(count) FVMT_PRAGMA(unroll count)
#endif

#include <cstdint>

#include "status.hpp"

namespace fvmt {

// Loads element `index` of an fp32 or bf16 array as fp32.
__device__ __forceinline__ float load_float(const float *p, int64_t index) { return p[index]; }
__device__ __forceinline__ float load_float(const __nv_bfloat16 *p, int64_t index) {
  return __bfloat162float(p[index]);
}

// Turns the launch status into an fvmt status; `what` names the kernel.
inline int32_t check_launch(const char *fn, const char *what) {
  const cudaError_t error = cudaGetLastError();
  if (error != cudaSuccess)
    return fail(FVMT_ERR_DEVICE, "%s: launching %s failed: %s", fn, what, cudaGetErrorString(error));
  return FVMT_OK;
}

}  // namespace fvmt
