// 3D rotary position embedding (Wan2.1's rope_apply), CPU, and its backward
// (fastvmt.h, "DiT ops").
// x, y: [tokens, heads, head_dim], token t = (f * height + r) * width + c. The
// head_dim / 2 channel pairs (x[2m], x[2m+1]) of every head are complex numbers;
// the first n_f pairs turn with the frame f, the next n_r with the row r, the
// last n_c with the column c (n_r = n_c = (head_dim / 2) / 3,
// n_f = head_dim / 2 - 2 n_r; 22 / 21 / 21 at head_dim 128). Pair k of an axis
// with n pairs turns by position * theta^(-2k / (2n)):
//   forward   y  = R(angle) x     (written; y may equal x)
//   backward  dx += R(-angle) dy  (R is orthogonal: its transpose is its inverse)
//
// Why it is fast: an angle depends on one position and one pair only, so the
// cos/sin are tabulated per axis (frames x n_f, height x n_r, width x n_c: a few
// KiB, angles in double, rounded to fp32 once). The token loop is then a
// multiply-add stream over memory, tokens split across threads.
#include <cmath>
#include <vector>

#include "boundary.hpp"
#include "dit_checks.hpp"
#include "dit_formulas.hpp"

using namespace fvmt;

namespace {

// cos/sin of position p times the frequency of pair k of an axis: [positions, pairs].
struct AxisRotations {
  int32_t pairs;
  std::vector<float> cos;
  std::vector<float> sin;

  AxisRotations(int32_t positions, int32_t axis_pairs, double theta)
      : pairs(axis_pairs),
        cos(static_cast<size_t>(positions) * axis_pairs),
        sin(static_cast<size_t>(positions) * axis_pairs) {
    for (int32_t p = 0; p < positions; ++p)
      for (int32_t k = 0; k < axis_pairs; ++k) {
        const double angle = rope_angle(p, k, axis_pairs, theta);
        cos[static_cast<size_t>(p) * axis_pairs + k] = static_cast<float>(std::cos(angle));
        sin[static_cast<size_t>(p) * axis_pairs + k] = static_cast<float>(std::sin(angle));
      }
  }
};

// Rotates `count` pairs of `in` into `out` by the angles whose cos/sin are given.
template <bool kBackward>
inline void rotate_pairs(const float *in, float *out, int32_t count, const float *cos, const float *sin) {
#pragma omp simd
  for (int32_t k = 0; k < count; ++k) {
    const float re = in[2 * k];
    const float im = in[2 * k + 1];
    if constexpr (kBackward) {
      out[2 * k] += re * cos[k] + im * sin[k];
      out[2 * k + 1] += im * cos[k] - re * sin[k];
    } else {
      out[2 * k] = re * cos[k] - im * sin[k];
      out[2 * k + 1] = re * sin[k] + im * cos[k];
    }
  }
}

template <bool kBackward>
void rotate(const float *in, float *out, int32_t frames, int32_t height, int32_t width, int32_t heads,
            int32_t head_dim, float theta) {
  const RopePairs pairs = rope_pairs(head_dim);
  const AxisRotations frame(frames, pairs.frame, theta);
  const AxisRotations row(height, pairs.row, theta);
  const AxisRotations col(width, pairs.col, theta);
  const int64_t tokens = static_cast<int64_t>(frames) * height * width;
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < tokens; ++t) {
    const int32_t c = static_cast<int32_t>(t % width);
    const int32_t r = static_cast<int32_t>((t / width) % height);
    const int32_t f = static_cast<int32_t>(t / (static_cast<int64_t>(width) * height));
    const size_t f_at = static_cast<size_t>(f) * frame.pairs;
    const size_t r_at = static_cast<size_t>(r) * row.pairs;
    const size_t c_at = static_cast<size_t>(c) * col.pairs;
    for (int32_t h = 0; h < heads; ++h) {
      const int64_t base = (t * heads + h) * head_dim;
      const float *a = in + base;
      float *b = out + base;
      rotate_pairs<kBackward>(a, b, frame.pairs, &frame.cos[f_at], &frame.sin[f_at]);
      a += 2 * frame.pairs;
      b += 2 * frame.pairs;
      rotate_pairs<kBackward>(a, b, row.pairs, row.cos.data() + r_at, row.sin.data() + r_at);
      a += 2 * row.pairs;
      b += 2 * row.pairs;
      rotate_pairs<kBackward>(a, b, col.pairs, col.cos.data() + c_at, col.sin.data() + c_at);
    }
  }
}

// The entry points: `in` is x (forward) or dy (backward), `out` is y or dx.
template <bool kBackward>
int32_t rope(const char *fn, const float *in, int32_t frames, int32_t height, int32_t width, int32_t heads,
             int32_t head_dim, float theta, float *out) {
  return cpu::run_guarded(fn, [&]() -> int32_t {
    if (int32_t s = check_rope(fn, frames, height, width, heads, head_dim, theta, kBackward, in, out)) return s;
    rotate<kBackward>(in, out, frames, height, width, heads, head_dim, theta);
    return FVMT_OK;
  });
}

}  // namespace

extern "C" FVMT_API int32_t fvmt_rope3d_forward(const float *x, int32_t frames, int32_t height, int32_t width,
                                                int32_t heads, int32_t head_dim, float theta, float *y, void *) {
  return rope<false>("fvmt_rope3d_forward", x, frames, height, width, heads, head_dim, theta, y);
}

extern "C" FVMT_API int32_t fvmt_rope3d_backward(const float *dy, int32_t frames, int32_t height, int32_t width,
                                                 int32_t heads, int32_t head_dim, float theta, float *dx, void *) {
  return rope<true>("fvmt_rope3d_backward", dy, frames, height, width, heads, head_dim, theta, dx);
}
