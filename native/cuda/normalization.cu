// LayerNorm and RMSNorm over each row of a [rows, cols] fp32 matrix, CUDA, with their
// backward (fastvmt.h, "DiT ops").
//
//   LayerNorm: y = (x - mean) rstd gamma + beta,  rstd = 1 / sqrt(var + eps), var biased
//   RMSNorm:   y = x rrms weight,                 rrms = 1 / sqrt(mean(x^2) + eps)
// Backward, with g = dy gamma (or dy weight, or dy) and xhat = (x - mean) rstd:
//   LayerNorm: dx += rstd (g - mean_c(g) - xhat mean_c(g xhat)),
//              dgamma += sum_r dy xhat,  dbeta += sum_r dy
//   RMSNorm:   dx += rrms (g - x rrms^2 mean_c(g x)),  dweight += sum_r dy x rrms
//
// Row statistics as in the cpu build: two passes (the mean, then the squared deviations from
// it), fp32 terms summed in DOUBLE; the mean is kept as an unevaluated sum of two floats
// (high + low), so x - mean keeps its digits when |mean| >> std.
//
// Kernels:
//  - *_rows_kernel: ONE WARP PER ROW, 8 rows per 256-thread block. A lane reads every 32nd
//    float4 of the row (coalesced 512-byte warp loads), sums its terms in double and the warp
//    adds the lanes with an xor-shuffle butterfly (every lane gets the same bits). The 2-4
//    passes over a row (6 KiB at Wan's 1536) hit L1 after the first, so x, dy and dx travel
//    from DRAM once. The backward's rows kernel also writes the row statistics to the
//    workspace when a column sum is wanted.
//  - the column sums (dgamma, dbeta, dweight): column_tile_kernel (column_reduction.cuh)
//    re-reads x and dy column-tile by row-chunk with the stored statistics, adds the terms in
//    double per chunk, and finish_columns_kernel adds the chunks in a fixed order:
//    deterministic, no float atomics. Re-reading x and dy costs one more pass but keeps the
//    row kernel free of per-column state (PyTorch's and Apex's LayerNorm backward do the same).
#include <cmath>
#include <type_traits>

#include "column_reduction.cuh"
#include "dit_checks.hpp"

namespace fvmt {
namespace {

using columns::Lanes;
using columns::load_lanes;
using columns::store_lanes;
using columns::Sums;
using columns::vectorisable;
using columns::warp_sum;

constexpr int kWarps = 8;
constexpr int kBlock = 32 * kWarps;

// a * b rounded to fp32 and never fused into a later add: g = dy * gamma is then the same
// value in every pass, so g - mean(g) is exactly 0 where it should be (a one-column row),
// instead of an FMA's rounding residue times rstd (1000 at eps 1e-6).
__device__ __forceinline__ float product(float a, float b) {
#if defined(FVMT_CUDA_EMULATION)
  return a * b;  // the emulated build targets baseline x86-64: no FMA to fuse into
#else
  return __fmul_rn(a, b);
#endif
}

// g = dy, times the per-column scale (gamma, weight) when kScaled, at the V columns from c.
template <int V, bool kScaled>
__device__ __forceinline__ Lanes<V> row_gradient(const float *dyr, const float *scale, int64_t c) {
  Lanes<V> g = load_lanes<V>(dyr + c);
  if constexpr (kScaled) {
    const Lanes<V> w = load_lanes<V>(scale + c);
    for (int i = 0; i < V; ++i) g.v[i] = product(g.v[i], w.v[i]);
  }
  return g;
}

struct RowMoments {
  float mean_high;
  float mean_low;
  float rstd;

