// Windowed attention motion flow (FastVMT's sliding window), see fastvmt.h.
//
// Per pair p = (i, j) with i != j and tile t of frame i (tile_h x tile_w tokens):
//   pass 1  the tile's centre token attends to all of frame j; its expected position,
//           rounded as floor(x + 0.5), centres the window: origin = clamp(centre - window/2,
//           0, H - window_h) per axis -> window_origins[p, t]. No gradient flows here.
//   pass 2  every query of the tile attends to the window_h x window_w window only:
//           delta[p, query] = sum_u P(u) (row(u), col(u)) - (row, col), P = softmax over the window.
// A pair with i == j attends to the whole frame (origins (0, 0)): those pairs, half of the
// FLOPs of FastVMT's pair set, run through full_attention.cuh's 64 x 64 tiles.
// Backward of pass 2 (the windows fixed), with ds = P * g . (pos(u) - E) as in full_attention.cuh:
//   dQ_i[t] += scale * sum_{u in window} ds K_j[u],   dK_j[u] += scale * sum_{t: u in window(t)} ds Q_i[t].
//
// Kernels for the i != j pairs (attention.cuh's 4x4-register-blocked SIMT tiles):
//  - window_centre_kernel (256 threads): 64 tile centres of a pair against all key tiles of
//    frame j, online softmax, writes the window origins (pass 1).
//  - window_softmax_kernel (64 threads): up to 16 queries of one tile against its window,
//    streamed in 64-key tiles along the window's row-major order; writes delta (pass 2) or,
//    for the backward, the per-query statistics (lse2, E_row, E_col).
//  - window_query_gradient_kernel (64 threads): owns 16 query rows of a tile of frame f, loops
//    over the pairs (f, j) and the key tiles of each window: dQ, no atomics.
//  - window_key_gradient_kernel (256 threads): owns a 64-key block of frame f (8 x 8 tokens, or
//    W x 64/W when W < 8) and GATHERS its dK: it walks the pairs (i, f) and the tiles of frame i
//    in order, keeps those whose window overlaps the block (a warp ballot over 32 tiles at a
//    time), and packs their queries into batches of 64. Each batch is one 64 x 64 score tile
//    (keys outside a query's window masked) and one gradient product, so the reduction depth
//    of dK's read-modify-write stays 64 however small the tiles are. The scatter over
//    overlapping windows is thereby a fixed-order gather: deterministic.
// Why pass 2 is cheap: a window is window_h x window_w keys instead of H*W, and the 64-key tiles
// of a window are gathered straight from K's rows (each window row is contiguous in memory).
#include "full_attention.cuh"
#include "window.cuh"

