// Library identity and the whole-tensor check of the cuda / cudaemu builds.
//     fvmt_count_nonfinite: *count = #{e < n : x[e] is NaN or +-inf}, x fp32 or bf16.
// count_nonfinite_kernel: a grid-stride loop (coalesced reads), a per-block tree sum, and one
// integer atomicAdd per block into the zeroed counter. Integer addition is exact and
// commutative, so the count does not depend on the order the blocks finish in.
#include "entry.cuh"
#include "reduce.cuh"

namespace fvmt {
namespace {

constexpr int kBlock = reduce::kBlock;
constexpr int64_t kMaxBlocks = 1024;  // the grid-stride loop covers the rest

template <typename T>
__global__ void __launch_bounds__(kBlock)
    count_nonfinite_kernel(const T *__restrict__ x, int64_t n, unsigned long long *__restrict__ count) {
  __shared__ unsigned long long scratch[kBlock];
  unsigned long long local = 0;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * kBlock;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * kBlock + threadIdx.x; e < n; e += stride)
    local += isfinite(load_float(x, e)) ? 0 : 1;
  const unsigned long long total = reduce::block_sum(local, scratch);
  if (threadIdx.x == 0 && total != 0) atomicAdd(count, total);
}

}  // namespace
}  // namespace fvmt

using namespace fvmt;

extern "C" FVMT_API const char *fvmt_build_name(void) {
#if defined(FVMT_CUDA_EMULATION)
  return "cudaemu";
#else
  return "cuda";
#endif
}

extern "C" FVMT_API int32_t fvmt_supports_dtype(int32_t dtype) {
  return dtype == FVMT_DTYPE_F32 || dtype == FVMT_DTYPE_BF16 ? 1 : 0;
}

extern "C" FVMT_API int32_t fvmt_runtime_check(void) {
  static const char fn[] = "fvmt_runtime_check";
  return guarded(fn, []() -> int32_t {
#if defined(FVMT_CUDA_EMULATION)
    return FVMT_OK;
#else
    int devices = 0;
    const cudaError_t error = cudaGetDeviceCount(&devices);
    if (error != cudaSuccess) {
      cudaGetLastError();  // clear it, so that it is not reported by a later launch
      return fail(FVMT_ERR_DEVICE, "%s: %s (%s)", fn, cudaGetErrorString(error), cudaGetErrorName(error));
    }
    if (devices == 0) return fail(FVMT_ERR_DEVICE, "%s: no CUDA device is visible", fn);
    return FVMT_OK;
#endif
  });
}

extern "C" FVMT_API int32_t fvmt_count_nonfinite(const void *x, int32_t dtype, int64_t n, int64_t *count,
                                                 void *stream) {
  static const char fn[] = "fvmt_count_nonfinite";
  return guarded(fn, [&]() -> int32_t {
    if (int32_t s = check_dtype(fn, dtype, true)) return s;
    if (n < 0)
      return fail(FVMT_ERR_INVALID_ARGUMENT, "%s: n must not be negative, got %lld", fn, static_cast<long long>(n));
    if (n > 0)
      if (int32_t s = check_pointer(fn, "x", x)) return s;
    if (int32_t s = check_pointer(fn, "count", count)) return s;
    const cudaStream_t s = as_stream(stream);
    const cudaError_t error = cudaMemsetAsync(count, 0, sizeof(int64_t), s);
    if (error != cudaSuccess)
      return fail(FVMT_ERR_DEVICE, "%s: clearing count failed: %s", fn, cudaGetErrorString(error));
    if (n == 0) return FVMT_OK;
    const int64_t blocks = (n + kBlock - 1) / kBlock;
    const unsigned grid = static_cast<unsigned>(blocks < kMaxBlocks ? blocks : kMaxBlocks);
    unsigned long long *counter = reinterpret_cast<unsigned long long *>(count);
    if (dtype == FVMT_DTYPE_BF16) {
      FVMT_LAUNCH(grid, kBlock, 0, s, count_nonfinite_kernel<__nv_bfloat16>)
      (static_cast<const __nv_bfloat16 *>(x), n, counter);
    } else {
      FVMT_LAUNCH(grid, kBlock, 0, s, count_nonfinite_kernel<float>)(static_cast<const float *>(x), n, counter);
    }
    return check_launch(fn, "count_nonfinite_kernel");
  });
}
