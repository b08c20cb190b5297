// The CPU attention engine behind the full and the windowed AMF (amf_full.cpp,
// amf_window.cpp): both are lists of query blocks, each attending to one key
// window of frame j, so both run through the same code.
//
//   forward   for every block, independently and in parallel: expected key
//             positions E[q] of its queries (block_expectations).
//   backward  pair by pair, in the order of `pairs` (PairBackward): scores and
//             dS of every block, then dQ owned per block, then dK owned per key
//             row of frame j, gathered from the blocks in a fixed order. No
//             output element is written by two threads and every sum runs in an
//             order fixed by the shapes, so dq and dk are bit-identical for any
//             OpenMP thread count.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "attention_kernels.hpp"
#include "boundary.hpp"

namespace fvmt::cpu {

// Q and K, [F, H, W, C] fp32, and the score scale temperature / (heads sqrt(d_h)).
struct AmfProblem {
  const float *q;
  const float *k;
  int frames, height, width, channels;
  float scale;

  int tokens() const { return height * width; }
  const float *q_frame(int f) const { return q + static_cast<int64_t>(f) * tokens() * channels; }
  const float *k_frame(int f) const { return k + static_cast<int64_t>(f) * tokens() * channels; }
};

float score_scale(int channels, int heads, float temperature);

// The argument checks every AMF entry point shares: dtype (f32 only), geometry,
// heads and temperature, q, k, pairs (read: host memory) and the workspace (the
// cpu build needs none). A frame must have fewer than 2^31 / 16 tokens, so
// token-sized counts fit int32 everywhere.
int32_t check_amf_arguments(const char *fn, const void *q, const void *k, int32_t dtype, int32_t frames,
                            int32_t height, int32_t width, int32_t channels, int32_t heads, float temperature,
                            const int32_t *pairs, int32_t pair_count, const void *workspace,
                            size_t workspace_bytes);

// The gradient outputs of a backward: present, and dq and dk not overlapping
// (each is written by its owners only; a shared buffer would be a data race).
int32_t check_gradient_outputs(const char *fn, const float *d_delta, const float *dq, const float *dk,
                               int64_t elements);

// Keys (row0 + a, col0 + b) of frame j, a < rows, b < cols; key n = a * cols + b.
struct Window {
  int row0, col0, rows, cols;
  int count() const { return rows * cols; }
};

// Up to kQueryBlock query tokens of frame i (indices r * W + c) sharing a window.
struct Block {
  int count;
  int32_t tokens[kQueryBlock];
  Window keys;
};

// The blocks of full attention: kQueryBlock consecutive tokens each, the whole frame as keys.
void full_blocks(int height, int width, std::vector<Block> &out);

// One forward job: block `block` of pair `pair` = (i, j).
struct Job {
  int pair, i, j;
  Block block;
};

// Per-thread scratch of the forward.
class ForwardScratch {
 public:
  ForwardScratch(const AmfProblem &problem, int max_keys);
  float *qpack() { return qpack_.data(); }
  float *scores() { return scores_.data(); }
  int32_t *keys() { return keys_.data(); }
  float *rows() { return rows_.data(); }
  float *cols() { return cols_.data(); }

 private:
  AlignedArray<float> qpack_, scores_;
  AlignedArray<int32_t> keys_;
  AlignedArray<float> rows_, cols_;
};

// Runs every job (in parallel); for each calls emit(job, expected) with
// expected[2q], expected[2q+1] = E[q] in frame-j coordinates. emit runs on a
// worker thread and must only write outputs owned by the job. max_keys bounds
// the windows of the jobs.
using EmitExpectation = std::function<void(const Job &, const float *)>;
void block_expectations(const AmfProblem &problem, const std::vector<Job> &jobs, int max_keys,
                        const EmitExpectation &emit);

// The gradient of the AMF over a list of pairs, accumulated into dq and dk.
class PairBackward {
 public:
  PairBackward(const AmfProblem &problem, float *dq, float *dk);
  // Adds pair (i, j)'s gradient; d_delta is the pair's [H, W, 2]. `whole_frame`
  // says every block attends to all of frame j (dK then keeps its sums in
  // registers across blocks).
  void add_pair(int i, int j, const std::vector<Block> &blocks, bool whole_frame, const float *d_delta);

 private:
  void pack_frames(int i, int j);
  void scores_and_gradients(int i, int j, const Block *blocks, int count, const float *d_delta);
  void query_gradients(int i, const Block *blocks, int count);
  void key_gradients_whole_frame(int j, const Block *blocks, int count);
  void key_gradients_windows(int j, const Block *blocks, int count);

  const AmfProblem &problem_;
  float *dq_, *dk_;
  int panels_;
  ChunkPlan plan_;
  AlignedArray<float> q_panels_, k_panels_;
  int q_panel_frame_ = -1, k_panel_frame_ = -1;
  std::vector<int64_t> ds_offset_;
  AlignedArray<float> ds_;
  int threads_;
  std::vector<ForwardScratch> scratch_;
  AlignedArray<float> key_rows_;  // per thread: one frame row of dK, one panel wide
};

}  // namespace fvmt::cpu
