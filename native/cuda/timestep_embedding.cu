// Sinusoidal timestep embedding (Wan's sinusoidal_embedding_1d), CUDA, and its derivative
// with respect to t (fastvmt.h, "DiT ops"): half = dim / 2, w_m = 10000^(-m / half), m < half:
//   out[i, m] = cos(t_i w_m),   out[i, half + m] = sin(t_i w_m)
//   dt_i += sum_m -d_out[i, m] w_m sin(t_i w_m) + d_out[i, half + m] w_m cos(t_i w_m)
// Angles, cos/sin and the sum in double, as Wan computes them: t reaches 1000 and w_0 = 1,
// so fp32 angles would lose three digits.
//  - timestep_embedding_forward_kernel: one thread per (i, m), a grid-stride loop; the two
//    halves of a row are each written by consecutive threads (coalesced).
//  - timestep_embedding_backward_kernel: one block per timestep i; its threads take every
//    256th m and the block adds them with reduce::block_sum (a fixed tree, in double), so dt
//    is deterministic without atomics.
// A few rows of a few hundred values (Wan: 256-wide, one or two timesteps): tiny work.
#include <cmath>

#include "entry.cuh"
#include "dit_checks.hpp"
#include "dit_formulas.hpp"
#include "reduce.cuh"

namespace fvmt {
namespace {

constexpr int kBlock = reduce::kBlock;
constexpr int64_t kMaxBlocks = 1024;

__global__ void __launch_bounds__(kBlock)
    timestep_embedding_forward_kernel(const float *__restrict__ t, int32_t count, int32_t half,
                                      float *__restrict__ out) {
  const int64_t total = static_cast<int64_t>(count) * half;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * kBlock;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * kBlock + threadIdx.x; e < total; e += stride) {
    const int64_t i = e / half;
    const int32_t m = static_cast<int32_t>(e - i * half);
    const double angle = static_cast<double>(t[i]) * timestep_frequency(m, half);
    float *row = out + i * 2 * half;
    row[m] = static_cast<float>(cos(angle));
    row[half + m] = static_cast<float>(sin(angle));
  }
}

__global__ void __launch_bounds__(kBlock)
    timestep_embedding_backward_kernel(const float *__restrict__ t, int32_t half, const float *__restrict__ d_out,
                                       float *__restrict__ dt) {
  __shared__ double scratch[kBlock];
  const int64_t i = blockIdx.x;
  const float *d_row = d_out + i * 2 * half;
  const double ti = t[i];
  double sum = 0.0;
  for (int32_t m = threadIdx.x; m < half; m += kBlock) {
    const double w = timestep_frequency(m, half);
    const double angle = ti * w;
    sum += -d_row[m] * w * sin(angle) + d_row[half + m] * w * cos(angle);
  }
  const double total = reduce::block_sum(sum, scratch);
  if (threadIdx.x == 0) dt[i] += static_cast<float>(total);
}

}  // namespace
}  // namespace fvmt

using namespace fvmt;

extern "C" FVMT_API int32_t fvmt_timestep_embedding_forward(const float *t, int32_t count, int32_t dim, float *out,
                                                            void *stream) {
  static constexpr char fn[] = "fvmt_timestep_embedding_forward";
  return guarded(fn, [&]() -> int32_t {
    if (int32_t s = check_embedding(fn, t, count, dim)) return s;
    if (int32_t s = check_pointer(fn, "out", out)) return s;
    const int32_t half = dim / 2;
    const unsigned grid = stride_grid(static_cast<int64_t>(count) * half, kBlock, kMaxBlocks);
    FVMT_LAUNCH(grid, kBlock, 0, as_stream(stream), timestep_embedding_forward_kernel)(t, count, half, out);
    return check_launch(fn, "timestep_embedding_forward_kernel");
  });
}

extern "C" FVMT_API int32_t fvmt_timestep_embedding_backward(const float *t, int32_t count, int32_t dim,
                                                             const float *d_out, float *dt, void *stream) {
  static constexpr char fn[] = "fvmt_timestep_embedding_backward";
  return guarded(fn, [&]() -> int32_t {
    if (int32_t s = check_embedding(fn, t, count, dim)) return s;
    if (int32_t s = check_pointer(fn, "d_out", d_out)) return s;
    if (int32_t s = check_pointer(fn, "dt", dt)) return s;
    FVMT_LAUNCH(static_cast<unsigned>(count), kBlock, 0, as_stream(stream), timestep_embedding_backward_kernel)
    (t, dim / 2, d_out, dt);
    return check_launch(fn, "timestep_embedding_backward_kernel");
  });
}
