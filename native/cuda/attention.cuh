// The tiled score product, the online softmax of key positions and the gradient
// product that every AMF kernel (amf_full.cu, amf_window.cu) is built from.
//
// Every AMF kernel multiplies a tile of A rows (kRowsA = 64 or 16 tokens, the rows the
// block owns) by tiles of 64 B rows (the rows it streams) over the C channels:
//     S[a][b] = A[a] . B[b]          (score = scale * S, see fastvmt.h)
// Rows are gathered through int64 element offsets (-1 = padding, read as zeros), so one
// engine serves contiguous frame tiles, tile centres, search windows and query batches,
// and A/B may be queries/keys or keys/queries.
//
// Forward (softmax_positions): for each A row (a query) the softmax over all B tiles of
// the key positions, reduced to lse2 = log2(sum_b 2^s2_b) and the expected (row, col),
// where s2 = S * scale * log2(e).
// Backward (score_gradient + add_gradient_product): with P = 2^(s2 - lse2) and g = dL/d delta,
//     dL/dscore = P * (g_row * (row_key - E_row) + g_col * (col_key - E_col))
//     out[a][c] += scale * sum_b dL/dscore[a][b] * B[b][c]      (dQ, or dK with A = keys)
//
// Why it is fast (SIMT fp32, no tensor cores):
//  - 32-channel slices of A and B are staged in shared memory channel-major with 4 floats of
//    padding; each warp loads 4 rows x 8 consecutive channels (whole 32-byte sectors) and
//    stores them to 32 distinct banks;
//  - each thread accumulates a 4x4 register block of S: per channel, two 16-byte shared
//    reads (one of them a broadcast) feed 16 FMAs; threads = (kRowsA / 4) * 16;
//  - the softmax is online: each thread keeps a running (max, sum, sum*row, sum*col) per
//    query row over its own keys, merged across its 16 neighbours once at the end, so no
//    score matrix is stored and nothing is reduced per key tile; exp2 of pre-scaled scores
//    is one instruction;
//  - the gradient product streams 64 channels of B at a time against dL/dS kept in shared
//    memory, again as 4x4 register blocks, and adds into the fp32 gradient rows that only
//    this block owns: a fixed order and no atomics, so results are deterministic.
#pragma once

#include <cmath>
#include <cstdint>

#include "portable.cuh"

