// Gradient reuse + AdamW step on the latents, one fused elementwise pass (fastvmt.h):
//     if fresh_grad: grad_cache = fresh_grad;   g = grad_cache
//     param *= 1 - lr * weight_decay
//     m = beta1 * m + (1 - beta1) * g;   v = beta2 * v + (1 - beta2) * g^2
//     param -= (lr / (1 - beta1^step)) * m / (sqrt(v) / sqrt(1 - beta2^step) + eps)
// All arrays fp32 [n]. The scalar factors are formed on the host in double, as PyTorch's
// AdamW does with Python floats, and applied in fp32. A reused step reads the cache that a
// fresh step wrote, so both compute the same update bit for bit. Memory-bound: each element
// is read and written once (a grid-stride loop, coalesced).
#include <cmath>

#include "entry.cuh"

namespace fvmt {
namespace {

constexpr int kBlock = 256;
constexpr int64_t kMaxBlocks = 4096;  // the grid-stride loop covers the rest
constexpr int kMinBlocks = 4;         // lets ptxas use 64 registers (it spills at its default of 32 on sm_90)

__global__ void __launch_bounds__(kBlock, kMinBlocks)
    adamw_kernel(float *__restrict__ param, const float *__restrict__ fresh_grad, float *__restrict__ grad_cache,
                 float *__restrict__ exp_avg, float *__restrict__ exp_avg_sq, int64_t n, float beta1, float beta2,
                 float eps, float decay, float step_size, float bias2_sqrt) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * kBlock;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * kBlock + threadIdx.x; e < n; e += stride) {
    float g;
    if (fresh_grad != nullptr) {
      g = fresh_grad[e];
      grad_cache[e] = g;
    } else {
      g = grad_cache[e];
    }
    const float m = beta1 * exp_avg[e] + (1.0f - beta1) * g;
    const float v = beta2 * exp_avg_sq[e] + (1.0f - beta2) * g * g;
    exp_avg[e] = m;
    exp_avg_sq[e] = v;
    param[e] = param[e] * decay - step_size * m / (sqrtf(v) / bias2_sqrt + eps);
  }
}

// A hyperparameter in its interval (the cpu build's checks and sentence).
int32_t check_hyperparameter(const char *fn, const char *name, float value, float low, bool low_inclusive,
                             float high, bool high_inclusive) {
  const bool above = low_inclusive ? value >= low : value > low;
  const bool below = high_inclusive ? value <= high : value < high;
  if (std::isfinite(value) && above && below) return FVMT_OK;
  return fail(FVMT_ERR_INVALID_ARGUMENT, "%s: %s must be finite and in %c%g, %g%c, got %g", fn, name,
              low_inclusive ? '[' : '(', static_cast<double>(low), static_cast<double>(high),
              high_inclusive ? ']' : ')', static_cast<double>(value));
}

}  // namespace
}  // namespace fvmt

using namespace fvmt;

extern "C" FVMT_API int32_t fvmt_adamw_step(float *param, const float *fresh_grad, float *grad_cache,
                                            float *exp_avg, float *exp_avg_sq, int64_t n, float lr, float beta1,
                                            float beta2, float eps, float weight_decay, int32_t step,
                                            void *stream) {
  static const char fn[] = "fvmt_adamw_step";
  return guarded(fn, [&]() -> int32_t {
    if (n < 0)
      return fail(FVMT_ERR_INVALID_ARGUMENT, "%s: n must not be negative, got %lld", fn, static_cast<long long>(n));
    if (int32_t s = check_pointer(fn, "param", param)) return s;
    if (int32_t s = check_pointer(fn, "grad_cache", grad_cache)) return s;
    if (int32_t s = check_pointer(fn, "exp_avg", exp_avg)) return s;
    if (int32_t s = check_pointer(fn, "exp_avg_sq", exp_avg_sq)) return s;
    if (int32_t s = check_positive(fn, "step", step)) return s;
    const float huge = 3.0e38f;
    if (int32_t s = check_hyperparameter(fn, "lr", lr, 0.0f, true, huge, true)) return s;
    if (int32_t s = check_hyperparameter(fn, "beta1", beta1, 0.0f, true, 1.0f, false)) return s;
    if (int32_t s = check_hyperparameter(fn, "beta2", beta2, 0.0f, true, 1.0f, false)) return s;
    if (int32_t s = check_hyperparameter(fn, "eps", eps, 0.0f, false, huge, true)) return s;
    if (int32_t s = check_hyperparameter(fn, "weight_decay", weight_decay, 0.0f, true, huge, true)) return s;
    if (n == 0) return FVMT_OK;
    const double bias1 = 1.0 - std::pow(static_cast<double>(beta1), step);
    const double bias2 = 1.0 - std::pow(static_cast<double>(beta2), step);
    const float decay = static_cast<float>(1.0 - static_cast<double>(lr) * weight_decay);
    const float step_size = static_cast<float>(lr / bias1);
    const float bias2_sqrt = static_cast<float>(std::sqrt(bias2));
    const int64_t blocks = (n + kBlock - 1) / kBlock;
    const unsigned grid = static_cast<unsigned>(blocks < kMaxBlocks ? blocks : kMaxBlocks);
    FVMT_LAUNCH(grid, kBlock, 0, as_stream(stream), adamw_kernel)
    (param, fresh_grad, grad_cache, exp_avg, exp_avg_sq, n, beta1, beta2, eps, decay, step_size, bias2_sqrt);
    return check_launch(fn, "adamw_kernel");
  });
}
