// Video autoencoder ops, CUDA (fastvmt.h, "Video autoencoder ops"): the layers of the Wan2.1
// VAE that the DiT ops cannot do, forward only, on channel-last activations
// [frames, height, width, channels].
//
//  - im2col_kernel: rows[i, ((a kh + b) kw + e) C + ch] = x[f st + a - pt0, r sh + b - ph0,
//    c sw + e - pw0, ch] (0 outside x) for output positions p = (f oh + r) ow + c =
//    row_begin + i. A convolution is then one cuBLAS GEMM of these rows with the weight
//    reordered to [c_out, kt kh kw c_in].
//  - upsample_kernel: y[n, r, c, ch] = x[n, r/2, c/2, ch].
//  - interleave_kernel: y[2f + s, p, ch] = x[f, p, s C + ch].
//  - softmax_rows_kernel: y = softmax(scale x) per row.
//
// Why they are fast: the three copies are grid-stride loops over the OUTPUT in its own
// order, so consecutive threads write consecutive floats (coalesced) and read consecutive
// channels of one source pixel (also coalesced, C >= 32 in every Wan layer but the first);
// each output element is written once by one thread. The softmax gives one 256-thread
// block to a row: the row (a frame's 6 240 tokens at 480x832) is read three times from L2
// and reduced through shared memory in a fixed order, so results are deterministic.
#include <cmath>

#include "autoencoder_checks.hpp"
#include "entry.cuh"

namespace fvmt {
namespace {

constexpr int kBlock = 256;
constexpr int64_t kMaxBlocks = 4096;

unsigned flat_grid(int64_t items) {
  const int64_t blocks = (items + kBlock - 1) / kBlock;
  return static_cast<unsigned>(blocks < kMaxBlocks ? blocks : kMaxBlocks);
}

__global__ void __launch_bounds__(kBlock)
    im2col_kernel(const float *__restrict__ x, Im2col3d a, float *__restrict__ rows) {
  const int64_t features = static_cast<int64_t>(a.kt) * a.kh * a.kw * a.channels;
  const int64_t total = a.row_count * features;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * kBlock;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * kBlock + threadIdx.x; e < total; e += stride) {
    const int64_t i = e / features;
    const int32_t feature = static_cast<int32_t>(e - i * features);
    const int32_t ch = feature % a.channels;
    const int32_t tap = feature / a.channels;
    const int32_t dw = tap % a.kw, dh = (tap / a.kw) % a.kh, dt = tap / (a.kw * a.kh);
    const int64_t p = a.row_begin + i;
    const int32_t c = static_cast<int32_t>(p % a.out_width);
    const int32_t r = static_cast<int32_t>((p / a.out_width) % a.out_height);
    const int32_t f = static_cast<int32_t>(p / (static_cast<int64_t>(a.out_width) * a.out_height));
    const int32_t fi = f * a.st + dt - a.pad_t0, ri = r * a.sh + dh - a.pad_h0, ci = c * a.sw + dw - a.pad_w0;
    float v = 0.0f;
    if (fi >= 0 && fi < a.frames && ri >= 0 && ri < a.height && ci >= 0 && ci < a.width)
      v = x[((static_cast<int64_t>(fi) * a.height + ri) * a.width + ci) * a.channels + ch];
    rows[e] = v;
  }
}

__global__ void __launch_bounds__(kBlock)
    upsample_kernel(const float *__restrict__ x, int32_t images, int32_t height, int32_t width, int32_t channels,
                    float *__restrict__ y) {
  const int64_t out_width = 2LL * width, out_height = 2LL * height;
  const int64_t total = static_cast<int64_t>(images) * out_height * out_width * channels;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * kBlock;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * kBlock + threadIdx.x; e < total; e += stride) {
    const int64_t ch = e % channels;
    int64_t rest = e / channels;
    const int64_t c = rest % out_width;
    rest /= out_width;
    const int64_t r = rest % out_height;
    const int64_t n = rest / out_height;
    y[e] = x[((n * height + r / 2) * width + c / 2) * channels + ch];
  }
}

__global__ void __launch_bounds__(kBlock)
    interleave_kernel(const float *__restrict__ x, int32_t frames, int64_t pixels, int32_t channels,
                      float *__restrict__ y) {
  const int64_t total = 2LL * frames * pixels * channels;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * kBlock;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * kBlock + threadIdx.x; e < total; e += stride) {
    const int64_t ch = e % channels;
    const int64_t rest = e / channels;
    const int64_t p = rest % pixels;
    const int64_t out_frame = rest / pixels;
    const int64_t f = out_frame / 2, s = out_frame % 2;
    y[e] = x[(f * pixels + p) * 2 * channels + s * channels + ch];
  }
}

