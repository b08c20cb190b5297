// Argument checks of the video autoencoder ops (fastvmt.h, "Video autoencoder ops"),
// shared by the cpu and cuda builds so that both refuse the same inputs with the same
// sentence, and the output geometry of fvmt_im2col3d that both compute from them.
#pragma once

#include <cmath>
#include <cstdint>

#include "status.hpp"
#include "validate.hpp"

namespace fvmt {

// The arguments of fvmt_im2col3d and the output grid they imply.
struct Im2col3d {
  int32_t frames, height, width, channels;
  int32_t kt, kh, kw, st, sh, sw;
  int32_t pad_t0, pad_t1, pad_h0, pad_h1, pad_w0, pad_w1;
  int64_t row_begin, row_count;
  // Set by check_im2col3d.
  int32_t out_frames = 0, out_height = 0, out_width = 0;

  int64_t features() const { return static_cast<int64_t>(kt) * kh * kw * channels; }
  int64_t positions() const { return static_cast<int64_t>(out_frames) * out_height * out_width; }
};

namespace detail {

// One axis: kernel and stride >= 1, both paddings in [0, kernel), and at least one output.
inline int32_t check_axis(const char *fn, const char *axis, int32_t extent, int32_t kernel, int32_t stride,
                          int32_t pad0, int32_t pad1, int32_t *out) {
  if (kernel < 1) return fail(FVMT_ERR_INVALID_ARGUMENT, "%s: the %s kernel size must be >= 1, got %d", fn, axis, kernel);
  if (stride < 1) return fail(FVMT_ERR_INVALID_ARGUMENT, "%s: the %s stride must be >= 1, got %d", fn, axis, stride);
  if (pad0 < 0 || pad0 >= kernel || pad1 < 0 || pad1 >= kernel)
    return fail(FVMT_ERR_INVALID_ARGUMENT, "%s: the %s paddings must be in [0, %d) (the kernel size), got %d and %d",
                fn, axis, kernel, pad0, pad1);
  const int64_t padded = static_cast<int64_t>(extent) + pad0 + pad1;
  if (padded < kernel)
    return fail(FVMT_ERR_INVALID_ARGUMENT, "%s: the padded %s extent %lld is smaller than the kernel (%d)", fn, axis,
                static_cast<long long>(padded), kernel);
  *out = static_cast<int32_t>((padded - kernel) / stride + 1);
  return FVMT_OK;
}

}  // namespace detail

inline int32_t check_im2col3d(const char *fn, const float *x, Im2col3d &a, const float *rows) {
  if (int32_t s = check_geometry(fn, a.frames, a.height, a.width, a.channels)) return s;
  if (int32_t s = detail::check_axis(fn, "time", a.frames, a.kt, a.st, a.pad_t0, a.pad_t1, &a.out_frames)) return s;
  if (int32_t s = detail::check_axis(fn, "height", a.height, a.kh, a.sh, a.pad_h0, a.pad_h1, &a.out_height)) return s;
  if (int32_t s = detail::check_axis(fn, "width", a.width, a.kw, a.sw, a.pad_w0, a.pad_w1, &a.out_width)) return s;
  if (a.features() > 2147483647LL)
    return fail(FVMT_ERR_INVALID_ARGUMENT, "%s: kt * kh * kw * channels = %lld must be < 2^31", fn,
                static_cast<long long>(a.features()));
  if (a.row_begin < 0 || a.row_count < 1 || a.row_begin > a.positions() - a.row_count)
    return fail(FVMT_ERR_INVALID_ARGUMENT,
                "%s: row_begin (%lld) and row_count (%lld) must select a non-empty range of the %lld output "
                "positions",
                fn, static_cast<long long>(a.row_begin), static_cast<long long>(a.row_count),
                static_cast<long long>(a.positions()));
  if (int32_t s = check_pointer(fn, "x", x)) return s;
  return check_pointer(fn, "rows", rows);
}

inline int32_t check_upsample_nearest2x(const char *fn, const float *x, int32_t images, int32_t height, int32_t width,
                                        int32_t channels, const float *y) {
  if (int32_t s = check_positive(fn, "images", images)) return s;
  if (int32_t s = check_positive(fn, "height", height)) return s;
  if (int32_t s = check_positive(fn, "width", width)) return s;
  if (int32_t s = check_positive(fn, "channels", channels)) return s;
  if (2LL * height > 2147483647LL || 2LL * width > 2147483647LL)
    return fail(FVMT_ERR_INVALID_ARGUMENT, "%s: 2 * height and 2 * width must be < 2^31, got %d and %d", fn, height,
                width);
  if (int32_t s = check_pointer(fn, "x", x)) return s;
  return check_pointer(fn, "y", y);
}

inline int32_t check_frame_interleave(const char *fn, const float *x, int32_t frames, int64_t pixels,
                                      int32_t channels, const float *y) {
  if (int32_t s = check_positive(fn, "frames", frames)) return s;
  if (int32_t s = check_positive(fn, "pixels", pixels)) return s;
  if (int32_t s = check_positive(fn, "channels", channels)) return s;
  if (channels > 1073741823)
    return fail(FVMT_ERR_INVALID_ARGUMENT, "%s: 2 * channels must be < 2^31, got channels = %d", fn, channels);
  if (int32_t s = check_pointer(fn, "x", x)) return s;
  return check_pointer(fn, "y", y);
}

inline int32_t check_softmax_rows(const char *fn, const float *x, int64_t rows, int32_t cols, float scale,
                                  const float *y) {
  if (int32_t s = check_positive(fn, "rows", rows)) return s;
  if (int32_t s = check_positive(fn, "cols", cols)) return s;
  if (!(std::isfinite(scale) && scale > 0.0f))
    return fail(FVMT_ERR_INVALID_ARGUMENT, "%s: scale must be finite and positive, got %g", fn,
                static_cast<double>(scale));
  if (int32_t s = check_pointer(fn, "x", x)) return s;
  return check_pointer(fn, "y", y);
}

}  // namespace fvmt
