// Gradient reuse + AdamW step, CPU: one fused element-wise pass (PyTorch's
// AdamW, amsgrad off), n fp32 elements:
//   if fresh_grad: grad_cache = fresh_grad;  g = grad_cache
//   param *= 1 - lr * weight_decay
//   exp_avg    = beta1 * exp_avg    + (1 - beta1) * g
//   exp_avg_sq = beta2 * exp_avg_sq + (1 - beta2) * g^2
//   param -= (lr / (1 - beta1^step)) * exp_avg / (sqrt(exp_avg_sq) / sqrt(1 - beta2^step) + eps)
// One read and one write of each array, vectorised by the compiler and split
// across threads; element-wise, so deterministic.
#include <cmath>

#include "boundary.hpp"
#include "validate.hpp"

using namespace fvmt;

namespace {

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

extern "C" FVMT_API int32_t fvmt_adamw_step(float *param, const float *fresh_grad, float *grad_cache,
                                            float *exp_avg, float *exp_avg_sq, int64_t n, float lr, float beta1,
                                            float beta2, float eps, float weight_decay, int32_t step, void *) {
  static constexpr char fn[] = "fvmt_adamw_step";
  return cpu::run_guarded(fn, [&]() -> int32_t {
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
    // The bias corrections in double, as PyTorch computes them on the host.
    const float step_size = static_cast<float>(lr / (1.0 - std::pow(static_cast<double>(beta1), step)));
    const float correction2_sqrt = static_cast<float>(std::sqrt(1.0 - std::pow(static_cast<double>(beta2), step)));
    const float decay = 1.0f - lr * weight_decay;
#pragma omp parallel for simd schedule(static)
    for (int64_t e = 0; e < n; ++e) {
      if (fresh_grad != nullptr) grad_cache[e] = fresh_grad[e];
      const float g = grad_cache[e];
      const float m = beta1 * exp_avg[e] + (1.0f - beta1) * g;
      const float v = beta2 * exp_avg_sq[e] + (1.0f - beta2) * g * g;
      exp_avg[e] = m;
      exp_avg_sq[e] = v;
      param[e] = param[e] * decay - step_size * m / (std::sqrt(v) / correction2_sqrt + eps);
    }
    return FVMT_OK;
  });
}
