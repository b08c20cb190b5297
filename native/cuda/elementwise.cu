// Element-wise DiT ops on fp32 arrays and [rows, cols] matrices, CUDA (fastvmt.h, "DiT ops"):
//   bf16 widening           dst = src << 16 (bf16 is the upper half of an fp32)
//   scaled add              y += alpha x
//   bias add                y = x + bias[c]                 dbias += sum_r dy
//   adaptive modulation     y = x (1 + scale[c]) + shift[c] dx += dy (1 + scale),
//                                                           dshift += sum_r dy, dscale += sum_r dy x
//   gated residual          out = x + gate[c] y             dx += dout, dy += dout gate,
//                                                           dgate += sum_r dout y
// All are memory-bound, so each makes ONE pass over memory, coalesced and vectorised
// (float4 when the shapes and pointers allow):
//  - flat ops (bf16, scaled add): a grid-stride loop over 4-element groups, then the tail;
//  - row-broadcast ops: column_tile_kernel (column_reduction.cuh): a thread owns 4 columns of
//    a 64-row chunk, keeps the per-column vectors in registers and walks the rows; a
//    backward adds its column sums' terms in the same pass (double accumulators, one fp32
//    partial row per chunk in the workspace), then finish_columns_kernel adds the partials
//    in a fixed order: deterministic, no float atomics.
#include "column_reduction.cuh"
#include "dit_checks.hpp"

namespace fvmt {
namespace {

using columns::Lanes;
using columns::load_lanes;
using columns::load_or;
using columns::store_lanes;
using columns::Sums;
using columns::vectorisable;

constexpr int kBlock = 256;
constexpr int64_t kMaxBlocks = 4096;  // the grid-stride loops cover the rest

// Four bf16 per step when `kVector` (one 8-byte load, one 16-byte store), then the n % 4 tail.
template <bool kVector>
__global__ void __launch_bounds__(kBlock)
    bf16_to_f32_kernel(const uint16_t *__restrict__ src, float *__restrict__ dst, int64_t n) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * kBlock;
  const int64_t first = static_cast<int64_t>(blockIdx.x) * kBlock + threadIdx.x;
  int64_t done = 0;
  if constexpr (kVector) {
    const int64_t groups = n / 4;
    const unsigned long long *packed = reinterpret_cast<const unsigned long long *>(src);
    for (int64_t g = first; g < groups; g += stride) {
      const unsigned long long bits = packed[g];  // little-endian: element 4g in the low 16 bits
      const unsigned low = static_cast<unsigned>(bits), high = static_cast<unsigned>(bits >> 32);
      reinterpret_cast<float4 *>(dst)[g] = make_float4(__uint_as_float(low << 16), __uint_as_float(low & 0xffff0000u),
                                                       __uint_as_float(high << 16),
                                                       __uint_as_float(high & 0xffff0000u));
    }
    done = groups * 4;
  }
  for (int64_t e = done + first; e < n; e += stride) dst[e] = __uint_as_float(static_cast<unsigned>(src[e]) << 16);
}

template <bool kVector>
__global__ void __launch_bounds__(kBlock) add_scaled_kernel(const float *__restrict__ x, float alpha,
                                                            float *__restrict__ y, int64_t n) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * kBlock;
  const int64_t first = static_cast<int64_t>(blockIdx.x) * kBlock + threadIdx.x;
  int64_t done = 0;
  if constexpr (kVector) {
    const int64_t groups = n / 4;
    for (int64_t g = first; g < groups; g += stride) {
      const float4 a = reinterpret_cast<const float4 *>(x)[g];
      float4 b = reinterpret_cast<float4 *>(y)[g];
      b.x += alpha * a.x;
      b.y += alpha * a.y;
      b.z += alpha * a.z;
      b.w += alpha * a.w;
      reinterpret_cast<float4 *>(y)[g] = b;
    }
    done = groups * 4;
  }
  for (int64_t e = done + first; e < n; e += stride) y[e] += alpha * x[e];
}

// ---- row-broadcast ops for column_tile_kernel (see column_reduction.cuh for the protocol)

struct BiasAddForward {
  static constexpr int kSums = 0;
  const float *x;
  const float *bias;
  float *y;  // may equal x: every element is read, then written, by one thread

  __device__ bool want(int) const { return false; }
  template <int V>
  __device__ Lanes<V> columns(int64_t c) const {
    return load_lanes<V>(bias + c);
  }
  template <int V>
  __device__ void row(int64_t, int64_t at, const Lanes<V> &b, Sums<kSums, V> &) const {
    Lanes<V> v = load_lanes<V>(x + at);
    for (int i = 0; i < V; ++i) v.v[i] += b.v[i];
    store_lanes<V>(y + at, v);
  }
};