namespace fvmt {
namespace {

using amf::ceil_div;
using amf::kOtherRows;
using window::Geometry;
using window::Rect;

constexpr int kCentres = 64;                          // tile centres per pass-1 block
constexpr int kCentreBlock = amf::kThreads<kCentres>;  // 256
constexpr int kQueries = 16;                          // queries per pass-2 / dQ block
constexpr int kQueryBlock = amf::kThreads<kQueries>;   // 64
constexpr int kQueryMinBlocks = 8;                    // __launch_bounds__: up to 128 registers, no spills
constexpr int kKeys = 64;                             // keys per dK block
constexpr int kKeyBlock = amf::kThreads<kKeys>;        // 256
constexpr int kKeyBlockWidth = 8;                     // dK block: 8 x 8 tokens (narrower frames: W x 64/W)

// A pair (i, j) with i != j, both frames in range: the pairs these kernels process.
__device__ __forceinline__ bool windowed_pair(int i, int j, int frames) {
  return i >= 0 && i < frames && j >= 0 && j < frames && i != j;
}

// Fills entry threadIdx.x (< 64) of a key tile with element `index` of window w of frame j.
template <int kRowsA>
__device__ __forceinline__ void set_window_keys(amf::SoftmaxShared<kRowsA> &sh, const Geometry &geo, const Rect &w,
                                                int frame, int index, int channels) {
  if (threadIdx.x >= kOtherRows) return;
  const bool valid = index < w.rows * w.cols;
  const int row = valid ? w.row0 + index / w.cols : 0, col = valid ? w.col0 + index % w.cols : 0;
  const int tokens = geo.height * geo.width;
  sh.b_rows[threadIdx.x] =
      valid ? (static_cast<int64_t>(frame) * tokens + row * geo.width + col) * channels : -1;
  sh.key_row[threadIdx.x] = static_cast<float>(row);
  sh.key_col[threadIdx.x] = static_cast<float>(col);
}

// One block per (pair, 64 tiles): pass 1, the window origins of those tiles ((0, 0) when i == j).
template <typename T>
__global__ void __launch_bounds__(kCentreBlock, amf::kMinBlocks)
    window_centre_kernel(const T *__restrict__ q, const T *__restrict__ k, int frames, Geometry geo, int channels,
                         float scale2, int window, const int32_t *__restrict__ pairs, int centre_tiles,
                         int32_t *__restrict__ origins) {
  __shared__ amf::SoftmaxShared<kCentres> sh;
  const int tokens = geo.height * geo.width;
  const int pair = blockIdx.x / centre_tiles, tile0 = (blockIdx.x % centre_tiles) * kCentres;
  const int i = pairs[2 * pair], j = pairs[2 * pair + 1];
  if (i < 0 || i >= frames || j < 0 || j >= frames) return;  // a bad entry is a no-op
  const int64_t entry0 = static_cast<int64_t>(pair) * geo.tiles + tile0;
  if (i == j) {  // the whole frame is the window
    const int t = tile0 + threadIdx.x;
    if (threadIdx.x < kCentres && t < geo.tiles) {
      origins[2 * (entry0 + threadIdx.x)] = 0;
      origins[2 * (entry0 + threadIdx.x) + 1] = 0;
    }
    return;
  }
  if (threadIdx.x < kCentres) {
    const int t = tile0 + threadIdx.x;
    sh.a_rows[threadIdx.x] =
        t < geo.tiles ? (static_cast<int64_t>(i) * tokens + geo.tile_centre(t)) * channels : -1;
  }
  amf::softmax_positions<T, kCentres>(
      q, k, channels, scale2, ceil_div(tokens, kOtherRows), sh,
      [&](int tile) { amf::set_frame_keys(sh, j, tile, tokens, geo.width, channels); },
      [&](int a, float, float mean_row, float mean_col) {
        if (tile0 + a >= geo.tiles) return;
        const int centre_row = static_cast<int>(floorf(mean_row + 0.5f));
        const int centre_col = static_cast<int>(floorf(mean_col + 0.5f));
        origins[2 * (entry0 + a)] = min(max(centre_row - window / 2, 0), geo.height - geo.window_h);
        origins[2 * (entry0 + a) + 1] = min(max(centre_col - window / 2, 0), geo.width - geo.window_w);
      });
}

// One block per (pair, tile, chunk of 16 queries), pairs with i != j. kStats = false:
// out = delta [pairs, N, 2]; true: out = statistics [pairs, N, 3].
template <typename T, bool kStats>
__global__ void __launch_bounds__(kQueryBlock, kQueryMinBlocks)
    window_softmax_kernel(const T *__restrict__ q, const T *__restrict__ k, int frames, Geometry geo, int channels,
                          float scale2, const int32_t *__restrict__ pairs, int query_chunks,
                          const int32_t *__restrict__ origins, float *__restrict__ out) {
  __shared__ amf::SoftmaxShared<kQueries> sh;
  const int tokens = geo.height * geo.width;
  const int chunk = blockIdx.x % query_chunks;
  const int64_t entry = blockIdx.x / query_chunks;
  const int pair = static_cast<int>(entry / geo.tiles), t = static_cast<int>(entry % geo.tiles);
  const int i = pairs[2 * pair], j = pairs[2 * pair + 1];
  Rect w;
  if (!windowed_pair(i, j, frames) || !geo.window(origins, entry, &w)) return;
  const Rect tile = geo.tile(t);
  const int query_index = chunk * kQueries + threadIdx.x;
  const bool own_query = threadIdx.x < kQueries && query_index < tile.rows * tile.cols;
  const int token = own_query ? geo.token_in(tile, query_index) : 0;
  if (threadIdx.x < kQueries)
    sh.a_rows[threadIdx.x] = own_query ? (static_cast<int64_t>(i) * tokens + token) * channels : -1;
  amf::softmax_positions<T, kQueries>(
      q, k, channels, scale2, ceil_div(w.rows * w.cols, kOtherRows), sh,
      [&](int key_tile) { set_window_keys(sh, geo, w, j, key_tile * kOtherRows + threadIdx.x, channels); },
      [&](int, float lse2, float mean_row, float mean_col) {  // runs on thread a, which owns `token`
        if (!own_query) return;
        const int64_t index = static_cast<int64_t>(pair) * tokens + token;
        if constexpr (kStats) {
          out[amf::kStatsPerQuery * index] = lse2;
          out[amf::kStatsPerQuery * index + 1] = mean_row;
          out[amf::kStatsPerQuery * index + 2] = mean_col;
        } else {
          out[2 * index] = mean_row - static_cast<float>(token / geo.width);
          out[2 * index + 1] = mean_col - static_cast<float>(token % geo.width);
        }
      });
}

// One block per (frame f, tile, chunk of 16 queries): dq of those queries over every pair
// (f, j), j != f.
template <typename T>
__global__ void __launch_bounds__(kQueryBlock, kQueryMinBlocks)
    window_query_gradient_kernel(const T *__restrict__ q, const T *__restrict__ k, int frames, Geometry geo,
                                 int channels, float scale, float scale2, const int32_t *__restrict__ pairs,
                                 int pair_count, int query_chunks, const int32_t *__restrict__ origins,
                                 const float *__restrict__ stats, const float *__restrict__ d_delta,
                                 float *dq) {
  __shared__ amf::GradientShared<kQueries> sh;
  __shared__ amf::QueryGradient queries[kQueries];
  __shared__ float key_row[kOtherRows], key_col[kOtherRows];
  const int tokens = geo.height * geo.width;
  const int chunk = blockIdx.x % query_chunks;
  const int t = (blockIdx.x / query_chunks) % geo.tiles, frame = blockIdx.x / query_chunks / geo.tiles;
  const int ta = threadIdx.x / amf::kLanesB, tb = threadIdx.x % amf::kLanesB;
  const Rect tile = geo.tile(t);
  const int query_index = chunk * kQueries + threadIdx.x;
  const bool own_query = threadIdx.x < kQueries && query_index < tile.rows * tile.cols;
  const int token = own_query ? geo.token_in(tile, query_index) : 0;
  if (threadIdx.x < kQueries)
    sh.a_rows[threadIdx.x] = own_query ? (static_cast<int64_t>(frame) * tokens + token) * channels : -1;

  for (int pair = 0; pair < pair_count; ++pair) {
    const int i = pairs[2 * pair], j = pairs[2 * pair + 1];
    const int64_t entry = static_cast<int64_t>(pair) * geo.tiles + t;
    Rect w;
    if (!windowed_pair(i, j, frames) || i != frame || !geo.window(origins, entry, &w)) continue;
    if (own_query)
      queries[threadIdx.x] = amf::load_query_gradient(stats, d_delta, static_cast<int64_t>(pair) * tokens + token);
    const int keys = w.rows * w.cols;
    for (int key0 = 0; key0 < keys; key0 += kOtherRows) {
      {  // 64 threads: one key each
        const int index = key0 + threadIdx.x;
        const bool valid = index < keys;
        const int row = valid ? w.row0 + index / w.cols : 0, col = valid ? w.col0 + index % w.cols : 0;
        sh.b_rows[threadIdx.x] =
            valid ? (static_cast<int64_t>(j) * tokens + row * geo.width + col) * channels : -1;
        key_row[threadIdx.x] = static_cast<float>(row);
        key_col[threadIdx.x] = static_cast<float>(col);
      }
      __syncthreads();
      float acc[4][4];
      amf::score_tile<T, kQueries>(acc, q, sh.a_rows, k, sh.b_rows, channels, sh.stage.scores);
      for (int x = 0; x < 4; ++x) {
        const int a = ta * 4 + x;
        for (int y = 0; y < 4; ++y) {
          const int b = tb * 4 + y;
          sh.ds[b][a] = (sh.a_rows[a] >= 0 && sh.b_rows[b] >= 0)
                            ? amf::score_gradient(queries[a], acc[x][y] * scale2, key_row[b], key_col[b], scale)
                            : 0.0f;
        }
      }
      amf::add_gradient_product<T, kQueries>(dq, k, channels, sh);
    }
  }
}

// One block per (frame f, key block of 64 tokens): dk of those keys, gathered over every
// pair (i, f), i != f, and every query whose window overlaps the block.
template <typename T>
__global__ void __launch_bounds__(kKeyBlock, amf::kMinBlocks)
    window_key_gradient_kernel(const T *__restrict__ q, const T *__restrict__ k, int frames, Geometry geo,
                               int channels, float scale, float scale2, const int32_t *__restrict__ pairs,
                               int pair_count, int block_h, int block_w, int blocks_w, int blocks_per_frame,
                               const int32_t *__restrict__ origins, const float *__restrict__ stats,
                               const float *__restrict__ d_delta, float *dk) {
  __shared__ amf::GradientShared<kKeys> sh;
  __shared__ amf::QueryGradient queries[kOtherRows];  // the batch: up to 64 queries
  __shared__ Rect query_window[kOtherRows];
  __shared__ float key_row[kKeys], key_col[kKeys];
  const int tokens = geo.height * geo.width;
  const int frame = blockIdx.x / blocks_per_frame, key_block = blockIdx.x % blocks_per_frame;
  const int ta = threadIdx.x / amf::kLanesB, tb = threadIdx.x % amf::kLanesB;
  const int lane = threadIdx.x % 32;
  Rect block = {(key_block / blocks_w) * block_h, (key_block % blocks_w) * block_w, block_h, block_w};
  block.rows = min(block.rows, geo.height - block.row0);
  block.cols = min(block.cols, geo.width - block.col0);
  if (threadIdx.x < kKeys) {
    const bool valid = static_cast<int>(threadIdx.x) < block.rows * block.cols;
    const int row = valid ? block.row0 + threadIdx.x / block.cols : 0;
    const int col = valid ? block.col0 + threadIdx.x % block.cols : 0;
    sh.a_rows[threadIdx.x] =
        valid ? (static_cast<int64_t>(frame) * tokens + row * geo.width + col) * channels : -1;
    key_row[threadIdx.x] = static_cast<float>(row);
    key_col[threadIdx.x] = static_cast<float>(col);
  }

  int batch = 0;  // queries in the batch; every thread keeps the same count
  auto flush_batch = [&]() {
    if (threadIdx.x < kOtherRows && static_cast<int>(threadIdx.x) >= batch) sh.b_rows[threadIdx.x] = -1;
    __syncthreads();
    float acc[4][4];
    amf::score_tile<T, kKeys>(acc, k, sh.a_rows, q, sh.b_rows, channels, sh.stage.scores);
    for (int x = 0; x < 4; ++x) {
      const int a = ta * 4 + x;
      for (int y = 0; y < 4; ++y) {
        const int b = tb * 4 + y;
        const bool in_window = sh.a_rows[a] >= 0 && sh.b_rows[b] >= 0 &&
                               window::contains(query_window[b], static_cast<int>(key_row[a]),
                                                static_cast<int>(key_col[a]));
        sh.ds[b][a] = in_window
                          ? amf::score_gradient(queries[b], acc[x][y] * scale2, key_row[a], key_col[a], scale)
                          : 0.0f;
      }
    }
    amf::add_gradient_product<T, kKeys>(dk, q, channels, sh);
    batch = 0;
  };

  for (int pair = 0; pair < pair_count; ++pair) {
    const int i = pairs[2 * pair], j = pairs[2 * pair + 1];
    if (!windowed_pair(i, j, frames) || j != frame) continue;
    const int64_t entry0 = static_cast<int64_t>(pair) * geo.tiles;
    for (int t0 = 0; t0 < geo.tiles; t0 += 32) {
      // Every warp evaluates the same 32 tiles, so the ballot is uniform across the block.
      Rect w;
      const int t = t0 + lane;
      const bool hit = t < geo.tiles && geo.window(origins, entry0 + t, &w) && window::overlaps(w, block);
      for (unsigned hits = __ballot_sync(0xffffffffu, hit); hits != 0; hits &= hits - 1) {
        const int hit_tile = t0 + __ffs(static_cast<int>(hits)) - 1;
        Rect hit_window;
        geo.window(origins, entry0 + hit_tile, &hit_window);
        const Rect tile = geo.tile(hit_tile);
        const int count = tile.rows * tile.cols;
        for (int done = 0; done < count;) {
          const int take = min(count - done, kOtherRows - batch);
          if (static_cast<int>(threadIdx.x) < take) {
            const int token = geo.token_in(tile, done + threadIdx.x), slot = batch + threadIdx.x;
            sh.b_rows[slot] = (static_cast<int64_t>(i) * tokens + token) * channels;
            queries[slot] = amf::load_query_gradient(stats, d_delta, static_cast<int64_t>(pair) * tokens + token);
            query_window[slot] = hit_window;
          }
          batch += take;
          done += take;
          if (batch == kOtherRows) flush_batch();
        }
      }
    }
  }
  if (batch > 0) flush_batch();
}

struct WindowWorkspace {
  float *stats;  // [pairs, N, 3], the backward's softmax statistics