  __device__ float centred(float x) const { return (x - mean_high) - mean_low; }
};

// Mean and rstd of a row; every lane of the warp returns the same values.
template <int V>
__device__ RowMoments layer_norm_moments(const float *xr, int32_t cols, float eps, int lane) {
  double sum = 0.0;
  for (int64_t c = static_cast<int64_t>(lane) * V; c < cols; c += 32 * V) {
    const Lanes<V> v = load_lanes<V>(xr + c);
    for (int i = 0; i < V; ++i) sum += v.v[i];
  }
  const double mean = warp_sum(sum) / cols;
  RowMoments m;
  m.mean_high = static_cast<float>(mean);
  m.mean_low = static_cast<float>(mean - m.mean_high);
  double squares = 0.0;
  for (int64_t c = static_cast<int64_t>(lane) * V; c < cols; c += 32 * V) {
    const Lanes<V> v = load_lanes<V>(xr + c);
    for (int i = 0; i < V; ++i) {
      const float d = m.centred(v.v[i]);
      squares += d * d;
    }
  }
  m.rstd = static_cast<float>(1.0 / sqrt(warp_sum(squares) / cols + eps));
  return m;
}

template <int V>
__device__ float reciprocal_rms(const float *xr, int32_t cols, float eps, int lane) {
  double squares = 0.0;
  for (int64_t c = static_cast<int64_t>(lane) * V; c < cols; c += 32 * V) {
    const Lanes<V> v = load_lanes<V>(xr + c);
    for (int i = 0; i < V; ++i) squares += v.v[i] * v.v[i];
  }
  return static_cast<float>(1.0 / sqrt(warp_sum(squares) / cols + eps));
}

// y may equal x: a lane writes only the elements it has read, after its last read of them.
template <int V, bool kAffine>
__global__ void __launch_bounds__(kBlock)
    layer_norm_forward_kernel(const float *x, const float *__restrict__ gamma, const float *__restrict__ beta,
                              int64_t rows, int32_t cols, float eps, float *y) {
  const int64_t r = static_cast<int64_t>(blockIdx.x) * kWarps + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (r >= rows) return;  // a whole warp
  const float *xr = x + r * cols;
  float *yr = y + r * cols;
  const RowMoments m = layer_norm_moments<V>(xr, cols, eps, lane);
  for (int64_t c = static_cast<int64_t>(lane) * V; c < cols; c += 32 * V) {
    Lanes<V> v = load_lanes<V>(xr + c);
    if constexpr (kAffine) {
      const Lanes<V> g = load_lanes<V>(gamma + c), b = load_lanes<V>(beta + c);
      for (int i = 0; i < V; ++i) v.v[i] = m.centred(v.v[i]) * m.rstd * g.v[i] + b.v[i];
    } else {
      for (int i = 0; i < V; ++i) v.v[i] = m.centred(v.v[i]) * m.rstd;
    }
    store_lanes<V>(yr + c, v);
  }
}

// dx += rstd (g - mean(g) - xhat mean(g xhat)) when dx is given; the row's statistics into
// stats[0..3, r] when stats is given.
template <int V, bool kAffine>
__global__ void __launch_bounds__(kBlock)
    layer_norm_backward_rows_kernel(const float *__restrict__ x, const float *__restrict__ gamma,
                                    const float *__restrict__ dy, int64_t rows, int32_t cols, float eps,
                                    float *__restrict__ dx, float *__restrict__ stats) {
  const int64_t r = static_cast<int64_t>(blockIdx.x) * kWarps + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (r >= rows) return;
  const float *xr = x + r * cols;
  const float *dyr = dy + r * cols;
  const RowMoments m = layer_norm_moments<V>(xr, cols, eps, lane);
  if (stats != nullptr && lane == 0) {
    stats[r] = m.mean_high;
    stats[rows + r] = m.mean_low;
    stats[2 * rows + r] = m.rstd;
  }
  if (dx == nullptr) return;
  double sum_g = 0.0, sum_g_xhat = 0.0;
  for (int64_t c = static_cast<int64_t>(lane) * V; c < cols; c += 32 * V) {
    const Lanes<V> v = load_lanes<V>(xr + c);
    const Lanes<V> g = row_gradient<V, kAffine>(dyr, gamma, c);
    for (int i = 0; i < V; ++i) {
      sum_g += g.v[i];
      sum_g_xhat += g.v[i] * (m.centred(v.v[i]) * m.rstd);
    }
  }
  const float mean_g = static_cast<float>(warp_sum(sum_g) / cols);
  const float mean_g_xhat = static_cast<float>(warp_sum(sum_g_xhat) / cols);
  float *dxr = dx + r * cols;
  for (int64_t c = static_cast<int64_t>(lane) * V; c < cols; c += 32 * V) {
    const Lanes<V> v = load_lanes<V>(xr + c);
    const Lanes<V> g = row_gradient<V, kAffine>(dyr, gamma, c);
    Lanes<V> out = load_lanes<V>(dxr + c);
    for (int i = 0; i < V; ++i) {
      const float xhat = m.centred(v.v[i]) * m.rstd;
      out.v[i] += m.rstd * (g.v[i] - mean_g - xhat * mean_g_xhat);
    }
    store_lanes<V>(dxr + c, out);
  }
}

// y may equal x (as layer_norm_forward_kernel).
template <int V, bool kWeighted>
__global__ void __launch_bounds__(kBlock)
    rms_norm_forward_kernel(const float *x, const float *__restrict__ weight, int64_t rows, int32_t cols,
                            float eps, float *y) {
  const int64_t r = static_cast<int64_t>(blockIdx.x) * kWarps + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (r >= rows) return;
  const float *xr = x + r * cols;
  float *yr = y + r * cols;
  const float rrms = reciprocal_rms<V>(xr, cols, eps, lane);
  for (int64_t c = static_cast<int64_t>(lane) * V; c < cols; c += 32 * V) {
    Lanes<V> v = load_lanes<V>(xr + c);
    if constexpr (kWeighted) {
      const Lanes<V> w = load_lanes<V>(weight + c);
      for (int i = 0; i < V; ++i) v.v[i] = v.v[i] * rrms * w.v[i];
    } else {
      for (int i = 0; i < V; ++i) v.v[i] = v.v[i] * rrms;
    }
    store_lanes<V>(yr + c, v);
  }
}

// dx += rrms (g - x rrms^2 mean(g x)) when dx is given; rrms into stats[r] when stats is given.
template <int V, bool kWeighted>
__global__ void __launch_bounds__(kBlock)
    rms_norm_backward_rows_kernel(const float *__restrict__ x, const float *__restrict__ weight,
                                  const float *__restrict__ dy, int64_t rows, int32_t cols, float eps,
                                  float *__restrict__ dx, float *__restrict__ stats) {
  const int64_t r = static_cast<int64_t>(blockIdx.x) * kWarps + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (r >= rows) return;
  const float *xr = x + r * cols;
  const float *dyr = dy + r * cols;
  const float rrms = reciprocal_rms<V>(xr, cols, eps, lane);
  if (stats != nullptr && lane == 0) stats[r] = rrms;
  if (dx == nullptr) return;
  double sum_g_x = 0.0;
  for (int64_t c = static_cast<int64_t>(lane) * V; c < cols; c += 32 * V) {
    const Lanes<V> v = load_lanes<V>(xr + c);
    const Lanes<V> g = row_gradient<V, kWeighted>(dyr, weight, c);
    for (int i = 0; i < V; ++i) sum_g_x += g.v[i] * v.v[i];
  }
  const float correction = rrms * rrms * static_cast<float>(warp_sum(sum_g_x) / cols);
  float *dxr = dx + r * cols;
  for (int64_t c = static_cast<int64_t>(lane) * V; c < cols; c += 32 * V) {
    const Lanes<V> v = load_lanes<V>(xr + c);
    const Lanes<V> g = row_gradient<V, kWeighted>(dyr, weight, c);
    Lanes<V> out = load_lanes<V>(dxr + c);
    for (int i = 0; i < V; ++i) out.v[i] += rrms * (g.v[i] - v.v[i] * correction);
    store_lanes<V>(dxr + c, out);
  }
}

// ---- column sums for column_tile_kernel (see column_reduction.cuh for the protocol)

// 0: dgamma (dy xhat), 1: dbeta (dy), with the statistics the rows kernel stored.
struct LayerNormColumns {
  static constexpr int kSums = 2;
  const float *x;
  const float *dy;
  const float *stats;  // [3, rows]: mean_high, mean_low, rstd
  int64_t rows;
  bool gamma_sum;
  bool beta_sum;

