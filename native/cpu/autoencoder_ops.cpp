// Video autoencoder ops, CPU (fastvmt.h, "Video autoencoder ops"): the layers of the Wan2.1
// VAE that the DiT ops cannot do, forward only, on channel-last activations
// [frames, height, width, channels].
//
//  - fvmt_im2col3d: rows[i, ((a kh + b) kw + e) C + ch] = x[f st + a - pt0, r sh + b - ph0,
//    c sw + e - pw0, ch] (0 outside x) for the output positions p = (f oh + r) ow + c in
//    [row_begin, row_begin + row_count). A convolution is then one GEMM of these rows with
//    the weight reordered to [c_out, kt kh kw c_in].
//  - fvmt_upsample_nearest2x: y[n, r, c, ch] = x[n, r/2, c/2, ch].
//  - fvmt_frame_interleave: y[2f + s, p, ch] = x[f, p, s C + ch].
//  - fvmt_softmax_rows_forward: y = softmax(scale x) per row, max-subtracted, sum in double.
//
// Why it is fast enough: every op is a copy whose unit is one pixel's channel vector (C
// contiguous floats, 96..384 in Wan's VAE), so the inner loops are memcpy/memset of whole
// vectors; rows (or output pixel rows) are spread over OpenMP threads, each row written by
// exactly one thread. The GEMM that follows the im2col dominates the convolution's time.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "autoencoder_checks.hpp"
#include "boundary.hpp"
#include "validate.hpp"

using namespace fvmt;

extern "C" FVMT_API int32_t fvmt_im2col3d(const float *x, int32_t frames, int32_t height, int32_t width,
                                          int32_t channels, int32_t kt, int32_t kh, int32_t kw, int32_t st,
                                          int32_t sh, int32_t sw, int32_t pad_t0, int32_t pad_t1, int32_t pad_h0,
                                          int32_t pad_h1, int32_t pad_w0, int32_t pad_w1, int64_t row_begin,
                                          int64_t row_count, float *rows, void *) {
  static constexpr char fn[] = "fvmt_im2col3d";
  return cpu::run_guarded(fn, [&]() -> int32_t {
    Im2col3d a{frames, height, width, channels, kt, kh, kw, st, sh, sw,
               pad_t0, pad_t1, pad_h0, pad_h1, pad_w0, pad_w1, row_begin, row_count};
    if (int32_t s = check_im2col3d(fn, x, a, rows)) return s;
    const int64_t features = a.features();
    const size_t vector_bytes = sizeof(float) * static_cast<size_t>(channels);
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < row_count; ++i) {
      const int64_t p = row_begin + i;
      const int32_t c = static_cast<int32_t>(p % a.out_width);
      const int32_t r = static_cast<int32_t>((p / a.out_width) % a.out_height);
      const int32_t f = static_cast<int32_t>(p / (static_cast<int64_t>(a.out_width) * a.out_height));
      float *out = rows + i * features;
      for (int32_t dt = 0; dt < kt; ++dt) {
        const int32_t fi = f * st + dt - pad_t0;
        for (int32_t dh = 0; dh < kh; ++dh) {
          const int32_t ri = r * sh + dh - pad_h0;
          const bool inside = fi >= 0 && fi < frames && ri >= 0 && ri < height;
          for (int32_t dw = 0; dw < kw; ++dw, out += channels) {
            const int32_t ci = c * sw + dw - pad_w0;
            if (inside && ci >= 0 && ci < width)
              std::memcpy(out, x + ((static_cast<int64_t>(fi) * height + ri) * width + ci) * channels, vector_bytes);
            else
              std::memset(out, 0, vector_bytes);
          }
        }
      }
    }
    return FVMT_OK;
  });
}

extern "C" FVMT_API int32_t fvmt_upsample_nearest2x(const float *x, int32_t images, int32_t height, int32_t width,
                                                    int32_t channels, float *y, void *) {
  static constexpr char fn[] = "fvmt_upsample_nearest2x";
  return cpu::run_guarded(fn, [&]() -> int32_t {
    if (int32_t s = check_upsample_nearest2x(fn, x, images, height, width, channels, y)) return s;
    const int64_t out_rows = static_cast<int64_t>(images) * 2 * height;
    const int64_t out_width = 2LL * width;
    const size_t vector_bytes = sizeof(float) * static_cast<size_t>(channels);
#pragma omp parallel for schedule(static)
    for (int64_t row = 0; row < out_rows; ++row) {
      const int64_t n = row / (2LL * height), r = row % (2LL * height);
      const float *source = x + (n * height + r / 2) * width * channels;
      float *out = y + row * out_width * channels;
      for (int64_t c = 0; c < out_width; ++c) std::memcpy(out + c * channels, source + (c / 2) * channels, vector_bytes);
    }
    return FVMT_OK;
  });
}

extern "C" FVMT_API int32_t fvmt_frame_interleave(const float *x, int32_t frames, int64_t pixels, int32_t channels,
                                                  float *y, void *) {
  static constexpr char fn[] = "fvmt_frame_interleave";
  return cpu::run_guarded(fn, [&]() -> int32_t {
    if (int32_t s = check_frame_interleave(fn, x, frames, pixels, channels, y)) return s;
    const size_t vector_bytes = sizeof(float) * static_cast<size_t>(channels);
    const int64_t total = static_cast<int64_t>(frames) * pixels;
#pragma omp parallel for schedule(static)
    for (int64_t fp = 0; fp < total; ++fp) {
      const int64_t f = fp / pixels, p = fp % pixels;
      const float *in = x + fp * 2 * channels;
      std::memcpy(y + ((2 * f) * pixels + p) * channels, in, vector_bytes);
      std::memcpy(y + ((2 * f + 1) * pixels + p) * channels, in + channels, vector_bytes);
    }
    return FVMT_OK;
  });
}

extern "C" FVMT_API int32_t fvmt_softmax_rows_forward(const float *x, int64_t rows, int32_t cols, float scale,
                                                      float *y, void *) {
  static constexpr char fn[] = "fvmt_softmax_rows_forward";
  return cpu::run_guarded(fn, [&]() -> int32_t {
    if (int32_t s = check_softmax_rows(fn, x, rows, cols, scale, y)) return s;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const float *xr = x + r * cols;
      float *yr = y + r * cols;
      float top = -INFINITY;
      for (int32_t c = 0; c < cols; ++c) top = std::max(top, scale * xr[c]);
      double sum = 0;
      for (int32_t c = 0; c < cols; ++c) {
        const float e = std::exp(scale * xr[c] - top);
        yr[c] = e;
        sum += e;
      }
      const float inverse = static_cast<float>(1.0 / sum);
#pragma omp simd
      for (int32_t c = 0; c < cols; ++c) yr[c] *= inverse;
    }
    return FVMT_OK;
  });
}