  static WindowWorkspace carve(WorkspaceLayout &layout, int32_t height, int32_t width, int32_t pair_count) {
    return {layout.take<float>(static_cast<int64_t>(pair_count) * height * width * amf::kStatsPerQuery)};
  }
};

int32_t check_window_arguments(const char *fn, const void *q, const void *k, int32_t dtype, int32_t frames,
                               int32_t height, int32_t width, int32_t channels, int32_t heads, float temperature,
                               int32_t tile_h, int32_t tile_w, int32_t window, const int32_t *pairs,
                               int32_t pair_count) {
  if (int32_t s = check_amf_arguments(fn, q, k, dtype, frames, height, width, channels, heads, temperature, pairs,
                                      pair_count))
    return s;
  return check_window(fn, height, width, tile_h, tile_w, window);
}

template <typename T>
int32_t launch_window_softmax(const char *fn, bool stats, const T *q, const T *k, int32_t frames,
                              const Geometry &geo, int32_t channels, float scale2, const int32_t *pairs,
                              int32_t pair_count, const int32_t *origins, float *out, cudaStream_t stream) {
  const int query_chunks = ceil_div(geo.tile_h * geo.tile_w, kQueries);
  unsigned grid = 0;
  if (int32_t s = grid_size(fn, static_cast<int64_t>(pair_count) * geo.tiles * query_chunks, &grid)) return s;
  if (stats) {
    FVMT_LAUNCH(grid, kQueryBlock, 0, stream, window_softmax_kernel<T, true>)
    (q, k, frames, geo, channels, scale2, pairs, query_chunks, origins, out);
  } else {
    FVMT_LAUNCH(grid, kQueryBlock, 0, stream, window_softmax_kernel<T, false>)
    (q, k, frames, geo, channels, scale2, pairs, query_chunks, origins, out);
  }
  return check_launch(fn, "window_softmax_kernel");
}

template <typename T>
int32_t launch_window_forward(const char *fn, const void *q_in, const void *k_in, int32_t frames,
                              const Geometry &geo, int32_t channels, int32_t heads, float temperature,
                              int32_t window, const int32_t *pairs, int32_t pair_count, float *delta,
                              int32_t *origins, cudaStream_t stream) {
  const T *q = static_cast<const T *>(q_in), *k = static_cast<const T *>(k_in);
  const float scale2 = static_cast<float>(amf::score_scale(channels, heads, temperature) * amf::kLog2e);
  const int centre_tiles = ceil_div(geo.tiles, kCentres);
  unsigned grid = 0;
  if (int32_t s = grid_size(fn, static_cast<int64_t>(pair_count) * centre_tiles, &grid)) return s;
  FVMT_LAUNCH(grid, kCentreBlock, 0, stream, window_centre_kernel<T>)
  (q, k, frames, geo, channels, scale2, window, pairs, centre_tiles, origins);
  if (int32_t s = check_launch(fn, "window_centre_kernel")) return s;
  if (int32_t s = launch_window_softmax<T>(fn, false, q, k, frames, geo, channels, scale2, pairs, pair_count, origins,
                                           delta, stream))
    return s;
  return amf::launch_full_softmax<T, amf::PairSet::kSameFrame>(fn, false, q, k, frames, geo.height, geo.width,
                                                               channels, scale2, pairs, pair_count, delta, stream);
}

template <typename T>
int32_t launch_window_backward(const char *fn, const void *q_in, const void *k_in, int32_t frames,
                               const Geometry &geo, int32_t channels, int32_t heads, float temperature,
                               const int32_t *pairs, int32_t pair_count, const int32_t *origins,
                               const float *d_delta, float *dq, float *dk, const WindowWorkspace &ws,
                               cudaStream_t stream) {
  const T *q = static_cast<const T *>(q_in), *k = static_cast<const T *>(k_in);
  const double score_scale = amf::score_scale(channels, heads, temperature);
  const float scale = static_cast<float>(score_scale);
  const float scale2 = static_cast<float>(score_scale * amf::kLog2e);
  if (int32_t s = launch_window_softmax<T>(fn, true, q, k, frames, geo, channels, scale2, pairs, pair_count, origins,
                                           ws.stats, stream))
    return s;
  if (int32_t s = amf::launch_full_softmax<T, amf::PairSet::kSameFrame>(fn, true, q, k, frames, geo.height, geo.width,
                                                                        channels, scale2, pairs, pair_count, ws.stats,
                                                                        stream))
    return s;
  if (int32_t s = amf::launch_full_gradients<T, amf::PairSet::kSameFrame>(fn, q, k, frames, geo.height, geo.width,
                                                                          channels, scale, scale2, pairs, pair_count,
                                                                          ws.stats, d_delta, dq, dk, stream))
    return s;

  const int query_chunks = ceil_div(geo.tile_h * geo.tile_w, kQueries);
  unsigned grid = 0;
  if (int32_t s = grid_size(fn, static_cast<int64_t>(frames) * geo.tiles * query_chunks, &grid)) return s;
  FVMT_LAUNCH(grid, kQueryBlock, 0, stream, window_query_gradient_kernel<T>)
  (q, k, frames, geo, channels, scale, scale2, pairs, pair_count, query_chunks, origins, ws.stats, d_delta, dq);
  if (int32_t s = check_launch(fn, "window_query_gradient_kernel")) return s;

  const int block_w = geo.width < kKeyBlockWidth ? geo.width : kKeyBlockWidth, block_h = kKeys / block_w;
  const int blocks_w = ceil_div(geo.width, block_w);
  const int blocks_per_frame = ceil_div(geo.height, block_h) * blocks_w;
  if (int32_t s = grid_size(fn, static_cast<int64_t>(frames) * blocks_per_frame, &grid)) return s;
  FVMT_LAUNCH(grid, kKeyBlock, 0, stream, window_key_gradient_kernel<T>)
  (q, k, frames, geo, channels, scale, scale2, pairs, pair_count, block_h, block_w, blocks_w, blocks_per_frame,
   origins, ws.stats, d_delta, dk);
  return check_launch(fn, "window_key_gradient_kernel");
}

}  // namespace
}  // namespace fvmt

