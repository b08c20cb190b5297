// GELU (tanh approximation) and SiLU, element-wise over n fp32 values, CPU,
// with their backward (fastvmt.h, "DiT ops"):
//   gelu_tanh(x) = 0.5 x (1 + tanh(u)),  u = sqrt(2/pi) (x + 0.044715 x^3)
//                = x sigmoid(2u)                    (0.5 (1 + tanh u) = sigmoid(2u))
//   gelu_tanh'(x) = s + 2 x s (1 - s) sqrt(2/pi) (1 + 3 0.044715 x^2),  s = sigmoid(2u)
//   silu(x) = x sigmoid(x),   silu'(x) = s (1 + x (1 - s)),  s = sigmoid(x)
//   forward y = f(x) (written; y may equal x), backward dx += dy f'(x).
// The sigmoid form is also the more accurate one: 1 + tanh(u) cancels for x << 0.
//
// Why it is fast: glibc's expf/tanhf are scalar calls (the compiler vectorises
// them only under -ffast-math), which makes these ops compute-bound: GELU over
// Wan's 1560 x 8960 FFN activations took 35 ms on 2 cores with tanhf. Here exp
// is evaluated 8 lanes at a time with AVX2/FMA (a range reduction and a degree-7
// polynomial, a few ulp): 5.7 ms, memory speed. Threads split the array in blocks of 8; the last n % 8 elements go
// through the same 8-lane code on a padded copy, so every element is computed
// by the same instructions.
#include <immintrin.h>

#include "boundary.hpp"
#include "dit_checks.hpp"
#include "dit_formulas.hpp"

using namespace fvmt;

namespace {

#define FVMT_INLINE [[gnu::always_inline]] inline

FVMT_INLINE __m256 splat(float v) { return _mm256_set1_ps(v); }

// exp(v), v = n ln2 + r with n = round(v / ln2) and |r| <= ln2 / 2: exp(r) by
// its Taylor series to r^7 (truncation error < 6e-9 relative), then scaled by
// 2 * 2^(n-1), the power built in the exponent bits (n - 1 so that n = 128 still
// builds a normal number). v is clamped to [-86, 89]: below, the result stays
// the normal exp(-86) (a sigmoid of it is 1 in fp32 anyway); above 88.72 the
// product overflows to +inf, so 1 / (1 + exp(v)) is exactly 0 for large v.
// max/min return their SECOND operand when one is NaN, so a NaN stays NaN.
FVMT_INLINE __m256 exp8(__m256 v) {
  const __m256 rounding_shift = splat(12582912.0f);  // 1.5 * 2^23: adding it rounds to an integer in the low bits
  v = _mm256_min_ps(splat(89.0f), _mm256_max_ps(splat(-86.0f), v));
  const __m256 shifted = _mm256_fmadd_ps(v, splat(1.44269504088896341f), rounding_shift);
  const __m256 n = _mm256_sub_ps(shifted, rounding_shift);
  // ln 2 in two parts; the high part has its low mantissa bits zero, so n * high is exact.
  __m256 r = _mm256_fnmadd_ps(n, splat(0.693145751953125f), v);
  r = _mm256_fnmadd_ps(n, splat(1.42860682030941723e-6f), r);
  __m256 p = splat(1.0f / 5040.0f);
  p = _mm256_fmadd_ps(p, r, splat(1.0f / 720.0f));
  p = _mm256_fmadd_ps(p, r, splat(1.0f / 120.0f));
  p = _mm256_fmadd_ps(p, r, splat(1.0f / 24.0f));
  p = _mm256_fmadd_ps(p, r, splat(1.0f / 6.0f));
  p = _mm256_fmadd_ps(p, r, splat(0.5f));
  p = _mm256_fmadd_ps(p, r, splat(1.0f));
  p = _mm256_fmadd_ps(p, r, splat(1.0f));
  // The low bits of `shifted` hold n (two's complement): 2^(n-1) = (n - 1 + 127) << 23.
  const __m256i n_bits = _mm256_sub_epi32(_mm256_castps_si256(shifted), _mm256_castps_si256(rounding_shift));
  const __m256 two_to_n_minus_1 =
      _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n_bits, _mm256_set1_epi32(126)), 23));
  return _mm256_mul_ps(_mm256_add_ps(p, p), two_to_n_minus_1);
}

// 1 / (1 + exp(-v)).
FVMT_INLINE __m256 sigmoid8(__m256 v) {
  const __m256 one = splat(1.0f);
  return _mm256_div_ps(one, _mm256_add_ps(one, exp8(_mm256_sub_ps(_mm256_setzero_ps(), v))));
}

// sigmoid(2u) = 0.5 (1 + tanh(u)) of GELU-tanh.
FVMT_INLINE __m256 gelu_gate8(__m256 x) {
  const __m256 x3 = _mm256_mul_ps(_mm256_mul_ps(x, x), x);
  const __m256 u = _mm256_mul_ps(splat(kSqrt2OverPi), _mm256_fmadd_ps(splat(kGeluCubic), x3, x));
  return sigmoid8(_mm256_add_ps(u, u));
}