  __device__ bool want(int s) const { return s == 0 ? gamma_sum : beta_sum; }
  template <int V>
  __device__ int columns(int64_t) const {
    return 0;
  }
  template <int V>
  __device__ void row(int64_t r, int64_t at, int, Sums<kSums, V> &sums) const {
    const Lanes<V> d = load_lanes<V>(dy + at);
    if (gamma_sum) {
      const RowMoments m{stats[r], stats[rows + r], stats[2 * rows + r]};
      const Lanes<V> v = load_lanes<V>(x + at);
      for (int i = 0; i < V; ++i) sums.v[0][i] += d.v[i] * (m.centred(v.v[i]) * m.rstd);
    }
    if (beta_sum)
      for (int i = 0; i < V; ++i) sums.v[1][i] += d.v[i];
  }
};

// dweight (dy x rrms), with rrms as the rows kernel stored it.
struct RmsNormColumns {
  static constexpr int kSums = 1;
  const float *x;
  const float *dy;
  const float *stats;  // [rows]: rrms

  __device__ bool want(int) const { return true; }
  template <int V>
  __device__ int columns(int64_t) const {
    return 0;
  }
  template <int V>
  __device__ void row(int64_t r, int64_t at, int, Sums<kSums, V> &sums) const {
    const float rrms = stats[r];
    const Lanes<V> d = load_lanes<V>(dy + at), v = load_lanes<V>(x + at);
    for (int i = 0; i < V; ++i) sums.v[0][i] += d.v[i] * (v.v[i] * rrms);
  }
};

// Calls launch(V, flag) with the vector width V (4: float4 access, else 1) and the affine /
// weighted flag as compile-time constants, so that a launcher names its kernel once for the
// four instantiations.
template <typename Launch>
void with_variant(bool vector, bool flag, Launch &&launch) {
  using V1 = std::integral_constant<int, 1>;
  using V4 = std::integral_constant<int, 4>;
  if (flag) {
    if (vector)
      launch(V4{}, std::true_type{});
    else
      launch(V1{}, std::true_type{});
  } else {
    if (vector)
      launch(V4{}, std::false_type{});
    else
      launch(V1{}, std::false_type{});
  }
}

int32_t row_grid(const char *fn, int64_t rows, unsigned *grid) { return grid_size(fn, (rows + kWarps - 1) / kWarps, grid); }

}  // namespace
}  // namespace fvmt

