// GELU (tanh approximation) and SiLU, element-wise over n fp32 values, CUDA, with their
// backward (fastvmt.h, "DiT ops"):
//   gelu_tanh(x) = 0.5 x (1 + tanh(u)),  u = sqrt(2/pi) (x + 0.044715 x^3)
//                = x sigmoid(2u)                    (0.5 (1 + tanh u) = sigmoid(2u))
//   gelu_tanh'(x) = s + 2 x s (1 - s) sqrt(2/pi) (1 + 3 0.044715 x^2),  s = sigmoid(2u)
//   silu(x) = x sigmoid(x),   silu'(x) = s (1 + x (1 - s)),  s = sigmoid(x)
//   forward y = f(x) (written; y may equal x), backward dx += dy f'(x).
// The sigmoid form, as in the cpu build, is also the more accurate one: 1 + tanh(u) cancels
// for x << 0. expf is the accurate one (2 ulp), not __expf.
// Memory-bound: a grid-stride loop over float4 groups (16-byte loads and stores, coalesced)
// when the arrays are 16-byte aligned, then the n % 4 tail, one element per thread. Each
// element is read and written by one thread, so y == x is safe.
#include "entry.cuh"
#include "dit_checks.hpp"
#include "dit_formulas.hpp"

namespace fvmt {
namespace {

constexpr int kBlock = 256;
constexpr int64_t kMaxBlocks = 4096;  // the grid-stride loops cover the rest

__device__ __forceinline__ float sigmoid(float v) { return 1.0f / (1.0f + expf(-v)); }

// sigmoid(2u) = 0.5 (1 + tanh(u)) of GELU-tanh.
__device__ __forceinline__ float gelu_gate(float x) {
  const float u = kSqrt2OverPi * fmaf(kGeluCubic, x * x * x, x);
  return sigmoid(u + u);
}

struct GeluTanh {
  static constexpr char forward_name[] = "fvmt_gelu_tanh_forward";
  static constexpr char backward_name[] = "fvmt_gelu_tanh_backward";
  __device__ static float value(float x) { return x * gelu_gate(x); }
  __device__ static float derivative(float x) {
    // Beyond |x| = 20 the derivative is 0 or 1 to fp32 precision; the clamp keeps x^2 finite
    // there. Written with comparisons so that a NaN stays NaN (fminf would turn it into 20).
    x = x < -20.0f ? -20.0f : (x > 20.0f ? 20.0f : x);
    const float s = gelu_gate(x);
    const float du_dx = kSqrt2OverPi * fmaf(3.0f * kGeluCubic, x * x, 1.0f);
    return fmaf((x + x) * (s * (1.0f - s)), du_dx, s);
  }
};

struct Silu {
  static constexpr char forward_name[] = "fvmt_silu_forward";
  static constexpr char backward_name[] = "fvmt_silu_backward";
  __device__ static float value(float x) { return x * sigmoid(x); }
  __device__ static float derivative(float x) {
    const float s = sigmoid(x);
    return s * fmaf(x, 1.0f - s, 1.0f);
  }
};

template <class Activation, bool kVector>
__global__ void __launch_bounds__(kBlock) activation_forward_kernel(const float *x, int64_t n, float *y) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * kBlock;
  const int64_t first = static_cast<int64_t>(blockIdx.x) * kBlock + threadIdx.x;
  int64_t done = 0;
  if constexpr (kVector) {
    const int64_t groups = n / 4;
    for (int64_t g = first; g < groups; g += stride) {
      const float4 v = reinterpret_cast<const float4 *>(x)[g];
      reinterpret_cast<float4 *>(y)[g] = make_float4(Activation::value(v.x), Activation::value(v.y),
                                                     Activation::value(v.z), Activation::value(v.w));
    }
    done = groups * 4;
  }
  for (int64_t e = done + first; e < n; e += stride) y[e] = Activation::value(x[e]);
}

template <class Activation, bool kVector>
__global__ void __launch_bounds__(kBlock)
    activation_backward_kernel(const float *__restrict__ x, const float *__restrict__ dy, int64_t n,
                               float *__restrict__ dx) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * kBlock;
  const int64_t first = static_cast<int64_t>(blockIdx.x) * kBlock + threadIdx.x;
  int64_t done = 0;
  if constexpr (kVector) {
    const int64_t groups = n / 4;
    for (int64_t g = first; g < groups; g += stride) {
      const float4 v = reinterpret_cast<const float4 *>(x)[g];
      const float4 d = reinterpret_cast<const float4 *>(dy)[g];
      float4 a = reinterpret_cast<float4 *>(dx)[g];
      a.x = fmaf(d.x, Activation::derivative(v.x), a.x);
      a.y = fmaf(d.y, Activation::derivative(v.y), a.y);
      a.z = fmaf(d.z, Activation::derivative(v.z), a.z);
      a.w = fmaf(d.w, Activation::derivative(v.w), a.w);
      reinterpret_cast<float4 *>(dx)[g] = a;
    }
    done = groups * 4;
  }
  for (int64_t e = done + first; e < n; e += stride) dx[e] = fmaf(dy[e], Activation::derivative(x[e]), dx[e]);
}