using namespace fvmt;

extern "C" FVMT_API size_t fvmt_amf_window_workspace_bytes(int32_t frames, int32_t height, int32_t width,
                                                           int32_t channels, int32_t tile_h, int32_t tile_w,
                                                           int32_t window, int32_t pair_count) {
  if (frames <= 0 || height <= 0 || width <= 0 || channels <= 0 || pair_count <= 0) return 0;
  WorkspaceLayout layout(nullptr);
  WindowWorkspace::carve(layout, height, width, pair_count);
  return layout.bytes();
}

extern "C" FVMT_API int32_t fvmt_amf_window_forward(const void *q, const void *k, int32_t dtype, int32_t frames,
                                                    int32_t height, int32_t width, int32_t channels,
                                                    int32_t heads, float temperature, int32_t tile_h,
                                                    int32_t tile_w, int32_t window, const int32_t *pairs,
                                                    int32_t pair_count, float *delta, int32_t *window_origins,
                                                    void *workspace, size_t workspace_bytes, void *stream) {
  static const char fn[] = "fvmt_amf_window_forward";
  return guarded(fn, [&]() -> int32_t {
    if (int32_t s = check_window_arguments(fn, q, k, dtype, frames, height, width, channels, heads, temperature,
                                           tile_h, tile_w, window, pairs, pair_count))
      return s;
    if (int32_t s = check_pointer(fn, "delta", delta)) return s;
    if (int32_t s = check_pointer(fn, "window_origins", window_origins)) return s;
    if (int32_t s = check_workspace(fn, workspace, workspace_bytes,
                                    fvmt_amf_window_workspace_bytes(frames, height, width, channels, tile_h,
                                                                    tile_w, window, pair_count)))
      return s;
    const Geometry geo = Geometry::make(height, width, tile_h, tile_w, window);
    return dtype == FVMT_DTYPE_BF16
               ? launch_window_forward<__nv_bfloat16>(fn, q, k, frames, geo, channels, heads, temperature, window,
                                                      pairs, pair_count, delta, window_origins, as_stream(stream))
               : launch_window_forward<float>(fn, q, k, frames, geo, channels, heads, temperature, window, pairs,
                                              pair_count, delta, window_origins, as_stream(stream));
  });
}

