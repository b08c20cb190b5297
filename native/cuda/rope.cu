// 3D rotary position embedding (Wan2.1's rope_apply), CUDA, and its backward
// (fastvmt.h, "DiT ops").
// x, y: [tokens, heads, head_dim], token t = (f * height + r) * width + c. The head_dim / 2
// channel pairs (x[2m], x[2m+1]) of every head are complex numbers; the first n_f pairs turn
// with the frame f, the next n_r with the row r, the last n_c with the column c
// (n_r = n_c = (head_dim / 2) / 3, n_f = head_dim / 2 - 2 n_r; 22 / 21 / 21 at head_dim 128).
// Pair k of an axis with n pairs turns by position * theta^(-2k / (2n)):
//   forward   y  = R(angle) x     (written; y may equal x)
//   backward  dx += R(-angle) dy  (R is orthogonal: its transpose is its inverse)
//
// rope_kernel: ONE BLOCK PER TOKEN. An angle depends on the token and the pair index m only,
// not on the head, so the block first tabulates cos/sin of its token's angles in shared
// memory (one thread per pair, in double precision as the cpu build, rounded to fp32 once),
// then all threads rotate the heads * head_dim / 2 pairs of the token: consecutive threads
// take consecutive pairs (8-byte float2 accesses, coalesced). The double-precision work is
// 1 / heads of the pairs (1/12 for Wan) and hides behind the memory traffic. head_dim of any
// size is handled in slices of kSlice pairs.
#include <cmath>

#include "entry.cuh"
#include "dit_checks.hpp"
#include "dit_formulas.hpp"

namespace fvmt {
namespace {

constexpr int kBlock = 256;
constexpr int kSlice = 256;  // pairs tabulated at a time (head_dim 128 has 64)

struct Rope {
  int32_t frames, height, width, heads, head_dim;
  double theta;
};

// rotates `in` into `out` (kBackward: out += R(-angle) in, else out = R(angle) in).
// `pairs_aligned`: in and out are 8-byte aligned, so a pair is one float2.
template <bool kBackward>
__global__ void __launch_bounds__(kBlock)
    rope_kernel(const float *in, Rope rope, bool pairs_aligned, float *out) {
  __shared__ float cos_table[kSlice];
  __shared__ float sin_table[kSlice];
  const int64_t token = blockIdx.x;
  const int32_t c = static_cast<int32_t>(token % rope.width);
  const int32_t r = static_cast<int32_t>((token / rope.width) % rope.height);
  const int32_t f = static_cast<int32_t>(token / (static_cast<int64_t>(rope.width) * rope.height));
  const int32_t half = rope.head_dim / 2;
  const RopePairs pairs = rope_pairs(rope.head_dim);
  const int64_t token_base = token * rope.heads * rope.head_dim;
  for (int32_t m0 = 0; m0 < half; m0 += kSlice) {
    const int32_t count = half - m0 < kSlice ? half - m0 : kSlice;
    if (m0 > 0) __syncthreads();  // the previous slice's table is no longer read
    for (int32_t j = threadIdx.x; j < count; j += kBlock) {
      const int32_t m = m0 + j;
      int32_t position, k, axis_pairs;
      if (m < pairs.frame) {
        position = f, k = m, axis_pairs = pairs.frame;
      } else if (m < pairs.frame + pairs.row) {
        position = r, k = m - pairs.frame, axis_pairs = pairs.row;
      } else {
        position = c, k = m - pairs.frame - pairs.row, axis_pairs = pairs.col;
      }
      const double angle = rope_angle(position, k, axis_pairs, rope.theta);
      cos_table[j] = static_cast<float>(cos(angle));
      sin_table[j] = static_cast<float>(sin(angle));
    }
    __syncthreads();
    const int32_t work = rope.heads * count;
    for (int32_t p = threadIdx.x; p < work; p += kBlock) {
      const int32_t h = p / count, j = p - h * count;
      const int64_t at = token_base + static_cast<int64_t>(h) * rope.head_dim + 2 * (m0 + j);
      float re, im;
      if (pairs_aligned) {
        const float2 v = *reinterpret_cast<const float2 *>(in + at);
        re = v.x, im = v.y;
      } else {
        re = in[at], im = in[at + 1];
      }
      const float cs = cos_table[j], sn = sin_table[j];
      float a, b;
      if constexpr (kBackward) {
        if (pairs_aligned) {
          const float2 o = *reinterpret_cast<const float2 *>(out + at);
          a = o.x, b = o.y;
        } else {
          a = out[at], b = out[at + 1];
        }
        a += re * cs + im * sn;
        b += im * cs - re * sn;
      } else {
        a = re * cs - im * sn;
        b = re * sn + im * cs;
      }
      if (pairs_aligned) {
        *reinterpret_cast<float2 *>(out + at) = make_float2(a, b);
      } else {
        out[at] = a;
        out[at + 1] = b;
      }
    }
  }
}

// The entry points: `in` is x (forward) or dy (backward), `out` is y or dx.
template <bool kBackward>
int32_t rotate(const char *fn, const float *in, int32_t frames, int32_t height, int32_t width, int32_t heads,
               int32_t head_dim, float theta, float *out, void *stream) {
  return guarded(fn, [&]() -> int32_t {
    if (int32_t s = check_rope(fn, frames, height, width, heads, head_dim, theta, kBackward, in, out)) return s;
    // Pair indices within a token are int32 inside the kernel.
    if (static_cast<int64_t>(heads) * head_dim > 2147483647LL)
      return fail(FVMT_ERR_INVALID_ARGUMENT, "%s: heads x head_dim = %lld is too large (limit 2^31 - 1)", fn,
                  static_cast<long long>(heads) * head_dim);
    unsigned grid = 0;
    if (int32_t s = grid_size(fn, static_cast<int64_t>(frames) * height * width, &grid)) return s;
    const Rope rope{frames, height, width, heads, head_dim, static_cast<double>(theta)};
    const bool pairs_aligned =
        reinterpret_cast<uintptr_t>(in) % 8 == 0 && reinterpret_cast<uintptr_t>(out) % 8 == 0;
    FVMT_LAUNCH(grid, kBlock, 0, as_stream(stream), rope_kernel<kBackward>)(in, rope, pairs_aligned, out);
    return check_launch(fn, "rope_kernel");
  });
}

}  // namespace
}  // namespace fvmt

using namespace fvmt;

extern "C" FVMT_API int32_t fvmt_rope3d_forward(const float *x, int32_t frames, int32_t height, int32_t width,
                                                int32_t heads, int32_t head_dim, float theta, float *y,
                                                void *stream) {
  return rotate<false>("fvmt_rope3d_forward", x, frames, height, width, heads, head_dim, theta, y, stream);
}

extern "C" FVMT_API int32_t fvmt_rope3d_backward(const float *dy, int32_t frames, int32_t height, int32_t width,
                                                 int32_t heads, int32_t head_dim, float theta, float *dx,
                                                 void *stream) {
  return rotate<true>("fvmt_rope3d_backward", dy, frames, height, width, heads, head_dim, theta, dx, stream);
}