template <class Activation>
int32_t forward(const float *x, int64_t n, float *y, void *stream) {
  const char *fn = Activation::forward_name;
  return guarded(fn, [&]() -> int32_t {
    if (int32_t s = check_elements(fn, n, {{"x", x}, {"y", y}})) return s;
    if (n == 0) return FVMT_OK;
    const bool vector = aligned16(x) && aligned16(y);
    const unsigned grid = stride_grid(vector ? (n + 3) / 4 : n, kBlock, kMaxBlocks);
    if (vector) {
      FVMT_LAUNCH(grid, kBlock, 0, as_stream(stream), activation_forward_kernel<Activation, true>)(x, n, y);
    } else {
      FVMT_LAUNCH(grid, kBlock, 0, as_stream(stream), activation_forward_kernel<Activation, false>)(x, n, y);
    }
    return check_launch(fn, "activation_forward_kernel");
  });
}

template <class Activation>
int32_t backward(const float *x, const float *dy, int64_t n, float *dx, void *stream) {
  const char *fn = Activation::backward_name;
  return guarded(fn, [&]() -> int32_t {
    if (int32_t s = check_elements(fn, n, {{"x", x}, {"dy", dy}, {"dx", dx}})) return s;
    if (n == 0) return FVMT_OK;
    const bool vector = aligned16(x) && aligned16(dy) && aligned16(dx);
    const unsigned grid = stride_grid(vector ? (n + 3) / 4 : n, kBlock, kMaxBlocks);
    if (vector) {
      FVMT_LAUNCH(grid, kBlock, 0, as_stream(stream), activation_backward_kernel<Activation, true>)(x, dy, n, dx);
    } else {
      FVMT_LAUNCH(grid, kBlock, 0, as_stream(stream), activation_backward_kernel<Activation, false>)(x, dy, n, dx);
    }
    return check_launch(fn, "activation_backward_kernel");
  });
}

}  // namespace
}  // namespace fvmt

using namespace fvmt;

extern "C" FVMT_API int32_t fvmt_gelu_tanh_forward(const float *x, int64_t n, float *y, void *stream) {
  return forward<GeluTanh>(x, n, y, stream);
}

extern "C" FVMT_API int32_t fvmt_gelu_tanh_backward(const float *x, const float *dy, int64_t n, float *dx,
                                                    void *stream) {
  return backward<GeluTanh>(x, dy, n, dx, stream);
}

extern "C" FVMT_API int32_t fvmt_silu_forward(const float *x, int64_t n, float *y, void *stream) {
  return forward<Silu>(x, n, y, stream);
}

extern "C" FVMT_API int32_t fvmt_silu_backward(const float *x, const float *dy, int64_t n, float *dx,
                                               void *stream) {
  return backward<Silu>(x, dy, n, dx, stream);
}
