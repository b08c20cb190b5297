// Sinusoidal timestep embedding (Wan's sinusoidal_embedding_1d), CPU, and its
// derivative with respect to t (fastvmt.h, "DiT ops"): half = dim / 2,
// w_m = 10000^(-m / half), for m < half:
//   out[i, m] = cos(t_i w_m),   out[i, half + m] = sin(t_i w_m)
//   dt_i += sum_m -d_out[i, m] w_m sin(t_i w_m) + d_out[i, half + m] w_m cos(t_i w_m)
// Angles, cos/sin and the sum in double, as Wan computes them: t reaches 1000
// and w_0 = 1, so fp32 angles would lose three digits. A few rows of a few
// hundred values: no threads.
#include <cmath>

#include "boundary.hpp"
#include "dit_checks.hpp"
#include "dit_formulas.hpp"

using namespace fvmt;

extern "C" FVMT_API int32_t fvmt_timestep_embedding_forward(const float *t, int32_t count, int32_t dim, float *out,
                                                            void *) {
  static constexpr char fn[] = "fvmt_timestep_embedding_forward";
  return cpu::run_guarded(fn, [&]() -> int32_t {
    if (int32_t s = check_embedding(fn, t, count, dim)) return s;
    if (int32_t s = check_pointer(fn, "out", out)) return s;
    const int32_t half = dim / 2;
    for (int32_t i = 0; i < count; ++i) {
      float *row = out + static_cast<int64_t>(i) * dim;
      for (int32_t m = 0; m < half; ++m) {
        const double angle = static_cast<double>(t[i]) * timestep_frequency(m, half);
        row[m] = static_cast<float>(std::cos(angle));
        row[half + m] = static_cast<float>(std::sin(angle));
      }
    }
    return FVMT_OK;
  });
}

extern "C" FVMT_API int32_t fvmt_timestep_embedding_backward(const float *t, int32_t count, int32_t dim,
                                                             const float *d_out, float *dt, void *) {
  static constexpr char fn[] = "fvmt_timestep_embedding_backward";
  return cpu::run_guarded(fn, [&]() -> int32_t {
    if (int32_t s = check_embedding(fn, t, count, dim)) return s;
    if (int32_t s = check_pointer(fn, "d_out", d_out)) return s;
    if (int32_t s = check_pointer(fn, "dt", dt)) return s;
    const int32_t half = dim / 2;
    for (int32_t i = 0; i < count; ++i) {
      const float *d_row = d_out + static_cast<int64_t>(i) * dim;
      double sum = 0.0;
      for (int32_t m = 0; m < half; ++m) {
        const double w = timestep_frequency(m, half);
        const double angle = static_cast<double>(t[i]) * w;
        sum += -d_row[m] * w * std::sin(angle) + d_row[half + m] * w * std::cos(angle);
      }
      dt[i] += static_cast<float>(sum);
    }
    return FVMT_OK;
  });
}
