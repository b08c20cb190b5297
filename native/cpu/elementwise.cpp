// Element-wise DiT ops on [rows, cols] fp32 matrices, CPU (fastvmt.h, "DiT ops"):
//   bf16 widening           dst = src << 16 (bf16 is the upper half of an fp32)
//   scaled add              y += alpha x
//   bias add                y = x + bias[c]                 dbias += sum_r dy
//   adaptive modulation     y = x (1 + scale[c]) + shift[c] dx += dy (1 + scale),
//                                                           dshift += sum_r dy, dscale += sum_r dy x
//   gated residual          out = x + gate[c] y             dx += dout, dy += dout gate,
//                                                           dgate += sum_r dout y
// All are memory-bound, so each makes ONE pass over memory: every input is read
// once and every output written once, rows split across threads, the loop over
// a row vectorised (8 fp32 lanes with AVX2). A backward computes its row-wise
// gradients and its column sums in that same pass (column_reduction.hpp: fixed
// row chunks, so the sums are deterministic).
#include "boundary.hpp"
#include "column_reduction.hpp"
#include "dit_checks.hpp"

using namespace fvmt;

namespace {


}  // namespace

extern "C" FVMT_API size_t fvmt_column_reduction_workspace_bytes(int64_t rows, int32_t cols) {
  return cpu::column_reduction_bytes(rows, cols);
}

extern "C" FVMT_API int32_t fvmt_bf16_to_f32(const uint16_t *src, float *dst, int64_t n, void *) {
  static constexpr char fn[] = "fvmt_bf16_to_f32";
  return cpu::run_guarded(fn, [&]() -> int32_t {
    if (int32_t s = check_elements(fn, n, {{"src", src}, {"dst", dst}})) return s;
    if (n == 0) return FVMT_OK;
    uint32_t *bits = reinterpret_cast<uint32_t *>(dst);
#pragma omp parallel for simd schedule(static)
    for (int64_t e = 0; e < n; ++e) bits[e] = static_cast<uint32_t>(src[e]) << 16;
    return FVMT_OK;
  });
}

extern "C" FVMT_API int32_t fvmt_add_scaled(const float *x, float alpha, float *y, int64_t n, void *) {
  static constexpr char fn[] = "fvmt_add_scaled";
  return cpu::run_guarded(fn, [&]() -> int32_t {
    if (int32_t s = check_elements(fn, n, {{"x", x}, {"y", y}})) return s;
    if (n == 0) return FVMT_OK;
#pragma omp parallel for simd schedule(static)
    for (int64_t e = 0; e < n; ++e) y[e] += alpha * x[e];
    return FVMT_OK;
  });
}

extern "C" FVMT_API int32_t fvmt_bias_add_forward(const float *x, const float *bias, int64_t rows, int32_t cols,
                                                  float *y, void *) {
  static constexpr char fn[] = "fvmt_bias_add_forward";
  return cpu::run_guarded(fn, [&]() -> int32_t {
    if (int32_t s = check_rows(fn, rows, cols, {{"x", x}, {"bias", bias}, {"y", y}})) return s;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const float *xr = x + r * cols;
      float *yr = y + r * cols;
#pragma omp simd
      for (int32_t c = 0; c < cols; ++c) yr[c] = xr[c] + bias[c];
    }
    return FVMT_OK;
  });
}

extern "C" FVMT_API int32_t fvmt_bias_add_backward(const float *dy, int64_t rows, int32_t cols, float *dbias,
                                                   void *workspace, size_t workspace_bytes, void *) {
  static constexpr char fn[] = "fvmt_bias_add_backward";
  return cpu::run_guarded(fn, [&]() -> int32_t {
    if (int32_t s = check_bias_add_backward(fn, dy, rows, cols, dbias, workspace, workspace_bytes,
                                            cpu::column_reduction_bytes(rows, cols)))
      return s;
    cpu::ColumnPartials partials(workspace, rows, cols);
#pragma omp parallel for schedule(static)
    for (int64_t chunk = 0; chunk < partials.chunks(); ++chunk) {
      auto *sum = partials.start(0, chunk);
      for (int64_t r = partials.chunk_begin(chunk); r < partials.chunk_end(chunk); ++r) {
        const float *dyr = dy + r * cols;
#pragma omp simd
        for (int32_t c = 0; c < cols; ++c) sum[c] += dyr[c];
      }
    }
    partials.finish(0, dbias);
    return FVMT_OK;
  });
}

extern "C" FVMT_API int32_t fvmt_modulate_forward(const float *x, const float *shift, const float *scale,
                                                  int64_t rows, int32_t cols, float *y, void *) {
  static constexpr char fn[] = "fvmt_modulate_forward";
  return cpu::run_guarded(fn, [&]() -> int32_t {
    if (int32_t s = check_rows(fn, rows, cols, {{"x", x}, {"shift", shift}, {"scale", scale}, {"y", y}})) return s;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const float *xr = x + r * cols;
      float *yr = y + r * cols;
#pragma omp simd
      for (int32_t c = 0; c < cols; ++c) yr[c] = xr[c] * (1.0f + scale[c]) + shift[c];
    }
    return FVMT_OK;
  });
}