struct GeluTanh {
  static constexpr char forward_name[] = "fvmt_gelu_tanh_forward";
  static constexpr char backward_name[] = "fvmt_gelu_tanh_backward";
  FVMT_INLINE static __m256 value(__m256 x) { return _mm256_mul_ps(x, gelu_gate8(x)); }
  FVMT_INLINE static __m256 derivative(__m256 x) {
    // Beyond |x| = 20 the derivative is 0 or 1 to fp32 precision; the clamp keeps
    // x^2 finite there, where s (1 - s) is 0 and x (1 + 3a x^2) would overflow.
    x = _mm256_min_ps(splat(20.0f), _mm256_max_ps(splat(-20.0f), x));
    const __m256 s = gelu_gate8(x);
    const __m256 du_dx =
        _mm256_mul_ps(splat(kSqrt2OverPi), _mm256_fmadd_ps(splat(3.0f * kGeluCubic), _mm256_mul_ps(x, x), splat(1.0f)));
    const __m256 s_one_minus_s = _mm256_mul_ps(s, _mm256_sub_ps(splat(1.0f), s));
    return _mm256_fmadd_ps(_mm256_mul_ps(_mm256_add_ps(x, x), s_one_minus_s), du_dx, s);
  }
};

struct Silu {
  static constexpr char forward_name[] = "fvmt_silu_forward";
  static constexpr char backward_name[] = "fvmt_silu_backward";
  FVMT_INLINE static __m256 value(__m256 x) { return _mm256_mul_ps(x, sigmoid8(x)); }
  FVMT_INLINE static __m256 derivative(__m256 x) {
    const __m256 s = sigmoid8(x);
    return _mm256_mul_ps(s, _mm256_fmadd_ps(x, _mm256_sub_ps(splat(1.0f), s), splat(1.0f)));
  }
};

constexpr int64_t kLanes = 8;

template <typename Activation>
int32_t forward(const float *x, int64_t n, float *y) {
  const char *fn = Activation::forward_name;
  return cpu::run_guarded(fn, [&]() -> int32_t {
    if (int32_t s = check_elements(fn, n, {{"x", x}, {"y", y}})) return s;
    if (n == 0) return FVMT_OK;
    const int64_t full = n / kLanes * kLanes;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < full; i += kLanes) _mm256_storeu_ps(y + i, Activation::value(_mm256_loadu_ps(x + i)));
    if (full < n) {
      alignas(32) float lanes[kLanes] = {};
      for (int64_t i = full; i < n; ++i) lanes[i - full] = x[i];
      _mm256_store_ps(lanes, Activation::value(_mm256_load_ps(lanes)));
      for (int64_t i = full; i < n; ++i) y[i] = lanes[i - full];
    }
    return FVMT_OK;
  });
}

template <typename Activation>
int32_t backward(const float *x, const float *dy, int64_t n, float *dx) {
  const char *fn = Activation::backward_name;
  return cpu::run_guarded(fn, [&]() -> int32_t {
    if (int32_t s = check_elements(fn, n, {{"x", x}, {"dy", dy}, {"dx", dx}})) return s;
    if (n == 0) return FVMT_OK;
    const int64_t full = n / kLanes * kLanes;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < full; i += kLanes) {
      const __m256 slope = Activation::derivative(_mm256_loadu_ps(x + i));
      _mm256_storeu_ps(dx + i, _mm256_fmadd_ps(_mm256_loadu_ps(dy + i), slope, _mm256_loadu_ps(dx + i)));
    }
    if (full < n) {
      alignas(32) float x_lanes[kLanes] = {}, dy_lanes[kLanes] = {}, dx_lanes[kLanes] = {};
      for (int64_t i = full; i < n; ++i) {
        x_lanes[i - full] = x[i];
        dy_lanes[i - full] = dy[i];
        dx_lanes[i - full] = dx[i];
      }
      const __m256 slope = Activation::derivative(_mm256_load_ps(x_lanes));
      _mm256_store_ps(dx_lanes, _mm256_fmadd_ps(_mm256_load_ps(dy_lanes), slope, _mm256_load_ps(dx_lanes)));
      for (int64_t i = full; i < n; ++i) dx[i] = dx_lanes[i - full];
    }
    return FVMT_OK;
  });
}

}  // namespace

extern "C" FVMT_API int32_t fvmt_gelu_tanh_forward(const float *x, int64_t n, float *y, void *) {
  return forward<GeluTanh>(x, n, y);
}

extern "C" FVMT_API int32_t fvmt_gelu_tanh_backward(const float *x, const float *dy, int64_t n, float *dx, void *) {
  return backward<GeluTanh>(x, dy, n, dx);
}

extern "C" FVMT_API int32_t fvmt_silu_forward(const float *x, int64_t n, float *y, void *) {
  return forward<Silu>(x, n, y);
}

extern "C" FVMT_API int32_t fvmt_silu_backward(const float *x, const float *dy, int64_t n, float *dx, void *) {
  return backward<Silu>(x, dy, n, dx);
}
