// Row-broadcast elementwise passes and deterministic column sums over a [rows, cols] fp32
// matrix, shared by elementwise.cu and normalization.cu (fastvmt.h, "DiT ops").
//
// column_tile_kernel<Op, V>: a block owns a TILE of blockDim.x * V consecutive columns and a
// CHUNK of kRowsPerChunk rows; each thread owns V columns (V = 4: float4 loads and stores)
// and walks the chunk's rows, so a warp reads and writes 32 * V consecutive floats of a row
// (coalesced), and the per-column vectors of the op (bias, scale, gate) are loaded once into
// registers. Op::row does the row-wise work (y = x + bias, dx += dy (1 + scale), ...) and adds
// the row's terms of up to kMaxSums column sums (dbias, dgamma, ...) to per-thread DOUBLE
// accumulators; at the end of the chunk each sum is stored, rounded to fp32 once, as the
// chunk's partial row in the workspace:
//     partials[s, chunk, c] = sum_{r in chunk} term_s(r, c)
// finish_columns_kernel then adds, for every column, the partial rows in a fixed order (a
// strided sum per thread, then a fixed tree), in double:  out_s[c] += sum_chunk partials.
// No float atomics: the summation order depends on the shapes only, so the result is
// bit-identical from run to run.
//
// Workspace (fvmt_column_reduction_workspace_bytes, carved by WorkspaceLayout, so the size
// reported is exactly what the launchers use):
//     row_stats [kStatsPerRow, rows] floats   per-row statistics of the norms' backward
//     partials  [kMaxSums, chunks, cols] floats
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>

#include "entry.cuh"

namespace fvmt::columns {

constexpr int64_t kRowsPerChunk = 64;  // rows per block: 64 fp32 terms in double per partial
constexpr int kMaxSums = 2;            // dgamma and dbeta, dshift and dscale
constexpr int kStatsPerRow = 3;        // LayerNorm: mean (as high + low floats) and rstd
constexpr int kTileThreads = 128;      // threads of a column tile (fewer when cols is small)
constexpr int kFinishColumns = 32;     // finish_columns_kernel: a warp of columns ...
constexpr int kFinishLanes = 8;        // ... times 8 strided partial sums per column

inline int64_t chunks_of(int64_t rows) { return (rows + kRowsPerChunk - 1) / kRowsPerChunk; }

struct Workspace {
  float *row_stats;  // [kStatsPerRow, rows]
  float *partials;   // [kMaxSums, chunks, cols]

