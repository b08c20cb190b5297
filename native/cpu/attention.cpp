// The attention engine shared by the full and the windowed AMF (see attention.hpp).
#include "attention.hpp"

#include "validate.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>

namespace fvmt::cpu {
namespace {

// dS of one pair is kept whole when it fits this many floats (32 MB; a
// production full pair needs 1560 x 1561 x 12 / 12 ~ 2.4 M); larger pairs
// are cut into slabs of consecutive blocks, so memory stays bounded.
constexpr int64_t kScoreBudget = int64_t{8} << 20;
// Work per task of the backward's parallel loops: enough tasks for 2+ threads,
// few enough that the operands of a task stay in L2.
constexpr int kBlocksPerQueryTask = 4;  // dQ: a 16-channel K panel (100 KB) serves 4 blocks
constexpr int kKeysPerKeyTask = 48;     // dK, whole frames: 8 register groups of 6 keys
constexpr int kPanelsPerRowTask = 8;    // dK, windows: one frame row x 128 channels

// keys[n], rows[n], cols[n] of key n = a * cols + b of the window.
void list_keys(const Window &w, int width, int32_t *keys, float *rows, float *cols) {
  int n = 0;
  for (int a = 0; a < w.rows; ++a)
    for (int b = 0; b < w.cols; ++b, ++n) {
      keys[n] = (w.row0 + a) * width + w.col0 + b;
      rows[n] = static_cast<float>(w.row0 + a);
      cols[n] = static_cast<float>(w.col0 + b);
    }
}

// Calls body(q, token, length) for each run of consecutive tokens of a block.
template <typename Body>
FVMT_INLINE void for_each_token_run(const Block &block, Body &&body) {
  for (int q = 0; q < block.count;) {
    int length = 1;
    while (q + length < block.count && block.tokens[q + length] == block.tokens[q] + length) ++length;
    body(q, block.tokens[q], length);
    q += length;
  }
}

}  // namespace

int32_t check_amf_arguments(const char *fn, const void *q, const void *k, int32_t dtype, int32_t frames,
                            int32_t height, int32_t width, int32_t channels, int32_t heads, float temperature,
                            const int32_t *pairs, int32_t pair_count, const void *workspace,
                            size_t workspace_bytes) {
  if (int32_t s = check_dtype(fn, dtype, false)) return s;
  if (int32_t s = check_geometry(fn, frames, height, width, channels)) return s;
  if (int64_t{height} * width >= (int64_t{1} << 27))
    return fail(FVMT_ERR_INVALID_ARGUMENT, "%s: height x width = %lld tokens per frame is too large (limit 2^27)",
                fn, static_cast<long long>(int64_t{height} * width));
  if (int32_t s = check_attention(fn, channels, heads, temperature)) return s;
  if (int32_t s = check_pointer(fn, "q", q)) return s;
  if (int32_t s = check_pointer(fn, "k", k)) return s;
  if (int32_t s = check_pairs(fn, pairs, pair_count, frames)) return s;
  return check_workspace(fn, workspace, workspace_bytes, 0);
}

int32_t check_gradient_outputs(const char *fn, const float *d_delta, const float *dq, const float *dk,
                               int64_t elements) {
  if (int32_t s = check_pointer(fn, "d_delta", d_delta)) return s;
  if (int32_t s = check_pointer(fn, "dq", dq)) return s;
  if (int32_t s = check_pointer(fn, "dk", dk)) return s;
  if (dq < dk + elements && dk < dq + elements)
    return fail(FVMT_ERR_INVALID_ARGUMENT, "%s: dq and dk must not overlap", fn);
  return FVMT_OK;
}

float score_scale(int channels, int heads, float temperature) {
  const double head_dim = static_cast<double>(channels) / heads;
  return static_cast<float>(static_cast<double>(temperature) / (heads * std::sqrt(head_dim)));
}

void full_blocks(int height, int width, std::vector<Block> &out) {
  const int tokens = height * width;
  for (int t0 = 0; t0 < tokens; t0 += kQueryBlock) {
    Block block{};
    block.count = std::min(kQueryBlock, tokens - t0);
    for (int q = 0; q < block.count; ++q) block.tokens[q] = t0 + q;
    block.keys = {0, 0, height, width};
    out.push_back(block);
  }
}

ForwardScratch::ForwardScratch(const AmfProblem &problem, int max_keys) {
  const ChunkPlan plan = plan_chunks(problem.channels);
  qpack_.resize(static_cast<size_t>(plan.count) * kQueryBlock * plan.width);
  scores_.resize(static_cast<size_t>(max_keys + 1) * kQueryBlock);
  keys_.resize(max_keys);
  rows_.resize(max_keys);
  cols_.resize(max_keys);
}

void block_expectations(const AmfProblem &problem, const std::vector<Job> &jobs, int max_keys,
                        const EmitExpectation &emit) {
  const int threads = omp_get_max_threads();
  std::vector<ForwardScratch> scratch;
  scratch.reserve(threads);
  for (int t = 0; t < threads; ++t) scratch.emplace_back(problem, max_keys);
  const ChunkPlan plan = plan_chunks(problem.channels);
  const int64_t job_count = static_cast<int64_t>(jobs.size());
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
  for (int64_t n = 0; n < job_count; ++n) {
    ForwardScratch &s = scratch[omp_get_thread_num()];
    const Job &job = jobs[n];
    const Block &block = job.block;
    const int stride = round_up(block.count, 4);
    pack_queries(problem.q_frame(job.i), block.tokens, block.count, stride, problem.channels, plan, s.qpack());
    list_keys(block.keys, problem.width, s.keys(), s.rows(), s.cols());
    block_scores(s.qpack(), stride, problem.k_frame(job.j), s.keys(), block.keys.count(), problem.channels, plan,
                 s.scores());
    float expected[2 * kQueryBlock];
    softmax_expectation(s.scores(), stride, block.count, block.keys.count(), {s.rows(), s.cols()}, problem.scale,
                        expected);
    emit(job, expected);
  }
}

// ------------------------------------------------------------------ backward

PairBackward::PairBackward(const AmfProblem &problem, float *dq, float *dk)
    : problem_(problem), dq_(dq), dk_(dk), panels_((problem.channels + kPanel - 1) / kPanel),
      plan_(plan_chunks(problem.channels)), threads_(omp_get_max_threads()) {
  const size_t panel_floats = static_cast<size_t>(panels_) * problem.tokens() * kPanel;
  q_panels_.resize(panel_floats);
  k_panels_.resize(panel_floats);
  scratch_.reserve(threads_);
  for (int t = 0; t < threads_; ++t) scratch_.emplace_back(problem, problem.tokens());
  key_rows_.resize(static_cast<size_t>(threads_) * problem.width * kPanel);
}

void PairBackward::add_pair(int i, int j, const std::vector<Block> &blocks, bool whole_frame,
                            const float *d_delta) {
  pack_frames(i, j);
  ds_offset_.resize(blocks.size());
  for (size_t b0 = 0; b0 < blocks.size();) {
    size_t b1 = b0;
    int64_t total = 0;
    while (b1 < blocks.size()) {
      const int64_t need = int64_t{blocks[b1].keys.count() + 1} * round_up(blocks[b1].count, 4);
      if (b1 > b0 && total + need > kScoreBudget) break;
      ds_offset_[b1 - b0] = total;
      total += need;
      ++b1;
    }
    if (ds_.size() < static_cast<size_t>(total)) ds_.resize(total);
    const int count = static_cast<int>(b1 - b0);
    scores_and_gradients(i, j, &blocks[b0], count, d_delta);
    query_gradients(i, &blocks[b0], count);
    if (whole_frame)
      key_gradients_whole_frame(j, &blocks[b0], count);
    else
      key_gradients_windows(j, &blocks[b0], count);
    b0 = b1;
  }
}

void PairBackward::pack_frames(int i, int j) {
  const int tokens = problem_.tokens(), channels = problem_.channels;
  constexpr int kTokensPerTask = 64;
  const int tasks = (tokens + kTokensPerTask - 1) / kTokensPerTask;
  const bool pack_q = q_panel_frame_ != i, pack_k = k_panel_frame_ != j;
  if (!pack_q && !pack_k) return;
#pragma omp parallel for num_threads(threads_) schedule(static)
  for (int task = 0; task < tasks; ++task) {
    const int t0 = task * kTokensPerTask, t1 = std::min(tokens, t0 + kTokensPerTask);
    if (pack_q) pack_panels(problem_.q_frame(i), tokens, channels, t0, t1, q_panels_.data());
    if (pack_k) pack_panels(problem_.k_frame(j), tokens, channels, t0, t1, k_panels_.data());
  }
  q_panel_frame_ = i;
  k_panel_frame_ = j;
}

// dS of every block, stored at ds_ + ds_offset_[b] as [key][stride].
void PairBackward::scores_and_gradients(int i, int j, const Block *blocks, int count, const float *d_delta) {
#pragma omp parallel for num_threads(threads_) schedule(dynamic, 1)
  for (int b = 0; b < count; ++b) {
    ForwardScratch &s = scratch_[omp_get_thread_num()];
    const Block &block = blocks[b];
    const int stride = round_up(block.count, 4);
    float *ds = ds_.data() + ds_offset_[b];
    pack_queries(problem_.q_frame(i), block.tokens, block.count, stride, problem_.channels, plan_, s.qpack());
    list_keys(block.keys, problem_.width, s.keys(), s.rows(), s.cols());
    block_scores(s.qpack(), stride, problem_.k_frame(j), s.keys(), block.keys.count(), problem_.channels, plan_,
                 ds);
    float g_row[kQueryBlock], g_col[kQueryBlock];
    for (int q = 0; q < block.count; ++q) {
      g_row[q] = d_delta[2 * static_cast<int64_t>(block.tokens[q])];
      g_col[q] = d_delta[2 * static_cast<int64_t>(block.tokens[q]) + 1];
    }
    softmax_gradient(ds, stride, block.count, block.keys.count(), {s.rows(), s.cols()}, problem_.scale, g_row,
                     g_col);
  }
}

// dQ_i[q] += sum_n dS[n][q] K_j[n]: each block owns its queries' rows of dq.
void PairBackward::query_gradients(int i, const Block *blocks, int count) {
  const int tokens = problem_.tokens(), width = problem_.width, channels = problem_.channels;
  float *dq = dq_ + static_cast<int64_t>(i) * tokens * channels;
  const int tasks = (count + kBlocksPerQueryTask - 1) / kBlocksPerQueryTask;
#pragma omp parallel for num_threads(threads_) schedule(dynamic, 1)
  for (int task = 0; task < tasks; ++task) {
    const int b0 = task * kBlocksPerQueryTask, b1 = std::min(count, b0 + kBlocksPerQueryTask);
    for (int p = 0; p < panels_; ++p) {
      const float *panel = k_panels_.data() + static_cast<size_t>(p) * tokens * kPanel;
      const int valid = std::min(kPanel, channels - p * kPanel);
      for (int b = b0; b < b1; ++b) {
        const Block &block = blocks[b];
        const Window &w = block.keys;
        const int stride = round_up(block.count, 4);
        const float *ds = ds_.data() + ds_offset_[b];
        for (int q0 = 0; q0 < block.count; q0 += kNnRows) {
          with_rows(std::min(kNnRows, block.count - q0), [&]<int R>() {
            __m256 acc[R][2];
            nn_zero(acc);
            if (w.cols == width) {  // the window's rows are one run of tokens
              nn_accumulate<R>(acc, ds + q0, 1, stride, panel + static_cast<size_t>(w.row0) * width * kPanel,
                               w.count());
            } else {
              for (int a = 0; a < w.rows; ++a)
                nn_accumulate<R>(acc, ds + static_cast<size_t>(a) * w.cols * stride + q0, 1, stride,
                                 panel + (static_cast<size_t>(w.row0 + a) * width + w.col0) * kPanel, w.cols);
            }
            float *out[R];
            for (int r = 0; r < R; ++r)
              out[r] = dq + static_cast<int64_t>(block.tokens[q0 + r]) * channels + p * kPanel;
            nn_add_to<R>(acc, out, valid);
          });
        }
      }
    }
  }
}

// dK_j[n] += sum_q dS[n][q] Q_i[q] when every block attends to all of frame j:
// a task owns a range of keys and keeps 6 keys x 16 channels in registers
// while it walks all blocks in order.
void PairBackward::key_gradients_whole_frame(int j, const Block *blocks, int count) {
  const int tokens = problem_.tokens(), channels = problem_.channels;
  float *dk = dk_ + static_cast<int64_t>(j) * tokens * channels;
  const int tasks = (tokens + kKeysPerKeyTask - 1) / kKeysPerKeyTask;
#pragma omp parallel for num_threads(threads_) schedule(dynamic, 1)
  for (int task = 0; task < tasks; ++task) {
    const int k0 = task * kKeysPerKeyTask, k1 = std::min(tokens, k0 + kKeysPerKeyTask);
    for (int p = 0; p < panels_; ++p) {
      const float *panel = q_panels_.data() + static_cast<size_t>(p) * tokens * kPanel;
      const int valid = std::min(kPanel, channels - p * kPanel);
      for (int kg = k0; kg < k1; kg += kNnRows) {
        with_rows(std::min(kNnRows, k1 - kg), [&]<int R>() {
          __m256 acc[R][2];
          nn_zero(acc);
          for (int b = 0; b < count; ++b) {
            const Block &block = blocks[b];
            const int stride = round_up(block.count, 4);
            const float *ds = ds_.data() + ds_offset_[b] + static_cast<size_t>(kg) * stride;
            for_each_token_run(block, [&](int q, int token, int length) {
              nn_accumulate<R>(acc, ds + q, stride, 1, panel + static_cast<size_t>(token) * kPanel, length);
            });
          }
          float *out[R];
          for (int r = 0; r < R; ++r) out[r] = dk + static_cast<int64_t>(kg + r) * channels + p * kPanel;
          nn_add_to<R>(acc, out, valid);
        });
      }
    }
  }
}

// dK_j[n] += sum over blocks whose window holds n, in block order, of
// sum_q dS[n][q] Q_i[q]: a GATHER. A task owns one frame row of dK (x 128
// channels) and adds each block's share into a row buffer in L1, so the scatter
// over overlapping windows needs no atomics and has a fixed order.
void PairBackward::key_gradients_windows(int j, const Block *blocks, int count) {
  const int tokens = problem_.tokens(), width = problem_.width, channels = problem_.channels;
  float *dk = dk_ + static_cast<int64_t>(j) * tokens * channels;
  const int panel_groups = (panels_ + kPanelsPerRowTask - 1) / kPanelsPerRowTask;
  const int tasks = problem_.height * panel_groups;
#pragma omp parallel for num_threads(threads_) schedule(dynamic, 1)
  for (int task = 0; task < tasks; ++task) {
    const int row = task / panel_groups, group = task % panel_groups;
    float *row_sums = key_rows_.data() + static_cast<size_t>(omp_get_thread_num()) * width * kPanel;
    for (int p = group * kPanelsPerRowTask; p < std::min(panels_, (group + 1) * kPanelsPerRowTask); ++p) {
      const float *panel = q_panels_.data() + static_cast<size_t>(p) * tokens * kPanel;
      std::fill(row_sums, row_sums + static_cast<size_t>(width) * kPanel, 0.0f);
      bool touched = false;
      for (int b = 0; b < count; ++b) {
        const Block &block = blocks[b];
        const Window &w = block.keys;
        if (row < w.row0 || row >= w.row0 + w.rows) continue;
        touched = true;
        const int stride = round_up(block.count, 4);
        const float *ds = ds_.data() + ds_offset_[b] + static_cast<size_t>(row - w.row0) * w.cols * stride;
        for (int c0 = 0; c0 < w.cols; c0 += kNnRows) {
          with_rows(std::min(kNnRows, w.cols - c0), [&]<int R>() {
            float *sums = row_sums + static_cast<size_t>(w.col0 + c0) * kPanel;
            __m256 acc[R][2];
            nn_load<R>(acc, sums, kPanel);
            for_each_token_run(block, [&](int q, int token, int length) {
              nn_accumulate<R>(acc, ds + static_cast<size_t>(c0) * stride + q, stride, 1,
                               panel + static_cast<size_t>(token) * kPanel, length);
            });
            nn_store<R>(acc, sums, kPanel);
          });
        }
      }
      if (!touched) continue;
      const int valid = std::min(kPanel, channels - p * kPanel);
      for (int c = 0; c < width; ++c) {
        float *out = dk + (static_cast<int64_t>(row) * width + c) * channels + p * kPanel;
        const float *sums = row_sums + static_cast<size_t>(c) * kPanel;
        for (int ch = 0; ch < valid; ++ch) out[ch] += sums[ch];
      }
    }
  }
}

}  // namespace fvmt::cpu