using namespace fvmt;

extern "C" FVMT_API int32_t fvmt_layer_norm_forward(const float *x, const float *gamma, const float *beta,
                                                    int64_t rows, int32_t cols, float eps, float *y,
                                                    void *stream) {
  static constexpr char fn[] = "fvmt_layer_norm_forward";
  return guarded(fn, [&]() -> int32_t {
    if (int32_t s = check_layer_norm_forward(fn, x, gamma, beta, rows, cols, eps, y)) return s;
    unsigned grid = 0;
    if (int32_t s = row_grid(fn, rows, &grid)) return s;
    const cudaStream_t st = as_stream(stream);
    with_variant(vectorisable(cols, {x, gamma, beta, y}), gamma != nullptr, [&](auto v, auto affine) {
      FVMT_LAUNCH(grid, kBlock, 0, st, layer_norm_forward_kernel<v, affine>)(x, gamma, beta, rows, cols, eps, y);
    });
    return check_launch(fn, "layer_norm_forward_kernel");
  });
}

extern "C" FVMT_API int32_t fvmt_layer_norm_backward(const float *x, const float *gamma, const float *dy,
                                                     int64_t rows, int32_t cols, float eps, float *dx,
                                                     float *dgamma, float *dbeta, void *workspace,
                                                     size_t workspace_bytes, void *stream) {
  static constexpr char fn[] = "fvmt_layer_norm_backward";
  return guarded(fn, [&]() -> int32_t {
    if (int32_t s = check_layer_norm_backward(fn, x, gamma, dy, rows, cols, eps, dgamma, dbeta, workspace,
                                              workspace_bytes, columns::workspace_bytes(rows, cols)))
      return s;
    const bool column_sums = dgamma != nullptr || dbeta != nullptr;
    if (dx == nullptr && !column_sums) return FVMT_OK;
    WorkspaceLayout layout(column_sums ? workspace : nullptr);
    const columns::Workspace ws = columns::Workspace::carve(layout, rows, cols);
    const cudaStream_t st = as_stream(stream);
    // The statistics are needed by the column pass only for dgamma; dbeta alone needs only dy.
    float *stats = dgamma != nullptr ? ws.row_stats : nullptr;
    if (dx != nullptr || stats != nullptr) {
      unsigned grid = 0;
      if (int32_t s = row_grid(fn, rows, &grid)) return s;
      with_variant(vectorisable(cols, {x, gamma, dy, dx}), gamma != nullptr, [&](auto v, auto affine) {
        FVMT_LAUNCH(grid, kBlock, 0, st, layer_norm_backward_rows_kernel<v, affine>)
        (x, gamma, dy, rows, cols, eps, dx, stats);
      });
      if (int32_t s = check_launch(fn, "layer_norm_backward_rows_kernel")) return s;
    }
    if (!column_sums) return FVMT_OK;
    const LayerNormColumns op{x, dy, ws.row_stats, rows, dgamma != nullptr, dbeta != nullptr};
    if (int32_t s = columns::launch_column_tiles(fn, "column_tile_kernel<LayerNormColumns>", op, rows, cols,
                                                 vectorisable(cols, {x, dy, ws.partials}), ws.partials, st))
      return s;
    return columns::finish_columns(fn, ws.partials, rows, cols, dgamma, dbeta, st);
  });
}