  static Workspace carve(WorkspaceLayout &layout, int64_t rows, int32_t cols) {
    Workspace w;
    w.row_stats = layout.take<float>(kStatsPerRow * rows);
    w.partials = layout.take<float>(kMaxSums * chunks_of(rows) * cols);
    return w;
  }
};

inline size_t workspace_bytes(int64_t rows, int32_t cols) {
  if (rows <= 0 || cols <= 0) return 0;
  WorkspaceLayout layout(nullptr);
  Workspace::carve(layout, rows, cols);
  return layout.bytes();
}

// float4 access is legal when a row holds whole float4s and every array starts on 16 bytes.
inline bool vectorisable(int32_t cols, std::initializer_list<const void *> arrays) {
  if (cols % 4 != 0) return false;
  for (const void *p : arrays)
    if (!aligned16(p)) return false;
  return true;
}

// V consecutive floats of one thread.
template <int V>
struct Lanes {
  float v[V];
};

template <int V>
__device__ __forceinline__ Lanes<V> load_lanes(const float *p) {
  Lanes<V> lanes;
  if constexpr (V == 4) {
    const float4 q = *reinterpret_cast<const float4 *>(p);
    lanes.v[0] = q.x;
    lanes.v[1] = q.y;
    lanes.v[2] = q.z;
    lanes.v[3] = q.w;
  } else {
    for (int i = 0; i < V; ++i) lanes.v[i] = p[i];
  }
  return lanes;
}

template <int V>
__device__ __forceinline__ void store_lanes(float *p, const Lanes<V> &lanes) {
  if constexpr (V == 4) {
    *reinterpret_cast<float4 *>(p) = make_float4(lanes.v[0], lanes.v[1], lanes.v[2], lanes.v[3]);
  } else {
    for (int i = 0; i < V; ++i) p[i] = lanes.v[i];
  }
}

// p[0..V) when p is given, else `value` in every lane (an optional per-column vector).
template <int V>
__device__ __forceinline__ Lanes<V> load_or(const float *p, float value) {
  if (p != nullptr) return load_lanes<V>(p);
  Lanes<V> lanes;
  for (int i = 0; i < V; ++i) lanes.v[i] = value;
  return lanes;
}

// A thread's double accumulators of the kSums column sums of its V columns.
template <int kSums, int V>
struct Sums {
  double v[kSums > 0 ? kSums : 1][V];
};

// Sum over the 32 lanes of a warp; an xor butterfly, so every lane holds the same bits
// (each step adds the same two values, in either order: addition commutes).
__device__ __forceinline__ double warp_sum(double value) {
  for (int offset = 16; offset > 0; offset /= 2) value += __shfl_xor_sync(0xffffffffu, value, offset);
  return value;
}

// Op provides: kSums; want(s) (is column sum s requested); columns<V>(c) (its per-column
// vectors at columns c..c+V, kept in registers); row<V>(r, at, columns, sums) for the
// element at = r * cols + c.
template <class Op, int V>
__global__ void __launch_bounds__(kTileThreads)
    column_tile_kernel(Op op, int64_t rows, int32_t cols, int64_t col_tiles, int64_t chunks,
                       float *__restrict__ partials) {
  const int64_t chunk = blockIdx.x / col_tiles;
  const int64_t tile = blockIdx.x - chunk * col_tiles;
  const int64_t c = (tile * blockDim.x + threadIdx.x) * V;
  if (c >= cols) return;  // V = 4 only when cols % 4 == 0: c < cols covers all four
  const auto vectors = op.template columns<V>(c);
  Sums<Op::kSums, V> sums;
  for (int s = 0; s < Op::kSums; ++s)
    for (int i = 0; i < V; ++i) sums.v[s][i] = 0.0;
  const int64_t begin = chunk * kRowsPerChunk;
  const int64_t end = begin + kRowsPerChunk < rows ? begin + kRowsPerChunk : rows;
  for (int64_t r = begin; r < end; ++r) op.template row<V>(r, r * cols + c, vectors, sums);
  for (int s = 0; s < Op::kSums; ++s) {
    if (!op.want(s)) continue;
    Lanes<V> partial;
    for (int i = 0; i < V; ++i) partial.v[i] = static_cast<float>(sums.v[s][i]);
    store_lanes<V>(partials + (s * chunks + chunk) * cols + c, partial);
  }
}

// out_s[c] += sum over chunks of partials[s, chunk, c], s = blockIdx.y, in double, in a fixed
// order: lane j of column c sums chunks j, j + 8, ...; the 8 lane sums are then added as
// ((0 + 1) + (2 + 3)) + ((4 + 5) + (6 + 7)). Consecutive threads read consecutive columns.
// (A template on the accumulator type, so that every .cu including this header may instantiate it.)
template <typename Sum>
__global__ void __launch_bounds__(kFinishColumns *kFinishLanes)
    finish_columns_kernel(const float *__restrict__ partials, int64_t chunks, int32_t cols, float *out0,
                          float *out1) {
  __shared__ Sum scratch[kFinishLanes][kFinishColumns];
  float *out = blockIdx.y == 0 ? out0 : out1;
  if (out == nullptr) return;  // the whole block: no barrier is skipped by part of it
  const int column = threadIdx.x % kFinishColumns, lane = threadIdx.x / kFinishColumns;
  const int64_t c = static_cast<int64_t>(blockIdx.x) * kFinishColumns + column;
  const float *base = partials + static_cast<int64_t>(blockIdx.y) * chunks * cols;
  Sum sum = 0;
  if (c < cols)
    for (int64_t chunk = lane; chunk < chunks; chunk += kFinishLanes) sum += base[chunk * cols + c];
  scratch[lane][column] = sum;
  __syncthreads();
  for (int stride = kFinishLanes / 2; stride > 0; stride /= 2) {
    if (lane < stride) scratch[lane][column] += scratch[lane + stride][column];
    __syncthreads();
  }
  if (lane == 0 && c < cols) out[c] += static_cast<float>(scratch[0][column]);
}

// Launches column_tile_kernel over [rows, cols]: V = 4 when `vector` (cols % 4 == 0 and every
// array the op touches 16-byte aligned), else V = 1.
template <class Op>
int32_t launch_column_tiles(const char *fn, const char *what, const Op &op, int64_t rows, int32_t cols,
                            bool vector, float *partials, cudaStream_t stream) {
  const int v = vector ? 4 : 1;
  const int64_t thread_columns = (cols + v - 1) / v;
  const int64_t rounded = (thread_columns + 31) / 32 * 32;
  const int threads = static_cast<int>(rounded < kTileThreads ? rounded : kTileThreads);
  const int64_t col_tiles = (thread_columns + threads - 1) / threads;
  const int64_t chunks = chunks_of(rows);
  unsigned grid = 0;
  if (int32_t s = grid_size(fn, col_tiles * chunks, &grid)) return s;
  if (vector) {
    FVMT_LAUNCH(grid, threads, 0, stream, column_tile_kernel<Op, 4>)(op, rows, cols, col_tiles, chunks, partials);
  } else {
    FVMT_LAUNCH(grid, threads, 0, stream, column_tile_kernel<Op, 1>)(op, rows, cols, col_tiles, chunks, partials);
  }
  return check_launch(fn, what);
}

// out0 += the sum over rows of term 0, out1 += that of term 1 (either may be NULL).
inline int32_t finish_columns(const char *fn, const float *partials, int64_t rows, int32_t cols, float *out0,
                              float *out1, cudaStream_t stream) {
  if (out0 == nullptr && out1 == nullptr) return FVMT_OK;
  const dim3 grid(static_cast<unsigned>((cols + kFinishColumns - 1) / kFinishColumns), out1 != nullptr ? 2 : 1);
  FVMT_LAUNCH(grid, kFinishColumns * kFinishLanes, 0, stream, finish_columns_kernel<double>)
  (partials, chunks_of(rows), cols, out0, out1);
  return check_launch(fn, "finish_columns_kernel");
}

}  // namespace fvmt::columns
