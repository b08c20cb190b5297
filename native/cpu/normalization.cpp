// LayerNorm and RMSNorm over each row of a [rows, cols] fp32 matrix, CPU, with
// their backward (fastvmt.h, "DiT ops").
//
//   LayerNorm: y = (x - mean) rstd gamma + beta,  rstd = 1 / sqrt(var + eps), var biased
//   RMSNorm:   y = x rrms weight,                 rrms = 1 / sqrt(mean(x^2) + eps)
// Backward, with g = dy gamma (or dy weight, or dy) and xhat = (x - mean) rstd:
//   LayerNorm: dx += rstd (g - mean_c(g) - xhat mean_c(g xhat)),
//              dgamma += sum_r dy xhat,  dbeta += sum_r dy
//   RMSNorm:   dx += rrms (g - x rrms^2 mean_c(g x)),  dweight += sum_r dy x rrms
//
// Row statistics: two passes (the mean, then the squared deviations from it),
// fp32 terms summed in DOUBLE, four AVX2 accumulators per sum so the adds
// pipeline, lanes added in a fixed order. The backward recomputes them from x,
// so nothing is kept between forward and backward.
// Why it is fast: the norms are memory-bound, and a row (6 KiB at Wan's 1536)
// stays in L1 across the 2-4 passes it needs, so x, dy and dx travel between
// memory and the core once. The reductions are written with intrinsics: the
// compiler kept its vectorised double accumulators in memory (a store-load chain
// per add), and the forward ran 1.4x slower. The backward adds the row's terms of the column
// sums (dgamma, dbeta, dweight) in its last pass, per fixed chunk of rows
// (column_reduction.hpp), so it too reads each row once.
#include <immintrin.h>

#include <array>
#include <cmath>

#include "boundary.hpp"
#include "column_reduction.hpp"
#include "dit_checks.hpp"

using namespace fvmt;

namespace {

#define FVMT_INLINE [[gnu::always_inline]] inline

// The 8 columns c..c+7 of a row: all eight (FullLanes), or the first `valid` of
// the row's tail (TailLanes: the others load as 0 and their terms are dropped).
struct FullLanes {
  int32_t c;
  FVMT_INLINE __m256 operator()(const float *row) const { return _mm256_loadu_ps(row + c); }
  FVMT_INLINE __m256 keep(__m256 terms) const { return terms; }
};

struct TailLanes {
  int32_t c;
  __m256i mask;
  TailLanes(int32_t column, int32_t valid)
      : c(column), mask(_mm256_cmpgt_epi32(_mm256_set1_epi32(valid), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))) {}
  FVMT_INLINE __m256 operator()(const float *row) const { return _mm256_maskload_ps(row + c, mask); }
  FVMT_INLINE __m256 keep(__m256 terms) const { return _mm256_and_ps(terms, _mm256_castsi256_ps(mask)); }
};

// Adds 8 fp32 terms, widened to double, into two accumulators of 4 lanes.
FVMT_INLINE void accumulate(__m256 terms, __m256d &low, __m256d &high) {
  low = _mm256_add_pd(low, _mm256_cvtps_pd(_mm256_castps256_ps128(terms)));
  high = _mm256_add_pd(high, _mm256_cvtps_pd(_mm256_extractf128_ps(terms, 1)));
}

// kSums vectors of 8 fp32 terms (std::array would drop __m256's alignment attribute).
template <int kSums>
struct Terms {
  __m256 lanes[kSums];
};