struct BiasAddBackward {
  static constexpr int kSums = 1;
  const float *dy;

  __device__ bool want(int) const { return true; }
  template <int V>
  __device__ int columns(int64_t) const {
    return 0;
  }
  template <int V>
  __device__ void row(int64_t, int64_t at, int, Sums<kSums, V> &sums) const {
    const Lanes<V> d = load_lanes<V>(dy + at);
    for (int i = 0; i < V; ++i) sums.v[0][i] += d.v[i];
  }
};

template <int V>
struct ModulateColumns {
  Lanes<V> one_plus_scale;
  Lanes<V> shift;
};

struct ModulateForward {
  static constexpr int kSums = 0;
  const float *x;
  const float *shift;
  const float *scale;
  float *y;  // may equal x

  __device__ bool want(int) const { return false; }
  template <int V>
  __device__ ModulateColumns<V> columns(int64_t c) const {
    ModulateColumns<V> k{load_lanes<V>(scale + c), load_lanes<V>(shift + c)};
    for (int i = 0; i < V; ++i) k.one_plus_scale.v[i] = 1.0f + k.one_plus_scale.v[i];
    return k;
  }
  template <int V>
  __device__ void row(int64_t, int64_t at, const ModulateColumns<V> &k, Sums<kSums, V> &) const {
    Lanes<V> v = load_lanes<V>(x + at);
    for (int i = 0; i < V; ++i) v.v[i] = v.v[i] * k.one_plus_scale.v[i] + k.shift.v[i];
    store_lanes<V>(y + at, v);
  }
};

struct ModulateBackward {
  static constexpr int kSums = 2;  // 0: dshift, 1: dscale
  const float *x;
  const float *scale;
  const float *dy;
  float *dx;  // may be NULL
  bool shift_sum;
  bool scale_sum;

  __device__ bool want(int s) const { return s == 0 ? shift_sum : scale_sum; }
  template <int V>
  __device__ Lanes<V> columns(int64_t c) const {
    Lanes<V> k = load_lanes<V>(scale + c);
    for (int i = 0; i < V; ++i) k.v[i] = 1.0f + k.v[i];
    return k;
  }
  template <int V>
  __device__ void row(int64_t, int64_t at, const Lanes<V> &one_plus_scale, Sums<kSums, V> &sums) const {
    const Lanes<V> d = load_lanes<V>(dy + at);
    if (dx != nullptr) {
      Lanes<V> g = load_lanes<V>(dx + at);
      for (int i = 0; i < V; ++i) g.v[i] += d.v[i] * one_plus_scale.v[i];
      store_lanes<V>(dx + at, g);
    }
    if (shift_sum)
      for (int i = 0; i < V; ++i) sums.v[0][i] += d.v[i];
    if (scale_sum) {
      const Lanes<V> xv = load_lanes<V>(x + at);
      for (int i = 0; i < V; ++i) sums.v[1][i] += d.v[i] * xv.v[i];
    }
  }
};

struct GatedResidualForward {
  static constexpr int kSums = 0;
  const float *x;
  const float *y;
  const float *gate;  // NULL: 1 (x + 1 * y is x + y exactly)
  float *out;         // may equal x

  __device__ bool want(int) const { return false; }
  template <int V>
  __device__ Lanes<V> columns(int64_t c) const {
    return load_or<V>(gate != nullptr ? gate + c : nullptr, 1.0f);
  }
  template <int V>
  __device__ void row(int64_t, int64_t at, const Lanes<V> &g, Sums<kSums, V> &) const {
    Lanes<V> v = load_lanes<V>(x + at);
    const Lanes<V> w = load_lanes<V>(y + at);
    for (int i = 0; i < V; ++i) v.v[i] += g.v[i] * w.v[i];
    store_lanes<V>(out + at, v);
  }
};

struct GatedResidualBackward {
  static constexpr int kSums = 1;  // dgate
  const float *y;
  const float *gate;  // NULL: 1
  const float *dout;
  float *dx;  // may be NULL
  float *dy;  // may be NULL
  bool gate_sum;