namespace fvmt::amf {

constexpr int kOtherRows = 64;               // B rows per tile
constexpr int kLanesB = kOtherRows / 4;      // threads along B in a 4x4-blocked tile
constexpr int kScoreChunk = 32;              // channels per stage of the score product
constexpr int kGradChunk = 64;               // channels per stage of the gradient product
constexpr int kStatsPerQuery = 3;            // lse2, expected row, expected col
constexpr double kLog2e = 1.4426950408889634;  // host-side only

template <int kRowsA>
constexpr int kThreads = (kRowsA / 4) * kLanesB;
// __launch_bounds__ minimum of resident blocks: lets ptxas use ~100 registers for the
// register blocks (without it nvcc 13 caps sm_90 at 64 registers and spills).
constexpr int kMinBlocks = 2;

__host__ __device__ constexpr int ceil_div(int n, int d) { return (n + d - 1) / d; }

// The score factor temperature / (heads * sqrt(C / heads)) of fastvmt.h, in double.
inline double score_scale(int32_t channels, int32_t heads, float temperature) {
  return temperature / (heads * std::sqrt(static_cast<double>(channels) / heads));
}

// Channel-major staging of one 32-channel slice of the A and B tiles.
template <int kRowsA>
struct alignas(16) ScoreStage {
  float a[kScoreChunk][kRowsA + 4];
  float b[kScoreChunk][kOtherRows + 4];
};

// dst[ch][row] = src[rows[row] + c0 + ch], zero for padding rows and channels >= C.
// Element e goes to lane e % 32 of group e / 32; a group is 4 rows x 8 channels.
template <typename T, int kRows, int kBlock>
__device__ __forceinline__ void stage_channels(float (*dst)[kRows + 4], const T *src, const int64_t *rows,
                                               int c0, int channels) {
  constexpr int kRowGroups = kRows / 4;
  for (int e = threadIdx.x; e < kRows * kScoreChunk; e += kBlock) {
    const int lane = e & 31, group = e >> 5;
    const int row = (group % kRowGroups) * 4 + (lane & 3);
    const int ch = (group / kRowGroups) * 8 + (lane >> 2);
    const int64_t base = rows[row];
    dst[ch][row] = (base >= 0 && c0 + ch < channels) ? load_float(src, base + c0 + ch) : 0.0f;
  }
}

// acc[x][y] = A[a_rows[4 ta + x]] . B[b_rows[4 tb + y]] over all channels, for this
// thread's (ta, tb) = (tid / 16, tid % 16). Begins and ends with the stage free.
template <typename T, int kRowsA>
__device__ __forceinline__ void score_tile(float (&acc)[4][4], const T *a, const int64_t *a_rows, const T *b,
                                           const int64_t *b_rows, int channels, ScoreStage<kRowsA> &stage) {
  const int ta = threadIdx.x / kLanesB, tb = threadIdx.x % kLanesB;
  for (int x = 0; x < 4; ++x)
    for (int y = 0; y < 4; ++y) acc[x][y] = 0.0f;
  for (int c0 = 0; c0 < channels; c0 += kScoreChunk) {
    stage_channels<T, kRowsA, kThreads<kRowsA>>(stage.a, a, a_rows, c0, channels);
    stage_channels<T, kOtherRows, kThreads<kRowsA>>(stage.b, b, b_rows, c0, channels);
    __syncthreads();
    FVMT_UNROLL(8)
    for (int ch = 0; ch < kScoreChunk; ++ch) {
      float av[4], bv[4];
      for (int x = 0; x < 4; ++x) av[x] = stage.a[ch][ta * 4 + x];
      for (int y = 0; y < 4; ++y) bv[y] = stage.b[ch][tb * 4 + y];
      for (int x = 0; x < 4; ++x)
        for (int y = 0; y < 4; ++y) acc[x][y] = fmaf(av[x], bv[y], acc[x][y]);
    }
    __syncthreads();
  }
}

// ------------------------------------------------------------------- forward

// Running softmax of one query over a subset of keys, in base 2: the largest score seen,
// sum 2^(s - max), and that sum weighted by the key row and column.
struct PositionSoftmax {
  float max, sum, row, col;
};

__device__ __forceinline__ PositionSoftmax empty_softmax() { return {-INFINITY, 0.0f, 0.0f, 0.0f}; }

// Folds four base-2 scores (-INFINITY = not a key of this query) into `state`.
__device__ __forceinline__ void add_scores(PositionSoftmax &state, const float (&s2)[4], const float (&key_row)[4],
                                           const float (&key_col)[4]) {
  const float tile_max = fmaxf(fmaxf(s2[0], s2[1]), fmaxf(s2[2], s2[3]));
  if (tile_max == -INFINITY) return;
  if (tile_max > state.max) {
    const float rescale = exp2f(state.max - tile_max);
    state.sum *= rescale;
    state.row *= rescale;
    state.col *= rescale;
    state.max = tile_max;
  }
  for (int y = 0; y < 4; ++y) {
    const float p = exp2f(s2[y] - state.max);
    state.sum += p;
    state.row = fmaf(p, key_row[y], state.row);
    state.col = fmaf(p, key_col[y], state.col);
  }
}

__device__ __forceinline__ void merge_softmax(PositionSoftmax &into, const PositionSoftmax &other) {
  if (other.max == -INFINITY) return;
  const float max = fmaxf(into.max, other.max);
  const float keep = exp2f(into.max - max), add = exp2f(other.max - max);
  into.sum = into.sum * keep + other.sum * add;
  into.row = into.row * keep + other.row * add;
  into.col = into.col * keep + other.col * add;
  into.max = max;
}

template <int kRowsA>
struct alignas(16) SoftmaxShared {
  union {
    ScoreStage<kRowsA> stage;
    PositionSoftmax partial[kRowsA][kLanesB];  // per-thread states, merged at the end
  };
  int64_t a_rows[kRowsA];  // query rows, set by the caller before the call
  int64_t b_rows[kOtherRows];
  float key_row[kOtherRows], key_col[kOtherRows];
};

// The softmax over `key_tiles` key tiles of the key positions, for the query rows in
// sh.a_rows. set_keys(tile) fills sh.b_rows / key_row / key_col of one key tile (threads
// below 64 write entry threadIdx.x); emit(a, lse2, mean_row, mean_col) runs on thread a for
// each query row a. All threads of the block call this together.
template <typename T, int kRowsA, class SetKeys, class Emit>
__device__ void softmax_positions(const T *q, const T *k, int channels, float scale2, int key_tiles,
                                  SoftmaxShared<kRowsA> &sh, SetKeys &&set_keys, Emit &&emit) {
  const int ta = threadIdx.x / kLanesB, tb = threadIdx.x % kLanesB;
  PositionSoftmax state[4];
  for (int x = 0; x < 4; ++x) state[x] = empty_softmax();
  for (int tile = 0; tile < key_tiles; ++tile) {
    set_keys(tile);
    __syncthreads();
    // Read this thread's keys now: score_tile's barriers order them before the next set_keys.
    float key_row[4], key_col[4];
    bool valid[4];
    for (int y = 0; y < 4; ++y) {
      const int b = tb * 4 + y;
      valid[y] = sh.b_rows[b] >= 0;
      key_row[y] = sh.key_row[b];
      key_col[y] = sh.key_col[b];
    }
    float acc[4][4];
    score_tile<T, kRowsA>(acc, q, sh.a_rows, k, sh.b_rows, channels, sh.stage);
    for (int x = 0; x < 4; ++x) {
      float s2[4];
      for (int y = 0; y < 4; ++y) s2[y] = valid[y] ? acc[x][y] * scale2 : -INFINITY;
      add_scores(state[x], s2, key_row, key_col);
    }
  }
  for (int x = 0; x < 4; ++x) sh.partial[ta * 4 + x][tb] = state[x];
  __syncthreads();
  if (threadIdx.x < kRowsA) {
    PositionSoftmax total = sh.partial[threadIdx.x][0];
    for (int lane = 1; lane < kLanesB; ++lane) merge_softmax(total, sh.partial[threadIdx.x][lane]);
    emit(static_cast<int>(threadIdx.x), total.max + log2f(total.sum), total.row / total.sum,
         total.col / total.sum);
  }
  __syncthreads();
}

// Fills the entry threadIdx.x (< 64) of a key tile with token tile*64 + threadIdx.x of `frame`.
template <int kRowsA>
__device__ __forceinline__ void set_frame_keys(SoftmaxShared<kRowsA> &sh, int frame, int tile, int tokens,
                                               int width, int channels) {
  if (threadIdx.x >= kOtherRows) return;
  const int token = tile * kOtherRows + threadIdx.x;
  const bool valid = token < tokens;
  sh.b_rows[threadIdx.x] = valid ? (static_cast<int64_t>(frame) * tokens + token) * channels : -1;
  sh.key_row[threadIdx.x] = valid ? static_cast<float>(token / width) : 0.0f;
  sh.key_col[threadIdx.x] = valid ? static_cast<float>(token % width) : 0.0f;
}

// ------------------------------------------------------------------ backward

// What the backward needs of one (pair, query): its softmax statistics and dL/d delta.
struct QueryGradient {
  float lse2, mean_row, mean_col, grad_row, grad_col;
};

__device__ __forceinline__ QueryGradient load_query_gradient(const float *stats, const float *d_delta,
                                                             int64_t index) {
  return {stats[kStatsPerQuery * index], stats[kStatsPerQuery * index + 1], stats[kStatsPerQuery * index + 2],
          d_delta[2 * index], d_delta[2 * index + 1]};
}

// scale * dL/dscore of one (query, key) given s2 = scale * log2(e) * (q . k).
__device__ __forceinline__ float score_gradient(const QueryGradient &query, float s2, float key_row, float key_col,
                                                float scale) {
  const float p = exp2f(s2 - query.lse2);
  return p * (query.grad_row * (key_row - query.mean_row) + query.grad_col * (key_col - query.mean_col)) * scale;
}

template <int kRowsA>
struct alignas(16) GradientShared {
  union {
    ScoreStage<kRowsA> scores;
    float other[kOtherRows][kGradChunk];  // 64 channels of the B rows
  } stage;
  float ds[kOtherRows][kRowsA + 4];  // scale * dL/dS, B-major
  int64_t a_rows[kRowsA];            // the rows this block owns
  int64_t b_rows[kOtherRows];
};

// out[a_rows[a] + c] += sum_b ds[b][a] * other[b_rows[b] + c] for every owned row and
// channel. The caller has filled sh.ds (the barrier after the first stage publishes it).
// Begins with the stage free and ends with the block synchronised.
template <typename T, int kRowsA>
__device__ void add_gradient_product(float *out, const T *other, int channels, GradientShared<kRowsA> &sh) {
  const int ta = threadIdx.x / kLanesB, tc = threadIdx.x % kLanesB;
  for (int c0 = 0; c0 < channels; c0 += kGradChunk) {
    for (int e = threadIdx.x; e < kOtherRows * kGradChunk; e += kThreads<kRowsA>) {
      const int b = e / kGradChunk, ch = e % kGradChunk;
      const int64_t base = sh.b_rows[b];
      sh.stage.other[b][ch] = (base >= 0 && c0 + ch < channels) ? load_float(other, base + c0 + ch) : 0.0f;
    }
    __syncthreads();
    float acc[4][4] = {};
    FVMT_UNROLL(8)
    for (int b = 0; b < kOtherRows; ++b) {
      float dv[4], ov[4];
      for (int x = 0; x < 4; ++x) dv[x] = sh.ds[b][ta * 4 + x];
      for (int y = 0; y < 4; ++y) ov[y] = sh.stage.other[b][tc * 4 + y];
      for (int x = 0; x < 4; ++x)
        for (int y = 0; y < 4; ++y) acc[x][y] = fmaf(dv[x], ov[y], acc[x][y]);
    }
    for (int x = 0; x < 4; ++x) {
      const int64_t row = sh.a_rows[ta * 4 + x];
      if (row < 0) continue;
      for (int y = 0; y < 4; ++y) {
        const int c = c0 + tc * 4 + y;
        if (c < channels) out[row + c] += acc[x][y];
      }
    }
    __syncthreads();
  }
}

}  // namespace fvmt::amf