// Row sums in double of kSums streams of fp32 terms: terms(lanes) returns the
// Terms<kSums> at the columns `lanes` names. Sixteen columns per step into four
// accumulators per sum (the adds pipeline instead of waiting on each other);
// the lanes are added in a fixed order: deterministic.
template <int kSums, typename TermsOf>
FVMT_INLINE std::array<double, kSums> row_sums(int32_t cols, TermsOf terms) {
  __m256d acc[kSums][4];
  for (auto &sum : acc)
    for (auto &lanes : sum) lanes = _mm256_setzero_pd();
  int32_t c = 0;
  for (; c + 16 <= cols; c += 16) {
    const Terms<kSums> first = terms(FullLanes{c}), second = terms(FullLanes{c + 8});
    for (int k = 0; k < kSums; ++k) {
      accumulate(first.lanes[k], acc[k][0], acc[k][1]);
      accumulate(second.lanes[k], acc[k][2], acc[k][3]);
    }
  }
  if (c + 8 <= cols) {
    const Terms<kSums> t = terms(FullLanes{c});
    for (int k = 0; k < kSums; ++k) accumulate(t.lanes[k], acc[k][0], acc[k][1]);
    c += 8;
  }
  if (c < cols) {
    const TailLanes tail(c, cols - c);
    const Terms<kSums> t = terms(tail);
    for (int k = 0; k < kSums; ++k) accumulate(tail.keep(t.lanes[k]), acc[k][2], acc[k][3]);
  }
  std::array<double, kSums> totals;
  for (int k = 0; k < kSums; ++k) {
    alignas(32) double lane[4];
    _mm256_store_pd(lane, _mm256_add_pd(_mm256_add_pd(acc[k][0], acc[k][1]), _mm256_add_pd(acc[k][2], acc[k][3])));
    totals[k] = (lane[0] + lane[1]) + (lane[2] + lane[3]);
  }
  return totals;
}

FVMT_INLINE __m256 splat(float v) { return _mm256_set1_ps(v); }

// The row mean as an unevaluated sum of two floats, mean = high + low: x - high
// is exact for x near the mean, so (x - high) - low keeps the digits a single
// fp32 mean loses when |mean| >> std (a mean of 1000 would cost 3e-5 / std).
struct RowMoments {
  float mean_high;
  float mean_low;
  float rstd;

  float centred(float x) const { return (x - mean_high) - mean_low; }
  __m256 centred(__m256 x) const {
    return _mm256_sub_ps(_mm256_sub_ps(x, _mm256_set1_ps(mean_high)), _mm256_set1_ps(mean_low));
  }
};

// Two passes: the mean, then the squared deviations from it (fp32 terms, double sums).
RowMoments layer_norm_moments(const float *xr, int32_t cols, float eps) {
  const double mean = row_sums<1>(cols, [&](auto lanes) { return Terms<1>{{lanes(xr)}}; })[0] / cols;
  RowMoments m;
  m.mean_high = static_cast<float>(mean);
  m.mean_low = static_cast<float>(mean - m.mean_high);
  const double squares = row_sums<1>(cols, [&](auto lanes) {
    const __m256 d = m.centred(lanes(xr));
    return Terms<1>{{_mm256_mul_ps(d, d)}};
  })[0];
  m.rstd = static_cast<float>(1.0 / std::sqrt(squares / cols + eps));
  return m;
}

// One row of the LayerNorm backward, after its statistics are known.
struct LayerNormRowGradient {
  const float *xr;
  const float *dyr;
  const float *gamma;  // NULL: no affine
  RowMoments m;
  float mean_g;       // mean_c(g), g = dy gamma
  float mean_g_xhat;  // mean_c(g xhat)

  float xhat(int32_t c) const { return m.centred(xr[c]) * m.rstd; }
  float g(int32_t c) const { return gamma != nullptr ? dyr[c] * gamma[c] : dyr[c]; }

  // The last pass: dx += rstd (g - mean_g - xhat mean_g_xhat), and the row's
  // terms of dgamma (dy xhat) and dbeta (dy), fused so the row is read once more.
  template <bool kDx, bool kColumnSums>
  void last_pass(int32_t cols, float *dxr, float *gamma_sum, float *beta_sum) const {
#pragma omp simd
    for (int32_t c = 0; c < cols; ++c) {
      const float xh = xhat(c);
      if constexpr (kDx) dxr[c] += m.rstd * (g(c) - mean_g - xh * mean_g_xhat);
      if constexpr (kColumnSums) {
        gamma_sum[c] += dyr[c] * xh;
        beta_sum[c] += dyr[c];
      }
    }
  }
};

