// Corresponding-window loss, CPU.
//
// Forward:  L = (1 / P) sum_p w_p sum_{t < T, c < 2} (ref[p,t,c] - gen[p,t,c])^2
// Backward: d_delta_gen[p,t,c] += loss_grad * (-2 / P) * w_p * (ref - gen)
// delta_ref, delta_gen, d_delta_gen: fp32 [P, T, 2]; pair_weights: fp32 [P].
//
// The forward is a reduction: each pair's sum is taken in double by one task,
// in element order, and the pair sums are added in pair order, so the loss is
// the same for any thread count. The backward is element-wise.
#include <vector>

#include "boundary.hpp"
#include "validate.hpp"

using namespace fvmt;

namespace {

int32_t check_loss_arguments(const char *fn, const float *delta_ref, const float *delta_gen,
                             const float *pair_weights, int32_t pair_count, int32_t tokens_per_frame) {
  if (int32_t s = check_positive(fn, "pair_count", pair_count)) return s;
  if (int32_t s = check_positive(fn, "tokens_per_frame", tokens_per_frame)) return s;
  if (int32_t s = check_pointer(fn, "delta_ref", delta_ref)) return s;
  if (int32_t s = check_pointer(fn, "delta_gen", delta_gen)) return s;
  return check_pointer(fn, "pair_weights", pair_weights);
}

}  // namespace

extern "C" FVMT_API size_t fvmt_window_loss_workspace_bytes(int32_t, int32_t) { return 0; }

extern "C" FVMT_API int32_t fvmt_window_loss_forward(const float *delta_ref, const float *delta_gen,
                                                     const float *pair_weights, int32_t pair_count,
                                                     int32_t tokens_per_frame, float *loss, void *workspace,
                                                     size_t workspace_bytes, void *) {
  static constexpr char fn[] = "fvmt_window_loss_forward";
  return cpu::run_guarded(fn, [&]() -> int32_t {
    if (int32_t s = check_loss_arguments(fn, delta_ref, delta_gen, pair_weights, pair_count, tokens_per_frame))
      return s;
    if (int32_t s = check_pointer(fn, "loss", loss)) return s;
    if (int32_t s = check_workspace(fn, workspace, workspace_bytes, 0)) return s;
    const int64_t per_pair = 2 * int64_t{tokens_per_frame};
    std::vector<double> pair_sums(pair_count);
#pragma omp parallel for schedule(static)
    for (int p = 0; p < pair_count; ++p) {
      const float *ref = delta_ref + p * per_pair, *gen = delta_gen + p * per_pair;
      double sum = 0.0;
      for (int64_t e = 0; e < per_pair; ++e) {
        const double d = static_cast<double>(ref[e]) - gen[e];
        sum += d * d;
      }
      pair_sums[p] = sum;
    }
    double total = 0.0;
    for (int p = 0; p < pair_count; ++p) total += pair_weights[p] * pair_sums[p];
    *loss = static_cast<float>(total / pair_count);
    return FVMT_OK;
  });
}

extern "C" FVMT_API int32_t fvmt_window_loss_backward(const float *delta_ref, const float *delta_gen,
                                                      const float *pair_weights, int32_t pair_count,
                                                      int32_t tokens_per_frame, float loss_grad,
                                                      float *d_delta_gen, void *) {
  static constexpr char fn[] = "fvmt_window_loss_backward";
  return cpu::run_guarded(fn, [&]() -> int32_t {
    if (int32_t s = check_loss_arguments(fn, delta_ref, delta_gen, pair_weights, pair_count, tokens_per_frame))
      return s;
    if (int32_t s = check_pointer(fn, "d_delta_gen", d_delta_gen)) return s;
    const int64_t per_pair = 2 * int64_t{tokens_per_frame};
#pragma omp parallel for schedule(static)
    for (int p = 0; p < pair_count; ++p) {
      const float factor = static_cast<float>(static_cast<double>(loss_grad) * -2.0 / pair_count * pair_weights[p]);
      const float *ref = delta_ref + p * per_pair, *gen = delta_gen + p * per_pair;
      float *out = d_delta_gen + p * per_pair;
      for (int64_t e = 0; e < per_pair; ++e) out[e] += factor * (ref[e] - gen[e]);
    }
    return FVMT_OK;
  });
}