extern "C" FVMT_API int32_t fvmt_amf_window_backward(const void *q, const void *k, int32_t dtype, int32_t frames,
                                                     int32_t height, int32_t width, int32_t channels,
                                                     int32_t heads, float temperature, int32_t tile_h,
                                                     int32_t tile_w, int32_t window, const int32_t *pairs,
                                                     int32_t pair_count, const int32_t *window_origins,
                                                     const float *d_delta, float *dq, float *dk, void *workspace,
                                                     size_t workspace_bytes, void *stream) {
  static const char fn[] = "fvmt_amf_window_backward";
  return guarded(fn, [&]() -> int32_t {
    if (int32_t s = check_window_arguments(fn, q, k, dtype, frames, height, width, channels, heads, temperature,
                                           tile_h, tile_w, window, pairs, pair_count))
      return s;
    if (int32_t s = check_pointer(fn, "window_origins", window_origins)) return s;
    const int64_t elements = static_cast<int64_t>(frames) * height * width * channels;
    if (int32_t s = check_gradient_outputs(fn, d_delta, dq, dk, elements)) return s;
    if (int32_t s = check_workspace(fn, workspace, workspace_bytes,
                                    fvmt_amf_window_workspace_bytes(frames, height, width, channels, tile_h,
                                                                    tile_w, window, pair_count)))
      return s;
    WorkspaceLayout layout(workspace);
    const WindowWorkspace ws = WindowWorkspace::carve(layout, height, width, pair_count);
    const Geometry geo = Geometry::make(height, width, tile_h, tile_w, window);
    return dtype == FVMT_DTYPE_BF16
               ? launch_window_backward<__nv_bfloat16>(fn, q, k, frames, geo, channels, heads, temperature, pairs,
                                                       pair_count, window_origins, d_delta, dq, dk, ws,
                                                       as_stream(stream))
               : launch_window_backward<float>(fn, q, k, frames, geo, channels, heads, temperature, pairs,
                                               pair_count, window_origins, d_delta, dq, dk, ws, as_stream(stream));
  });
}
