// Full-frame attention kernels: every query token of frame i attends to every token of
// frame j. The full AMF runs them on all its pairs; the windowed AMF on its i == j pairs
// (half of FastVMT's forward FLOPs), so both get the same 64 x 64 tiles.
//
// Per pair p = (i, j) and query token t of frame i (N = H*W tokens, C channels):
//     s(t, u) = scale * Q_i[t] . K_j[u],   P(t, u) = softmax_u s(t, u)
//     delta[p, t] = sum_u P(t, u) * (row(u), col(u)) - (row(t), col(t))
// Backward (g = d_delta[p, t], E = the expected position):
//     ds(t, u) = P(t, u) * g . ((row(u), col(u)) - E)
//     dQ_i[t] += scale * sum_u ds(t, u) K_j[u]      dK_j[u] += scale * sum_t ds(t, u) Q_i[t]
//
// Kernels (attention.cuh's 4x4-register-blocked SIMT tiles, 256 threads):
//  - full_softmax_kernel: one block per (pair, 64 query tokens) streams all key tiles of
//    frame j with an online softmax (the N x N scores are never stored) and writes delta,
//    or, for the backward, the per-query statistics (lse2, E_row, E_col) to the workspace.
//  - full_gradient_kernel<kOwnKeys = false>: one block per 64 query tokens of a frame f owns
//    their dQ rows; it loops over the pairs with i == f in list order and all key tiles of j,
//    recomputes the scores, forms ds from the statistics and adds ds * K into dQ.
//  - full_gradient_kernel<kOwnKeys = true>: the same with the roles swapped: a block owns
//    64 key tokens of frame f and gathers over the pairs with j == f and all query tiles.
// Owner-computes with a fixed loop order: every gradient element is summed by one thread in
// one order, so dQ and dK are deterministic without atomics.
#pragma once

#include "attention.cuh"
#include "entry.cuh"