extern "C" FVMT_API int32_t fvmt_modulate_backward(const float *x, const float *scale, const float *dy,
                                                   int64_t rows, int32_t cols, float *dx, float *dshift,
                                                   float *dscale, void *workspace, size_t workspace_bytes,
                                                   void *) {
  static constexpr char fn[] = "fvmt_modulate_backward";
  return cpu::run_guarded(fn, [&]() -> int32_t {
    if (int32_t s = check_modulate_backward(fn, x, scale, dy, rows, cols, dshift, dscale, workspace, workspace_bytes,
                                            cpu::column_reduction_bytes(rows, cols)))
      return s;
    const bool column_sums = dshift != nullptr || dscale != nullptr;
    if (dx == nullptr && !column_sums) return FVMT_OK;
    cpu::ColumnPartials partials(workspace, rows, cols);
#pragma omp parallel for schedule(static)
    for (int64_t chunk = 0; chunk < partials.chunks(); ++chunk) {
      auto *shift_sum = dshift != nullptr ? partials.start(0, chunk) : nullptr;
      auto *scale_sum = dscale != nullptr ? partials.start(1, chunk) : nullptr;
      for (int64_t r = partials.chunk_begin(chunk); r < partials.chunk_end(chunk); ++r) {
        const float *xr = x + r * cols;
        const float *dyr = dy + r * cols;
        if (dx != nullptr) {
          float *dxr = dx + r * cols;
#pragma omp simd
          for (int32_t c = 0; c < cols; ++c) dxr[c] += dyr[c] * (1.0f + scale[c]);
        }
        if (shift_sum != nullptr) {
#pragma omp simd
          for (int32_t c = 0; c < cols; ++c) shift_sum[c] += dyr[c];
        }
        if (scale_sum != nullptr) {
#pragma omp simd
          for (int32_t c = 0; c < cols; ++c) scale_sum[c] += dyr[c] * xr[c];
        }
      }
    }
    if (dshift != nullptr) partials.finish(0, dshift);
    if (dscale != nullptr) partials.finish(1, dscale);
    return FVMT_OK;
  });
}

extern "C" FVMT_API int32_t fvmt_gated_residual_forward(const float *x, const float *y, const float *gate,
                                                        int64_t rows, int32_t cols, float *out, void *) {
  static constexpr char fn[] = "fvmt_gated_residual_forward";
  return cpu::run_guarded(fn, [&]() -> int32_t {
    if (int32_t s = check_rows(fn, rows, cols, {{"x", x}, {"y", y}, {"out", out}})) return s;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const float *xr = x + r * cols;
      const float *yr = y + r * cols;
      float *outr = out + r * cols;
      if (gate != nullptr) {
#pragma omp simd
        for (int32_t c = 0; c < cols; ++c) outr[c] = xr[c] + gate[c] * yr[c];
      } else {
#pragma omp simd
        for (int32_t c = 0; c < cols; ++c) outr[c] = xr[c] + yr[c];
      }
    }
    return FVMT_OK;
  });
}

extern "C" FVMT_API int32_t fvmt_gated_residual_backward(const float *y, const float *gate, const float *dout,
                                                         int64_t rows, int32_t cols, float *dx, float *dy,
                                                         float *dgate, void *workspace, size_t workspace_bytes,
                                                         void *) {
  static constexpr char fn[] = "fvmt_gated_residual_backward";
  return cpu::run_guarded(fn, [&]() -> int32_t {
    if (int32_t s = check_gated_residual_backward(fn, y, gate, dout, rows, cols, dgate, workspace, workspace_bytes,
                                                  cpu::column_reduction_bytes(rows, cols)))
      return s;
    if (dx == nullptr && dy == nullptr && dgate == nullptr) return FVMT_OK;
    cpu::ColumnPartials partials(workspace, rows, cols);
#pragma omp parallel for schedule(static)
    for (int64_t chunk = 0; chunk < partials.chunks(); ++chunk) {
      auto *gate_sum = dgate != nullptr ? partials.start(0, chunk) : nullptr;
      for (int64_t r = partials.chunk_begin(chunk); r < partials.chunk_end(chunk); ++r) {
        const float *doutr = dout + r * cols;
        if (dx != nullptr) {
          float *dxr = dx + r * cols;
#pragma omp simd
          for (int32_t c = 0; c < cols; ++c) dxr[c] += doutr[c];
        }
        if (dy != nullptr) {
          float *dyr = dy + r * cols;
          if (gate != nullptr) {
#pragma omp simd
            for (int32_t c = 0; c < cols; ++c) dyr[c] += doutr[c] * gate[c];
          } else {
#pragma omp simd
            for (int32_t c = 0; c < cols; ++c) dyr[c] += doutr[c];
          }
        }
        if (gate_sum != nullptr) {
          const float *yr = y + r * cols;
#pragma omp simd
          for (int32_t c = 0; c < cols; ++c) gate_sum[c] += doutr[c] * yr[c];
        }
      }
    }
    if (dgate != nullptr) partials.finish(0, dgate);
    return FVMT_OK;
  });
}