// Max (kMax) or sum of `value` over the block; every thread gets it. The pairing depends
// only on thread indices, so the result is the same from run to run.
template <bool kMax>
__device__ float block_reduce(float value, float *scratch) {
  scratch[threadIdx.x] = value;
  __syncthreads();
  for (int half = kBlock / 2; half > 0; half /= 2) {
    if (static_cast<int>(threadIdx.x) < half) {
      const float other = scratch[threadIdx.x + half];
      scratch[threadIdx.x] = kMax ? fmaxf(scratch[threadIdx.x], other) : scratch[threadIdx.x] + other;
    }
    __syncthreads();
  }
  const float result = scratch[0];
  __syncthreads();
  return result;
}

__global__ void __launch_bounds__(kBlock)
    softmax_rows_kernel(const float *x, int64_t rows, int32_t cols, float scale, float *y) {
  __shared__ float scratch[kBlock];
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const float *xr = x + row * cols;
    float *yr = y + row * cols;
    float top = -INFINITY;
    for (int32_t c = threadIdx.x; c < cols; c += kBlock) top = fmaxf(top, scale * xr[c]);
    top = block_reduce<true>(top, scratch);
    float sum = 0.0f;
    // Each thread reads and writes only its own columns, so y may equal x.
    for (int32_t c = threadIdx.x; c < cols; c += kBlock) {
      const float e = expf(scale * xr[c] - top);
      yr[c] = e;
      sum += e;
    }
    const float inverse = 1.0f / block_reduce<false>(sum, scratch);
    for (int32_t c = threadIdx.x; c < cols; c += kBlock) yr[c] *= inverse;
  }
}

}  // namespace
}  // namespace fvmt

using namespace fvmt;

extern "C" FVMT_API int32_t fvmt_im2col3d(const float *x, int32_t frames, int32_t height, int32_t width,
                                          int32_t channels, int32_t kt, int32_t kh, int32_t kw, int32_t st,
                                          int32_t sh, int32_t sw, int32_t pad_t0, int32_t pad_t1, int32_t pad_h0,
                                          int32_t pad_h1, int32_t pad_w0, int32_t pad_w1, int64_t row_begin,
                                          int64_t row_count, float *rows, void *stream) {
  static constexpr char fn[] = "fvmt_im2col3d";
  return guarded(fn, [&]() -> int32_t {
    Im2col3d a{frames, height, width, channels, kt, kh, kw, st, sh, sw,
               pad_t0, pad_t1, pad_h0, pad_h1, pad_w0, pad_w1, row_begin, row_count};
    if (int32_t s = check_im2col3d(fn, x, a, rows)) return s;
    FVMT_LAUNCH(flat_grid(row_count * a.features()), kBlock, 0, as_stream(stream), im2col_kernel)(x, a, rows);
    return check_launch(fn, "im2col_kernel");
  });
}

extern "C" FVMT_API int32_t fvmt_upsample_nearest2x(const float *x, int32_t images, int32_t height, int32_t width,
                                                    int32_t channels, float *y, void *stream) {
  static constexpr char fn[] = "fvmt_upsample_nearest2x";
  return guarded(fn, [&]() -> int32_t {
    if (int32_t s = check_upsample_nearest2x(fn, x, images, height, width, channels, y)) return s;
    const int64_t total = static_cast<int64_t>(images) * 4 * height * width * channels;
    FVMT_LAUNCH(flat_grid(total), kBlock, 0, as_stream(stream), upsample_kernel)(x, images, height, width, channels, y);
    return check_launch(fn, "upsample_kernel");
  });
}

extern "C" FVMT_API int32_t fvmt_frame_interleave(const float *x, int32_t frames, int64_t pixels, int32_t channels,
                                                  float *y, void *stream) {
  static constexpr char fn[] = "fvmt_frame_interleave";
  return guarded(fn, [&]() -> int32_t {
    if (int32_t s = check_frame_interleave(fn, x, frames, pixels, channels, y)) return s;
    const int64_t total = 2LL * frames * pixels * channels;
    FVMT_LAUNCH(flat_grid(total), kBlock, 0, as_stream(stream), interleave_kernel)(x, frames, pixels, channels, y);
    return check_launch(fn, "interleave_kernel");
  });
}

extern "C" FVMT_API int32_t fvmt_softmax_rows_forward(const float *x, int64_t rows, int32_t cols, float scale,
                                                      float *y, void *stream) {
  static constexpr char fn[] = "fvmt_softmax_rows_forward";
  return guarded(fn, [&]() -> int32_t {
    if (int32_t s = check_softmax_rows(fn, x, rows, cols, scale, y)) return s;
    const unsigned grid = static_cast<unsigned>(rows < kMaxBlocks ? rows : kMaxBlocks);
    FVMT_LAUNCH(grid, kBlock, 0, as_stream(stream), softmax_rows_kernel)(x, rows, cols, scale, y);
    return check_launch(fn, "softmax_rows_kernel");
  });
}