  __device__ bool want(int) const { return gate_sum; }
  template <int V>
  __device__ Lanes<V> columns(int64_t c) const {
    return load_or<V>(gate != nullptr ? gate + c : nullptr, 1.0f);
  }
  template <int V>
  __device__ void row(int64_t, int64_t at, const Lanes<V> &g, Sums<kSums, V> &sums) const {
    const Lanes<V> d = load_lanes<V>(dout + at);
    if (dx != nullptr) {
      Lanes<V> a = load_lanes<V>(dx + at);
      for (int i = 0; i < V; ++i) a.v[i] += d.v[i];
      store_lanes<V>(dx + at, a);
    }
    if (dy != nullptr) {
      Lanes<V> b = load_lanes<V>(dy + at);
      for (int i = 0; i < V; ++i) b.v[i] += d.v[i] * g.v[i];
      store_lanes<V>(dy + at, b);
    }
    if (gate_sum) {
      const Lanes<V> w = load_lanes<V>(y + at);
      for (int i = 0; i < V; ++i) sums.v[0][i] += d.v[i] * w.v[i];
    }
  }
};

}  // namespace
}  // namespace fvmt

using namespace fvmt;

extern "C" FVMT_API size_t fvmt_column_reduction_workspace_bytes(int64_t rows, int32_t cols) {
  return columns::workspace_bytes(rows, cols);
}

extern "C" FVMT_API int32_t fvmt_bf16_to_f32(const uint16_t *src, float *dst, int64_t n, void *stream) {
  static constexpr char fn[] = "fvmt_bf16_to_f32";
  return guarded(fn, [&]() -> int32_t {
    if (int32_t s = check_elements(fn, n, {{"src", src}, {"dst", dst}})) return s;
    if (n == 0) return FVMT_OK;
    const bool vector = reinterpret_cast<uintptr_t>(src) % 8 == 0 && aligned16(dst);
    const unsigned grid = stride_grid(vector ? (n + 3) / 4 : n, kBlock, kMaxBlocks);
    if (vector) {
      FVMT_LAUNCH(grid, kBlock, 0, as_stream(stream), bf16_to_f32_kernel<true>)(src, dst, n);
    } else {
      FVMT_LAUNCH(grid, kBlock, 0, as_stream(stream), bf16_to_f32_kernel<false>)(src, dst, n);
    }
    return check_launch(fn, "bf16_to_f32_kernel");
  });
}

extern "C" FVMT_API int32_t fvmt_add_scaled(const float *x, float alpha, float *y, int64_t n, void *stream) {
  static constexpr char fn[] = "fvmt_add_scaled";
  return guarded(fn, [&]() -> int32_t {
    if (int32_t s = check_elements(fn, n, {{"x", x}, {"y", y}})) return s;
    if (n == 0) return FVMT_OK;
    const bool vector = aligned16(x) && aligned16(y);
    const unsigned grid = stride_grid(vector ? (n + 3) / 4 : n, kBlock, kMaxBlocks);
    if (vector) {
      FVMT_LAUNCH(grid, kBlock, 0, as_stream(stream), add_scaled_kernel<true>)(x, alpha, y, n);
    } else {
      FVMT_LAUNCH(grid, kBlock, 0, as_stream(stream), add_scaled_kernel<false>)(x, alpha, y, n);
    }
    return check_launch(fn, "add_scaled_kernel");
  });
}

extern "C" FVMT_API int32_t fvmt_bias_add_forward(const float *x, const float *bias, int64_t rows, int32_t cols,
                                                  float *y, void *stream) {
  static constexpr char fn[] = "fvmt_bias_add_forward";
  return guarded(fn, [&]() -> int32_t {
    if (int32_t s = check_rows(fn, rows, cols, {{"x", x}, {"bias", bias}, {"y", y}})) return s;
    return columns::launch_column_tiles(fn, "column_tile_kernel<BiasAddForward>", BiasAddForward{x, bias, y}, rows,
                                        cols, vectorisable(cols, {x, bias, y}), nullptr, as_stream(stream));
  });
}

extern "C" FVMT_API int32_t fvmt_bias_add_backward(const float *dy, int64_t rows, int32_t cols, float *dbias,
                                                   void *workspace, size_t workspace_bytes, void *stream) {
  static constexpr char fn[] = "fvmt_bias_add_backward";
  return guarded(fn, [&]() -> int32_t {
    if (int32_t s = check_bias_add_backward(fn, dy, rows, cols, dbias, workspace, workspace_bytes,
                                            columns::workspace_bytes(rows, cols)))
      return s;
    WorkspaceLayout layout(workspace);
    const columns::Workspace ws = columns::Workspace::carve(layout, rows, cols);
    const cudaStream_t st = as_stream(stream);
    if (int32_t s = columns::launch_column_tiles(fn, "column_tile_kernel<BiasAddBackward>", BiasAddBackward{dy},
                                                 rows, cols, vectorisable(cols, {dy, ws.partials}), ws.partials, st))
      return s;
    return columns::finish_columns(fn, ws.partials, rows, cols, dbias, nullptr, st);
  });
}