extern "C" FVMT_API int32_t fvmt_rms_norm_forward(const float *x, const float *weight, int64_t rows, int32_t cols,
                                                  float eps, float *y, void *stream) {
  static constexpr char fn[] = "fvmt_rms_norm_forward";
  return guarded(fn, [&]() -> int32_t {
    if (int32_t s = check_rms_norm_forward(fn, x, rows, cols, eps, y)) return s;
    unsigned grid = 0;
    if (int32_t s = row_grid(fn, rows, &grid)) return s;
    const cudaStream_t st = as_stream(stream);
    with_variant(vectorisable(cols, {x, weight, y}), weight != nullptr, [&](auto v, auto weighted) {
      FVMT_LAUNCH(grid, kBlock, 0, st, rms_norm_forward_kernel<v, weighted>)(x, weight, rows, cols, eps, y);
    });
    return check_launch(fn, "rms_norm_forward_kernel");
  });
}

extern "C" FVMT_API int32_t fvmt_rms_norm_backward(const float *x, const float *weight, const float *dy,
                                                   int64_t rows, int32_t cols, float eps, float *dx, float *dweight,
                                                   void *workspace, size_t workspace_bytes, void *stream) {
  static constexpr char fn[] = "fvmt_rms_norm_backward";
  return guarded(fn, [&]() -> int32_t {
    if (int32_t s = check_rms_norm_backward(fn, x, weight, dy, rows, cols, eps, dweight, workspace, workspace_bytes,
                                            columns::workspace_bytes(rows, cols)))
      return s;
    if (dx == nullptr && dweight == nullptr) return FVMT_OK;
    WorkspaceLayout layout(dweight != nullptr ? workspace : nullptr);
    const columns::Workspace ws = columns::Workspace::carve(layout, rows, cols);
    const cudaStream_t st = as_stream(stream);
    float *stats = ws.row_stats;  // NULL unless dweight is wanted
    unsigned grid = 0;
    if (int32_t s = row_grid(fn, rows, &grid)) return s;
    with_variant(vectorisable(cols, {x, weight, dy, dx}), weight != nullptr, [&](auto v, auto weighted) {
      FVMT_LAUNCH(grid, kBlock, 0, st, rms_norm_backward_rows_kernel<v, weighted>)
      (x, weight, dy, rows, cols, eps, dx, stats);
    });
    if (int32_t s = check_launch(fn, "rms_norm_backward_rows_kernel")) return s;
    if (dweight == nullptr) return FVMT_OK;
    if (int32_t s = columns::launch_column_tiles(fn, "column_tile_kernel<RmsNormColumns>",
                                                 RmsNormColumns{x, dy, ws.row_stats}, rows, cols,
                                                 vectorisable(cols, {x, dy, ws.partials}), ws.partials, st))
      return s;
    return columns::finish_columns(fn, ws.partials, rows, cols, dweight, nullptr, st);
  });
}
