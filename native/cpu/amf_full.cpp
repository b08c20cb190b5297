// Full attention motion flow (DiTFlow's AMF), CPU.
//
// For each pair (i, j) and each token p = (r, c) of frame i:
//   P(q)  = softmax over all H*W tokens q of frame j of scale * Q_i[p] . K_j[q],
//           scale = temperature / (heads * sqrt(C / heads))
//   delta = sum_q P(q) (row(q), col(q)) - (r, c)          -> delta[pair, r, c, 0..1]
// Q, K: [F, H, W, C] fp32. Backward: dS = scale P (g . (pos - E)), g = dL/d delta,
// dQ_i += dS K_j, dK_j += dS^T Q_i, accumulated into dq and dk.
//
// Why it is fast: the frame's queries go in blocks of 12 (attention_kernels.hpp):
// the scores of a block against all keys of frame j are one register-blocked
// NT product (12 x H*W, never the whole (H*W)^2 matrix), and the softmax and the
// expected position are fused into a pass over that 12 x H*W strip while it is
// in L2. Blocks are independent, so the forward is one parallel loop over
// (pair, block). The backward runs pair after pair through PairBackward
// (attention.hpp), each step parallel and owner-computes, hence deterministic.
#include <vector>

#include "attention.hpp"
#include "fastvmt.h"
#include "validate.hpp"

using namespace fvmt;
using namespace fvmt::cpu;

extern "C" FVMT_API size_t fvmt_amf_full_workspace_bytes(int32_t, int32_t, int32_t, int32_t, int32_t) {
  return 0;
}

extern "C" FVMT_API int32_t fvmt_amf_full_forward(const void *q, const void *k, int32_t dtype, int32_t frames,
                                                  int32_t height, int32_t width, int32_t channels, int32_t heads,
                                                  float temperature, const int32_t *pairs, int32_t pair_count,
                                                  float *delta, void *workspace, size_t workspace_bytes,
                                                  void *) {
  static constexpr char fn[] = "fvmt_amf_full_forward";
  return run_guarded(fn, [&]() -> int32_t {
    if (int32_t s = check_amf_arguments(fn, q, k, dtype, frames, height, width, channels, heads, temperature,
                                        pairs, pair_count, workspace, workspace_bytes))
      return s;
    if (int32_t s = check_pointer(fn, "delta", delta)) return s;
    const AmfProblem problem{static_cast<const float *>(q), static_cast<const float *>(k), frames, height, width,
                             channels, score_scale(channels, heads, temperature)};
    std::vector<Block> blocks;
    full_blocks(height, width, blocks);
    std::vector<Job> jobs;
    jobs.reserve(static_cast<size_t>(pair_count) * blocks.size());
    for (int p = 0; p < pair_count; ++p)
      for (const Block &block : blocks) jobs.push_back({p, pairs[2 * p], pairs[2 * p + 1], block});
    const int64_t tokens = problem.tokens();
    block_expectations(problem, jobs, problem.tokens(), [&](const Job &job, const float *expected) {
      for (int n = 0; n < job.block.count; ++n) {
        const int token = job.block.tokens[n];
        float *out = delta + 2 * (job.pair * tokens + token);
        out[0] = expected[2 * n] - static_cast<float>(token / width);
        out[1] = expected[2 * n + 1] - static_cast<float>(token % width);
      }
    });
    return FVMT_OK;
  });
}

extern "C" FVMT_API int32_t fvmt_amf_full_backward(const void *q, const void *k, int32_t dtype, int32_t frames,
                                                   int32_t height, int32_t width, int32_t channels, int32_t heads,
                                                   float temperature, const int32_t *pairs, int32_t pair_count,
                                                   const float *d_delta, float *dq, float *dk, void *workspace,
                                                   size_t workspace_bytes, void *) {
  static constexpr char fn[] = "fvmt_amf_full_backward";
  return run_guarded(fn, [&]() -> int32_t {
    if (int32_t s = check_amf_arguments(fn, q, k, dtype, frames, height, width, channels, heads, temperature,
                                        pairs, pair_count, workspace, workspace_bytes))
      return s;
    const AmfProblem problem{static_cast<const float *>(q), static_cast<const float *>(k), frames, height, width,
                             channels, score_scale(channels, heads, temperature)};
    const int64_t tokens = problem.tokens();
    if (int32_t s = check_gradient_outputs(fn, d_delta, dq, dk, frames * tokens * channels)) return s;
    std::vector<Block> blocks;
    full_blocks(height, width, blocks);
    PairBackward backward(problem, dq, dk);
    for (int p = 0; p < pair_count; ++p)
      backward.add_pair(pairs[2 * p], pairs[2 * p + 1], blocks, true, d_delta + 2 * p * tokens);
    return FVMT_OK;
  });
}