float reciprocal_rms(const float *xr, int32_t cols, float eps) {
  const double squares = row_sums<1>(cols, [&](auto lanes) {
    const __m256 v = lanes(xr);
    return Terms<1>{{_mm256_mul_ps(v, v)}};
  })[0];
  return static_cast<float>(1.0 / std::sqrt(squares / cols + eps));
}

}  // namespace

extern "C" FVMT_API int32_t fvmt_layer_norm_forward(const float *x, const float *gamma, const float *beta,
                                                    int64_t rows, int32_t cols, float eps, float *y, void *) {
  static constexpr char fn[] = "fvmt_layer_norm_forward";
  return cpu::run_guarded(fn, [&]() -> int32_t {
    if (int32_t s = check_layer_norm_forward(fn, x, gamma, beta, rows, cols, eps, y)) return s;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const float *xr = x + r * cols;
      float *yr = y + r * cols;
      const RowMoments m = layer_norm_moments(xr, cols, eps);
      if (gamma != nullptr) {
#pragma omp simd
        for (int32_t c = 0; c < cols; ++c) yr[c] = m.centred(xr[c]) * m.rstd * gamma[c] + beta[c];
      } else {
#pragma omp simd
        for (int32_t c = 0; c < cols; ++c) yr[c] = m.centred(xr[c]) * m.rstd;
      }
    }
    return FVMT_OK;
  });
}

extern "C" FVMT_API int32_t fvmt_layer_norm_backward(const float *x, const float *gamma, const float *dy,
                                                     int64_t rows, int32_t cols, float eps, float *dx,
                                                     float *dgamma, float *dbeta, void *workspace,
                                                     size_t workspace_bytes, void *) {
  static constexpr char fn[] = "fvmt_layer_norm_backward";
  return cpu::run_guarded(fn, [&]() -> int32_t {
    if (int32_t s = check_layer_norm_backward(fn, x, gamma, dy, rows, cols, eps, dgamma, dbeta, workspace,
                                              workspace_bytes, cpu::column_reduction_bytes(rows, cols)))
      return s;
    const bool column_sums = dgamma != nullptr || dbeta != nullptr;
    if (dx == nullptr && !column_sums) return FVMT_OK;
    cpu::ColumnPartials partials(workspace, rows, cols);
#pragma omp parallel for schedule(static)
    for (int64_t chunk = 0; chunk < partials.chunks(); ++chunk) {
      // Both partial rows whenever one is wanted: they share the pass.
      auto *gamma_sum = column_sums ? partials.start(0, chunk) : nullptr;
      auto *beta_sum = column_sums ? partials.start(1, chunk) : nullptr;
      for (int64_t r = partials.chunk_begin(chunk); r < partials.chunk_end(chunk); ++r) {
        const float *xr = x + r * cols;
        const float *dyr = dy + r * cols;
        const RowMoments m = layer_norm_moments(xr, cols, eps);
        LayerNormRowGradient row{xr, dyr, gamma, m, 0.0f, 0.0f};
        if (dx != nullptr) {
          const __m256 rstd8 = splat(m.rstd);
          const std::array<double, 2> sums = row_sums<2>(cols, [&](auto lanes) {
            const __m256 g = gamma != nullptr ? _mm256_mul_ps(lanes(dyr), lanes(gamma)) : lanes(dyr);
            const __m256 xhat = _mm256_mul_ps(m.centred(lanes(xr)), rstd8);
            return Terms<2>{{g, _mm256_mul_ps(g, xhat)}};
          });
          row.mean_g = static_cast<float>(sums[0] / cols);
          row.mean_g_xhat = static_cast<float>(sums[1] / cols);
          if (column_sums)
            row.last_pass<true, true>(cols, dx + r * cols, gamma_sum, beta_sum);
          else
            row.last_pass<true, false>(cols, dx + r * cols, gamma_sum, beta_sum);
        } else {
          row.last_pass<false, true>(cols, nullptr, gamma_sum, beta_sum);
        }
      }
    }
    if (dgamma != nullptr) partials.finish(0, dgamma);
    if (dbeta != nullptr) partials.finish(1, dbeta);
    return FVMT_OK;
  });
}

