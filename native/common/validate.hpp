// Host-side argument checks shared by every build, so that each build refuses
// the same inputs with the same sentence. Only scalars and pointers are checked
// here: pair indices live in device memory in the cuda build and are checked by
// the caller (Java) before the call; host builds also call check_pairs().
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "status.hpp"

namespace fvmt {

inline int64_t tiles_along(int32_t extent, int32_t tile) { return (extent + tile - 1) / tile; }

inline int32_t check_pointer(const char *fn, const char *name, const void *p) {
  if (p == nullptr) return fail(FVMT_ERR_INVALID_ARGUMENT, "%s: %s must not be NULL", fn, name);
  return FVMT_OK;
}

inline int32_t check_positive(const char *fn, const char *name, int64_t value) {
  if (value <= 0)
    return fail(FVMT_ERR_INVALID_ARGUMENT, "%s: %s must be positive, got %lld", fn, name,
                static_cast<long long>(value));
  return FVMT_OK;
}

inline int32_t check_dtype(const char *fn, int32_t dtype, bool bf16_supported) {
  if (dtype == FVMT_DTYPE_F32) return FVMT_OK;
  if (dtype == FVMT_DTYPE_BF16)
    return bf16_supported ? FVMT_OK
                          : fail(FVMT_ERR_UNSUPPORTED, "%s: dtype bf16 is not supported by this build", fn);
  return fail(FVMT_ERR_INVALID_ARGUMENT, "%s: dtype must be 0 (f32) or 1 (bf16), got %d", fn, dtype);
}

inline int32_t check_workspace(const char *fn, const void *workspace, size_t given, size_t needed) {
  if (given < needed)
    return fail(FVMT_ERR_WORKSPACE_TOO_SMALL, "%s: workspace_bytes is %zu, need %zu", fn, given, needed);
  if (needed > 0 && workspace == nullptr)
    return fail(FVMT_ERR_INVALID_ARGUMENT, "%s: workspace must not be NULL (need %zu bytes)", fn, needed);
  return FVMT_OK;
}

// Frame geometry and heads: F, H, W, C > 0, C divisible by heads, and the
// tensor small enough that 64-bit offsets are exact.
inline int32_t check_geometry(const char *fn, int32_t frames, int32_t height, int32_t width,
                              int32_t channels) {
  if (int32_t s = check_positive(fn, "frames", frames)) return s;
  if (int32_t s = check_positive(fn, "height", height)) return s;
  if (int32_t s = check_positive(fn, "width", width)) return s;
  if (int32_t s = check_positive(fn, "channels", channels)) return s;
  return FVMT_OK;
}

inline int32_t check_attention(const char *fn, int32_t channels, int32_t heads, float temperature) {
  if (int32_t s = check_positive(fn, "heads", heads)) return s;
  if (channels % heads != 0)
    return fail(FVMT_ERR_INVALID_ARGUMENT, "%s: channels (%d) must be divisible by heads (%d)", fn,
                channels, heads);
  if (!(std::isfinite(temperature) && temperature > 0.0f))
    return fail(FVMT_ERR_INVALID_ARGUMENT, "%s: temperature must be finite and positive, got %g", fn,
                static_cast<double>(temperature));
  return FVMT_OK;
}

inline int32_t check_window(const char *fn, int32_t height, int32_t width, int32_t tile_h,
                            int32_t tile_w, int32_t window) {
  if (window < 1 || window % 2 == 0)
    return fail(FVMT_ERR_INVALID_ARGUMENT, "%s: window must be odd and >= 1, got %d", fn, window);
  if (tile_h < 1 || tile_h > height)
    return fail(FVMT_ERR_INVALID_ARGUMENT, "%s: tile_h must be in [1, height=%d], got %d", fn, height,
                tile_h);
  if (tile_w < 1 || tile_w > width)
    return fail(FVMT_ERR_INVALID_ARGUMENT, "%s: tile_w must be in [1, width=%d], got %d", fn, width,
                tile_w);
  return FVMT_OK;
}

// Host memory only: every pair names frames inside [0, frames).
inline int32_t check_pairs(const char *fn, const int32_t *pairs, int32_t pair_count, int32_t frames) {
  if (int32_t s = check_positive(fn, "pair_count", pair_count)) return s;
  if (int32_t s = check_pointer(fn, "pairs", pairs)) return s;
  for (int32_t p = 0; p < pair_count; ++p) {
    const int32_t i = pairs[2 * p], j = pairs[2 * p + 1];
    if (i < 0 || i >= frames || j < 0 || j >= frames)
      return fail(FVMT_ERR_INVALID_ARGUMENT, "%s: pairs[%d] = (%d, %d) is outside [0, frames=%d)", fn, p, i,
                  j, frames);
  }
  return FVMT_OK;
}

// Host memory only: every window origin keeps its window inside the frame.
inline int32_t check_window_origins(const char *fn, const int32_t *origins, int32_t pair_count,
                                    int32_t height, int32_t width, int32_t tile_h, int32_t tile_w,
                                    int32_t window) {
  if (int32_t s = check_pointer(fn, "window_origins", origins)) return s;
  const int32_t lh = window < height ? window : height, lw = window < width ? window : width;
  const int64_t n = static_cast<int64_t>(pair_count) * tiles_along(height, tile_h) * tiles_along(width, tile_w);
  for (int64_t t = 0; t < n; ++t) {
    const int32_t r0 = origins[2 * t], c0 = origins[2 * t + 1];
    if (r0 < 0 || r0 > height - lh || c0 < 0 || c0 > width - lw)
      return fail(FVMT_ERR_INVALID_ARGUMENT,
                  "%s: window_origins[%lld] = (%d, %d) puts a %dx%d window outside the %dx%d frame", fn,
                  static_cast<long long>(t), r0, c0, lh, lw, height, width);
  }
  return FVMT_OK;
}

}  // namespace fvmt