extern "C" FVMT_API int32_t fvmt_modulate_forward(const float *x, const float *shift, const float *scale,
                                                  int64_t rows, int32_t cols, float *y, void *stream) {
  static constexpr char fn[] = "fvmt_modulate_forward";
  return guarded(fn, [&]() -> int32_t {
    if (int32_t s = check_rows(fn, rows, cols, {{"x", x}, {"shift", shift}, {"scale", scale}, {"y", y}})) return s;
    return columns::launch_column_tiles(fn, "column_tile_kernel<ModulateForward>",
                                        ModulateForward{x, shift, scale, y}, rows, cols,
                                        vectorisable(cols, {x, shift, scale, y}), nullptr, as_stream(stream));
  });
}

extern "C" FVMT_API int32_t fvmt_modulate_backward(const float *x, const float *scale, const float *dy,
                                                   int64_t rows, int32_t cols, float *dx, float *dshift,
                                                   float *dscale, void *workspace, size_t workspace_bytes,
                                                   void *stream) {
  static constexpr char fn[] = "fvmt_modulate_backward";
  return guarded(fn, [&]() -> int32_t {
    if (int32_t s = check_modulate_backward(fn, x, scale, dy, rows, cols, dshift, dscale, workspace, workspace_bytes,
                                            columns::workspace_bytes(rows, cols)))
      return s;
    const bool column_sums = dshift != nullptr || dscale != nullptr;
    if (dx == nullptr && !column_sums) return FVMT_OK;
    WorkspaceLayout layout(column_sums ? workspace : nullptr);
    const columns::Workspace ws = columns::Workspace::carve(layout, rows, cols);
    const cudaStream_t st = as_stream(stream);
    const ModulateBackward op{x, scale, dy, dx, dshift != nullptr, dscale != nullptr};
    if (int32_t s = columns::launch_column_tiles(fn, "column_tile_kernel<ModulateBackward>", op, rows, cols,
                                                 vectorisable(cols, {x, scale, dy, dx, ws.partials}), ws.partials,
                                                 st))
      return s;
    return columns::finish_columns(fn, ws.partials, rows, cols, dshift, dscale, st);
  });
}

extern "C" FVMT_API int32_t fvmt_gated_residual_forward(const float *x, const float *y, const float *gate,
                                                        int64_t rows, int32_t cols, float *out, void *stream) {
  static constexpr char fn[] = "fvmt_gated_residual_forward";
  return guarded(fn, [&]() -> int32_t {
    if (int32_t s = check_rows(fn, rows, cols, {{"x", x}, {"y", y}, {"out", out}})) return s;
    return columns::launch_column_tiles(fn, "column_tile_kernel<GatedResidualForward>",
                                        GatedResidualForward{x, y, gate, out}, rows, cols,
                                        vectorisable(cols, {x, y, gate, out}), nullptr, as_stream(stream));
  });
}

extern "C" FVMT_API int32_t fvmt_gated_residual_backward(const float *y, const float *gate, const float *dout,
                                                         int64_t rows, int32_t cols, float *dx, float *dy,
                                                         float *dgate, void *workspace, size_t workspace_bytes,
                                                         void *stream) {
  static constexpr char fn[] = "fvmt_gated_residual_backward";
  return guarded(fn, [&]() -> int32_t {
    if (int32_t s = check_gated_residual_backward(fn, y, gate, dout, rows, cols, dgate, workspace, workspace_bytes,
                                                  columns::workspace_bytes(rows, cols)))
      return s;
    if (dx == nullptr && dy == nullptr && dgate == nullptr) return FVMT_OK;
    WorkspaceLayout layout(dgate != nullptr ? workspace : nullptr);
    const columns::Workspace ws = columns::Workspace::carve(layout, rows, cols);
    const cudaStream_t st = as_stream(stream);
    const GatedResidualBackward op{y, gate, dout, dx, dy, dgate != nullptr};
    if (int32_t s = columns::launch_column_tiles(fn, "column_tile_kernel<GatedResidualBackward>", op, rows, cols,
                                                 vectorisable(cols, {y, gate, dout, dx, dy, ws.partials}),
                                                 ws.partials, st))
      return s;
    return columns::finish_columns(fn, ws.partials, rows, cols, dgate, nullptr, st);
  });
}