extern "C" FVMT_API int32_t fvmt_rms_norm_forward(const float *x, const float *weight, int64_t rows, int32_t cols,
                                                  float eps, float *y, void *) {
  static constexpr char fn[] = "fvmt_rms_norm_forward";
  return cpu::run_guarded(fn, [&]() -> int32_t {
    if (int32_t s = check_rms_norm_forward(fn, x, rows, cols, eps, y)) return s;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const float *xr = x + r * cols;
      float *yr = y + r * cols;
      const float rrms = reciprocal_rms(xr, cols, eps);
      if (weight != nullptr) {
#pragma omp simd
        for (int32_t c = 0; c < cols; ++c) yr[c] = xr[c] * rrms * weight[c];
      } else {
#pragma omp simd
        for (int32_t c = 0; c < cols; ++c) yr[c] = xr[c] * rrms;
      }
    }
    return FVMT_OK;
  });
}

extern "C" FVMT_API int32_t fvmt_rms_norm_backward(const float *x, const float *weight, const float *dy,
                                                   int64_t rows, int32_t cols, float eps, float *dx, float *dweight,
                                                   void *workspace, size_t workspace_bytes, void *) {
  static constexpr char fn[] = "fvmt_rms_norm_backward";
  return cpu::run_guarded(fn, [&]() -> int32_t {
    if (int32_t s = check_rms_norm_backward(fn, x, weight, dy, rows, cols, eps, dweight, workspace, workspace_bytes,
                                            cpu::column_reduction_bytes(rows, cols)))
      return s;
    if (dx == nullptr && dweight == nullptr) return FVMT_OK;
    cpu::ColumnPartials partials(workspace, rows, cols);
#pragma omp parallel for schedule(static)
    for (int64_t chunk = 0; chunk < partials.chunks(); ++chunk) {
      auto *weight_sum = dweight != nullptr ? partials.start(0, chunk) : nullptr;
      for (int64_t r = partials.chunk_begin(chunk); r < partials.chunk_end(chunk); ++r) {
        const float *xr = x + r * cols;
        const float *dyr = dy + r * cols;
        const float rrms = reciprocal_rms(xr, cols, eps);
        if (dx != nullptr) {
          float *dxr = dx + r * cols;
          auto g = [&](int32_t c) { return weight != nullptr ? dyr[c] * weight[c] : dyr[c]; };
          const double sum_g_x = row_sums<1>(cols, [&](auto lanes) {
            const __m256 g8 = weight != nullptr ? _mm256_mul_ps(lanes(dyr), lanes(weight)) : lanes(dyr);
            return Terms<1>{{_mm256_mul_ps(g8, lanes(xr))}};
          })[0];
          const float correction = rrms * rrms * static_cast<float>(sum_g_x / cols);
          if (weight_sum != nullptr) {
#pragma omp simd
            for (int32_t c = 0; c < cols; ++c) {
              dxr[c] += rrms * (g(c) - xr[c] * correction);
              weight_sum[c] += dyr[c] * (xr[c] * rrms);
            }
          } else {
#pragma omp simd
            for (int32_t c = 0; c < cols; ++c) dxr[c] += rrms * (g(c) - xr[c] * correction);
          }
        } else {
#pragma omp simd
          for (int32_t c = 0; c < cols; ++c) weight_sum[c] += dyr[c] * (xr[c] * rrms);
        }
      }
    }
    if (dweight != nullptr) partials.finish(0, dweight);
    return FVMT_OK;
  });
}