namespace fvmt::amf {

constexpr int kFullRows = 64;                       // tokens per block (A rows)
constexpr int kFullBlock = kThreads<kFullRows>;     // 256

// Which entries of the pair list a launch processes: all of them (full AMF) or only those
// with i == j (the whole-frame pairs of the windowed AMF). Entries naming a frame outside
// [0, F) are skipped: a bad entry is a no-op, never an out-of-bounds access.
enum class PairSet { kAll, kSameFrame };

template <PairSet kSet>
__device__ __forceinline__ bool selected(int i, int j, int frames) {
  return i >= 0 && i < frames && j >= 0 && j < frames && (kSet == PairSet::kAll || i == j);
}

// One block per (pair, 64 query tokens). kStats = false: out = delta [pairs, N, 2];
// true: out = statistics [pairs, N, 3].
template <typename T, bool kStats, PairSet kSet>
__global__ void __launch_bounds__(kFullBlock, kMinBlocks)
    full_softmax_kernel(const T *__restrict__ q, const T *__restrict__ k, int frames, int height, int width,
                        int channels, float scale2, const int32_t *__restrict__ pairs, int query_tiles,
                        float *__restrict__ out) {
  __shared__ SoftmaxShared<kFullRows> sh;
  const int tokens = height * width;
  const int pair = blockIdx.x / query_tiles, query0 = (blockIdx.x % query_tiles) * kFullRows;
  const int i = pairs[2 * pair], j = pairs[2 * pair + 1];
  if (!selected<kSet>(i, j, frames)) return;
  if (threadIdx.x < kFullRows) {
    const int token = query0 + threadIdx.x;
    sh.a_rows[threadIdx.x] = token < tokens ? (static_cast<int64_t>(i) * tokens + token) * channels : -1;
  }
  softmax_positions<T, kFullRows>(
      q, k, channels, scale2, ceil_div(tokens, kOtherRows), sh,
      [&](int tile) { set_frame_keys(sh, j, tile, tokens, width, channels); },
      [&](int a, float lse2, float mean_row, float mean_col) {
        const int token = query0 + a;
        if (token >= tokens) return;
        const int64_t index = static_cast<int64_t>(pair) * tokens + token;
        if constexpr (kStats) {
          out[kStatsPerQuery * index] = lse2;
          out[kStatsPerQuery * index + 1] = mean_row;
          out[kStatsPerQuery * index + 2] = mean_col;
        } else {
          out[2 * index] = mean_row - static_cast<float>(token / width);
          out[2 * index + 1] = mean_col - static_cast<float>(token % width);
        }
      });
}

// One block per (frame, 64 tokens). kOwnKeys = false: grad = dQ, the block owns query rows;
// true: grad = dK, it owns key rows.
template <typename T, bool kOwnKeys, PairSet kSet>
__global__ void __launch_bounds__(kFullBlock, kMinBlocks)
    full_gradient_kernel(const T *__restrict__ q, const T *__restrict__ k, int frames, int height, int width,
                         int channels, float scale, float scale2, const int32_t *__restrict__ pairs, int pair_count,
                         const float *__restrict__ stats, const float *__restrict__ d_delta, float *grad) {
  __shared__ GradientShared<kFullRows> sh;
  __shared__ QueryGradient queries[kFullRows];  // of the A rows (dQ) or of the B rows (dK)
  __shared__ float key_row[kFullRows], key_col[kFullRows];
  const int tokens = height * width, tiles = ceil_div(tokens, kFullRows);
  const int frame = blockIdx.x / tiles, own0 = (blockIdx.x % tiles) * kFullRows;
  const T *own = kOwnKeys ? k : q;
  const T *other = kOwnKeys ? q : k;
  const int ta = threadIdx.x / kLanesB, tb = threadIdx.x % kLanesB;

  if (threadIdx.x < kFullRows) {
    const int token = own0 + threadIdx.x;
    sh.a_rows[threadIdx.x] = token < tokens ? (static_cast<int64_t>(frame) * tokens + token) * channels : -1;
    if (kOwnKeys) {
      key_row[threadIdx.x] = static_cast<float>(token / width);
      key_col[threadIdx.x] = static_cast<float>(token % width);
    }
  }
  for (int pair = 0; pair < pair_count; ++pair) {
    const int i = pairs[2 * pair], j = pairs[2 * pair + 1];
    if (!selected<kSet>(i, j, frames) || (kOwnKeys ? j : i) != frame) continue;
    const int other_frame = kOwnKeys ? i : j;
    const int64_t pair_base = static_cast<int64_t>(pair) * tokens;
    if (!kOwnKeys && threadIdx.x < kFullRows && own0 + static_cast<int>(threadIdx.x) < tokens)
      queries[threadIdx.x] = load_query_gradient(stats, d_delta, pair_base + own0 + threadIdx.x);
    for (int tile = 0; tile < tiles; ++tile) {
      if (threadIdx.x < kOtherRows) {
        const int token = tile * kOtherRows + threadIdx.x;
        const bool valid = token < tokens;
        sh.b_rows[threadIdx.x] = valid ? (static_cast<int64_t>(other_frame) * tokens + token) * channels : -1;
        if (valid && kOwnKeys) queries[threadIdx.x] = load_query_gradient(stats, d_delta, pair_base + token);
        if (valid && !kOwnKeys) {
          key_row[threadIdx.x] = static_cast<float>(token / width);
          key_col[threadIdx.x] = static_cast<float>(token % width);
        }
      }
      __syncthreads();
      float acc[4][4];
      score_tile<T, kFullRows>(acc, own, sh.a_rows, other, sh.b_rows, channels, sh.stage.scores);
      for (int x = 0; x < 4; ++x) {
        const int a = ta * 4 + x;
        for (int y = 0; y < 4; ++y) {
          const int b = tb * 4 + y;
          float ds = 0.0f;
          if (sh.a_rows[a] >= 0 && sh.b_rows[b] >= 0) {
            const int query = kOwnKeys ? b : a, key = kOwnKeys ? a : b;
            ds = score_gradient(queries[query], acc[x][y] * scale2, key_row[key], key_col[key], scale);
          }
          sh.ds[b][a] = ds;
        }
      }
      add_gradient_product<T, kFullRows>(grad, other, channels, sh);
    }
  }
}


// Launches full_softmax_kernel: delta (stats = false) or the statistics (true) of the pairs in kSet.
template <typename T, PairSet kSet>
int32_t launch_full_softmax(const char *fn, bool stats, const T *q, const T *k, int32_t frames, int32_t height,
                            int32_t width, int32_t channels, float scale2, const int32_t *pairs, int32_t pair_count,
                            float *out, cudaStream_t stream) {
  const int query_tiles = ceil_div(height * width, kFullRows);
  unsigned grid = 0;
  if (int32_t s = grid_size(fn, static_cast<int64_t>(pair_count) * query_tiles, &grid)) return s;
  if (stats) {
    FVMT_LAUNCH(grid, kFullBlock, 0, stream, full_softmax_kernel<T, true, kSet>)
    (q, k, frames, height, width, channels, scale2, pairs, query_tiles, out);
  } else {
    FVMT_LAUNCH(grid, kFullBlock, 0, stream, full_softmax_kernel<T, false, kSet>)
    (q, k, frames, height, width, channels, scale2, pairs, query_tiles, out);
  }
  return check_launch(fn, "full_softmax_kernel");
}

// Launches the dQ and dK kernels for the pairs in kSet, given their statistics.
template <typename T, PairSet kSet>
int32_t launch_full_gradients(const char *fn, const T *q, const T *k, int32_t frames, int32_t height, int32_t width,
                              int32_t channels, float scale, float scale2, const int32_t *pairs, int32_t pair_count,
                              const float *stats, const float *d_delta, float *dq, float *dk, cudaStream_t stream) {
  unsigned grid = 0;
  if (int32_t s = grid_size(fn, static_cast<int64_t>(frames) * ceil_div(height * width, kFullRows), &grid)) return s;
  FVMT_LAUNCH(grid, kFullBlock, 0, stream, full_gradient_kernel<T, false, kSet>)
  (q, k, frames, height, width, channels, scale, scale2, pairs, pair_count, stats, d_delta, dq);
  if (int32_t s = check_launch(fn, "full_gradient_kernel (dq)")) return s;
  FVMT_LAUNCH(grid, kFullBlock, 0, stream, full_gradient_kernel<T, true, kSet>)
  (q, k, frames, height, width, channels, scale, scale2, pairs, pair_count, stats, d_delta, dk);
  return check_launch(fn, "full_gradient_kernel (dk)");
}

}  // namespace fvmt::amf
