// FastVMT's tracking loss over the search windows of the windowed AMF (fastvmt.h).
//
// m(p, t) = mean of K_j over the window of (pair p = (i, j), tile t): a C-vector.
// A couple is a pair p = (i, j) and a pair n = (i, j + 1), both in `pairs`, with i != j and
// i != j + 1. A pair listed several times counts once, through its first occurrence
// (whose window origins are used); repeats take part in no couple.
//     L_i = mean over couples (p, n) of frame i and tiles t of || m(n, t) - m(p, t) ||_2
//     L   = mean of L_i over the frames with at least one couple (0 if none)
// so each couple's term has weight w_p = 1 / (frames_with_couples * couples_of_i * tiles).
// Backward: with d = m(n, t) - m(p, t) and coef = loss_grad * w_p / (|d| * window area)
// (0 when d = 0), every key u of window (p, t) gets dK_j[u] += coef(p', t) d(p', t) - coef(p, t) d(p, t)
// over the couple (p', p) that p ends and the couple (p, n) it starts.
//
// Kernels:
//  - couple_plan_kernel (one block): next[p] / prev[p] (the couple partners, -1 if none) and
//    w_p, found by scanning the pair list (pairs live in device memory; the list is short).
//  - window_mean_kernel: one block per (pair, tile) in a couple; threads over channels, so each
//    window row is read coalesced; summed row by row in a fixed order.
//  - couple_norm_kernel: one block per couple, a warp per tile (shuffle tree over channels);
//    writes w_p * sum_t |d| for the forward, or coef(p, t) for the backward.
//  - reduce::sum_partials_kernel: the loss, in a fixed order.
//  - tracking_key_gradient_kernel: the dK scatter as an owner-computes gather. A block owns one
//    row of frame f, 64 columns x 64 channels, accumulated in shared memory; it walks the pairs
//    (i, f) and tiles in order, keeps those whose window covers its row (warp ballot over 32
//    tiles), and each thread adds the window's gradient into the columns it owns. One read of
//    three means per window and channel, no atomics, deterministic.
#include "entry.cuh"
#include "reduce.cuh"
#include "window.cuh"

namespace fvmt {
namespace {

using window::Geometry;
using window::Rect;

constexpr int kBlock = reduce::kBlock;
constexpr int kMeanBlock = 128;      // threads over channels per window mean
constexpr int kWarps = kBlock / 32;  // tiles in flight per couple_norm_kernel block
constexpr int kColumns = 64;         // columns per tracking_key_gradient_kernel block
constexpr int kChannels = 64;        // channels per tracking_key_gradient_kernel block
constexpr int kPhases = kBlock / kChannels;  // threads per channel: each owns every 4th column

__device__ int first_index_of(const int32_t *pairs, int pair_count, int i, int j) {
  for (int p = 0; p < pair_count; ++p)
    if (pairs[2 * p] == i && pairs[2 * p + 1] == j) return p;
  return -1;
}

__global__ void __launch_bounds__(kBlock)
    couple_plan_kernel(const int32_t *__restrict__ pairs, int pair_count, int frames, int tiles, int32_t *next,
                       int32_t *prev, float *__restrict__ weight) {
  __shared__ int scratch[kBlock];
  for (int p = threadIdx.x; p < pair_count; p += kBlock) {
    const int i = pairs[2 * p], j = pairs[2 * p + 1];
    int n = -1, pv = -1;
    const bool valid = i >= 0 && i < frames && j >= 0 && j < frames && i != j;
    if (valid && first_index_of(pairs, pair_count, i, j) == p) {
      if (j + 1 < frames && i != j + 1) n = first_index_of(pairs, pair_count, i, j + 1);
      if (j - 1 >= 0 && i != j - 1) pv = first_index_of(pairs, pair_count, i, j - 1);
    }
    next[p] = n;
    prev[p] = pv;
  }
  __syncthreads();  // next[] complete (global writes are visible to the block after the barrier)
  // A frame with couples is counted by its first couple.
  int first_couples = 0;
  for (int p = threadIdx.x; p < pair_count; p += kBlock) {
    if (next[p] < 0) continue;
    bool first = true;
    for (int o = 0; o < p && first; ++o) first = !(next[o] >= 0 && pairs[2 * o] == pairs[2 * p]);
    first_couples += first;
  }
  const int frames_with_couples = reduce::block_sum(first_couples, scratch);
  for (int p = threadIdx.x; p < pair_count; p += kBlock) {
    int couples_of_frame = 0;
    if (next[p] >= 0)
      for (int o = 0; o < pair_count; ++o) couples_of_frame += next[o] >= 0 && pairs[2 * o] == pairs[2 * p];
    weight[p] = couples_of_frame > 0
                    ? static_cast<float>(1.0 / (static_cast<double>(frames_with_couples) * couples_of_frame * tiles))
                    : 0.0f;
  }
}

// means[pair, tile, :] for the pairs in a couple; 0 for a window whose origin is out of range.
template <typename T>
__global__ void __launch_bounds__(kMeanBlock)
    window_mean_kernel(const T *__restrict__ k, Geometry geo, int channels, const int32_t *__restrict__ pairs,
                       const int32_t *__restrict__ origins, const int32_t *__restrict__ next,
                       const int32_t *__restrict__ prev, float *__restrict__ means) {
  const int64_t entry = blockIdx.x;
  const int pair = static_cast<int>(entry / geo.tiles);
  if (next[pair] < 0 && prev[pair] < 0) return;
  const int tokens = geo.height * geo.width;
  const int64_t frame_base = static_cast<int64_t>(pairs[2 * pair + 1]) * tokens;
  Rect w;
  const bool in_range = geo.window(origins, entry, &w);
  const float inverse_area = 1.0f / static_cast<float>(geo.window_h * geo.window_w);
  for (int ch = threadIdx.x; ch < channels; ch += kMeanBlock) {
    float total = 0.0f;
    for (int r = 0; in_range && r < w.rows; ++r) {
      const int64_t row_base = (frame_base + static_cast<int64_t>(w.row0 + r) * geo.width + w.col0) * channels + ch;
      float row_sum = 0.0f;
      for (int c = 0; c < w.cols; ++c) row_sum += load_float(k, row_base + static_cast<int64_t>(c) * channels);
      total += row_sum;
    }
    means[entry * channels + ch] = total * inverse_area;
  }
}

// kGradient = false: partials[p] = w_p * sum_t |d(p, t)|. true: coefs[p, t] = coef_scale * w_p / |d(p, t)|.
template <bool kGradient>
__global__ void __launch_bounds__(kBlock)
    couple_norm_kernel(int tiles, int channels, const int32_t *__restrict__ next, const float *__restrict__ weight,
                       const float *__restrict__ means, float coef_scale, float *__restrict__ partials,
                       float *__restrict__ coefs) {
  __shared__ float scratch[kBlock];
  const int pair = blockIdx.x, partner = next[pair];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  float norms = 0.0f;  // this warp's sum of |d| over its tiles
  if (partner >= 0) {
    for (int t = warp; t < tiles; t += kWarps) {
      const float *from = means + (static_cast<int64_t>(pair) * tiles + t) * channels;
      const float *to = means + (static_cast<int64_t>(partner) * tiles + t) * channels;
      float squares = 0.0f;
      for (int ch = lane; ch < channels; ch += 32) {
        const float d = to[ch] - from[ch];
        squares = fmaf(d, d, squares);
      }
      for (int offset = 16; offset > 0; offset /= 2) squares += __shfl_xor_sync(0xffffffffu, squares, offset);
      const float norm = sqrtf(squares);
      if constexpr (kGradient) {
        if (lane == 0)
          coefs[static_cast<int64_t>(pair) * tiles + t] = norm > 0.0f ? coef_scale * weight[pair] / norm : 0.0f;
      } else {
        norms += norm;
      }
    }
  }
  if constexpr (!kGradient) {
    const float total = reduce::block_sum(lane == 0 ? norms : 0.0f, scratch);
    if (threadIdx.x == 0) partials[pair] = weight[pair] * total;
  }
}

// One block per (frame, row, 64-column chunk, 64-channel chunk) of dK.
__global__ void __launch_bounds__(kBlock)
    tracking_key_gradient_kernel(Geometry geo, int channels, const int32_t *__restrict__ pairs,
                                 int pair_count, const int32_t *__restrict__ origins,
                                 const int32_t *__restrict__ next, const int32_t *__restrict__ prev,
                                 const float *__restrict__ means, const float *__restrict__ coefs,
                                 int column_chunks, int channel_chunks, float *dk) {
  __shared__ float acc[kColumns][kChannels];  // acc[c][ch] is owned by thread (ch, c % kPhases)
  const int channel_chunk = blockIdx.x % channel_chunks;
  const int column_chunk = (blockIdx.x / channel_chunks) % column_chunks;
  const int row = (blockIdx.x / channel_chunks / column_chunks) % geo.height;
  const int frame = blockIdx.x / channel_chunks / column_chunks / geo.height;
  const int local_ch = threadIdx.x % kChannels, phase = threadIdx.x / kChannels, lane = threadIdx.x % 32;
  const int ch = channel_chunk * kChannels + local_ch;
  const Rect strip = {row, column_chunk * kColumns, 1, min(kColumns, geo.width - column_chunk * kColumns)};
  for (int c = phase; c < kColumns; c += kPhases) acc[c][local_ch] = 0.0f;

  for (int pair = 0; pair < pair_count; ++pair) {
    const int j = pairs[2 * pair + 1];
    const int partner_next = next[pair], partner_prev = prev[pair];
    if (j != frame || (partner_next < 0 && partner_prev < 0)) continue;  // couples have valid i != j
    const int64_t entry0 = static_cast<int64_t>(pair) * geo.tiles;
    for (int t0 = 0; t0 < geo.tiles; t0 += 32) {
      Rect w;
      const int t = t0 + lane;
      const bool hit = t < geo.tiles && geo.window(origins, entry0 + t, &w) && window::overlaps(w, strip);
      for (unsigned hits = __ballot_sync(0xffffffffu, hit); hits != 0; hits &= hits - 1) {
        const int tile = t0 + __ffs(static_cast<int>(hits)) - 1;
        if (ch >= channels) continue;
        Rect hit_window;
        geo.window(origins, entry0 + tile, &hit_window);
        const float mean = means[(entry0 + tile) * channels + ch];
        float g = 0.0f;
        if (partner_next >= 0) {
          const int64_t to = static_cast<int64_t>(partner_next) * geo.tiles + tile;
          g -= coefs[entry0 + tile] * (means[to * channels + ch] - mean);
        }
        if (partner_prev >= 0) {
          const int64_t from = static_cast<int64_t>(partner_prev) * geo.tiles + tile;
          g += coefs[from] * (mean - means[from * channels + ch]);
        }
        const int begin = max(hit_window.col0, strip.col0) - strip.col0;
        const int end = min(hit_window.col0 + hit_window.cols, strip.col0 + strip.cols) - strip.col0;
        for (int c = begin + (phase - begin % kPhases + kPhases) % kPhases; c < end; c += kPhases)
          acc[c][local_ch] += g;
      }
    }
  }
  if (ch >= channels) return;
  const int64_t row_base = (static_cast<int64_t>(frame) * geo.height + row) * geo.width + strip.col0;
  for (int c = phase; c < strip.cols; c += kPhases) dk[(row_base + c) * channels + ch] += acc[c][local_ch];
}

struct TrackingWorkspace {
  int32_t *next, *prev;  // [pairs] couple partners, -1 if none
  float *weight;         // [pairs] w_p of a couple's first pair, else 0
  float *means;          // [pairs, tiles, C]
  float *partials;       // [pairs] forward: w_p * sum_t |d|
  float *coefs;          // [pairs, tiles] backward: coef(p, t)

  static TrackingWorkspace carve(WorkspaceLayout &layout, int64_t tiles, int32_t channels, int32_t pair_count) {
    TrackingWorkspace ws;
    ws.next = layout.take<int32_t>(pair_count);
    ws.prev = layout.take<int32_t>(pair_count);
    ws.weight = layout.take<float>(pair_count);
    ws.means = layout.take<float>(pair_count * tiles * channels);
    ws.partials = layout.take<float>(pair_count);
    ws.coefs = layout.take<float>(pair_count * tiles);
    return ws;
  }
};

int32_t check_tracking_arguments(const char *fn, const void *k, int32_t dtype, int32_t frames, int32_t height,
                                 int32_t width, int32_t channels, int32_t tile_h, int32_t tile_w, int32_t window,
                                 const int32_t *pairs, int32_t pair_count, const int32_t *window_origins) {
  if (int32_t s = check_dtype(fn, dtype, true)) return s;
  if (int32_t s = check_geometry(fn, frames, height, width, channels)) return s;
  if (int32_t s = check_frame_tokens(fn, height, width)) return s;
  if (int32_t s = check_window(fn, height, width, tile_h, tile_w, window)) return s;
  if (int32_t s = check_pointer(fn, "k", k)) return s;
  if (int32_t s = check_positive(fn, "pair_count", pair_count)) return s;
  if (int32_t s = check_pointer(fn, "pairs", pairs)) return s;
  return check_pointer(fn, "window_origins", window_origins);
}

// The plan and the window means, shared by the forward and the backward.
template <typename T>
int32_t launch_means(const char *fn, const void *k, int32_t frames, const Geometry &geo, int32_t channels,
                     const int32_t *pairs, int32_t pair_count, const int32_t *origins, const TrackingWorkspace &ws,
                     cudaStream_t stream) {
  FVMT_LAUNCH(1, kBlock, 0, stream, couple_plan_kernel)
  (pairs, pair_count, frames, geo.tiles, ws.next, ws.prev, ws.weight);
  if (int32_t s = check_launch(fn, "couple_plan_kernel")) return s;
  unsigned grid = 0;
  if (int32_t s = grid_size(fn, static_cast<int64_t>(pair_count) * geo.tiles, &grid)) return s;
  FVMT_LAUNCH(grid, kMeanBlock, 0, stream, window_mean_kernel<T>)
  (static_cast<const T *>(k), geo, channels, pairs, origins, ws.next, ws.prev, ws.means);
  return check_launch(fn, "window_mean_kernel");
}

int32_t launch_means(const char *fn, const void *k, int32_t dtype, int32_t frames, const Geometry &geo,
                     int32_t channels, const int32_t *pairs, int32_t pair_count, const int32_t *origins,
                     const TrackingWorkspace &ws, cudaStream_t stream) {
  return dtype == FVMT_DTYPE_BF16
             ? launch_means<__nv_bfloat16>(fn, k, frames, geo, channels, pairs, pair_count, origins, ws, stream)
             : launch_means<float>(fn, k, frames, geo, channels, pairs, pair_count, origins, ws, stream);
}

}  // namespace
}  // namespace fvmt

using namespace fvmt;

extern "C" FVMT_API size_t fvmt_tracking_loss_workspace_bytes(int32_t frames, int32_t height, int32_t width,
                                                              int32_t channels, int32_t tile_h, int32_t tile_w,
                                                              int32_t pair_count) {
  if (frames <= 0 || height <= 0 || width <= 0 || channels <= 0 || tile_h <= 0 || tile_w <= 0 || pair_count <= 0)
    return 0;
  WorkspaceLayout layout(nullptr);
  TrackingWorkspace::carve(layout, tiles_along(height, tile_h) * tiles_along(width, tile_w), channels, pair_count);
  return layout.bytes();
}

extern "C" FVMT_API int32_t fvmt_tracking_loss_forward(const void *k, int32_t dtype, int32_t frames,
                                                       int32_t height, int32_t width, int32_t channels,
                                                       int32_t tile_h, int32_t tile_w, int32_t window,
                                                       const int32_t *pairs, int32_t pair_count,
                                                       const int32_t *window_origins, float *loss, void *workspace,
                                                       size_t workspace_bytes, void *stream) {
  static const char fn[] = "fvmt_tracking_loss_forward";
  return guarded(fn, [&]() -> int32_t {
    if (int32_t s = check_tracking_arguments(fn, k, dtype, frames, height, width, channels, tile_h, tile_w, window,
                                             pairs, pair_count, window_origins))
      return s;
    if (int32_t s = check_pointer(fn, "loss", loss)) return s;
    if (int32_t s = check_workspace(fn, workspace, workspace_bytes,
                                    fvmt_tracking_loss_workspace_bytes(frames, height, width, channels, tile_h,
                                                                       tile_w, pair_count)))
      return s;
    const Geometry geo = Geometry::make(height, width, tile_h, tile_w, window);
    WorkspaceLayout layout(workspace);
    const TrackingWorkspace ws = TrackingWorkspace::carve(layout, geo.tiles, channels, pair_count);
    const cudaStream_t s = as_stream(stream);
    if (int32_t status = launch_means(fn, k, dtype, frames, geo, channels, pairs, pair_count, window_origins, ws, s))
      return status;
    FVMT_LAUNCH(pair_count, kBlock, 0, s, couple_norm_kernel<false>)
    (geo.tiles, channels, ws.next, ws.weight, ws.means, 0.0f, ws.partials, ws.coefs);
    if (int32_t status = check_launch(fn, "couple_norm_kernel")) return status;
    FVMT_LAUNCH(1, kBlock, 0, s, reduce::sum_partials_kernel<double>)(ws.partials, pair_count, 1.0, loss);
    return check_launch(fn, "sum_partials_kernel");
  });
}

extern "C" FVMT_API int32_t fvmt_tracking_loss_backward(const void *k, int32_t dtype, int32_t frames,
                                                        int32_t height, int32_t width, int32_t channels,
                                                        int32_t tile_h, int32_t tile_w, int32_t window,
                                                        const int32_t *pairs, int32_t pair_count,
                                                        const int32_t *window_origins, float loss_grad, float *dk,
                                                        void *workspace, size_t workspace_bytes, void *stream) {
  static const char fn[] = "fvmt_tracking_loss_backward";
  return guarded(fn, [&]() -> int32_t {
    if (int32_t s = check_tracking_arguments(fn, k, dtype, frames, height, width, channels, tile_h, tile_w, window,
                                             pairs, pair_count, window_origins))
      return s;
    if (int32_t s = check_pointer(fn, "dk", dk)) return s;
    if (int32_t s = check_workspace(fn, workspace, workspace_bytes,
                                    fvmt_tracking_loss_workspace_bytes(frames, height, width, channels, tile_h,
                                                                       tile_w, pair_count)))
      return s;
    const Geometry geo = Geometry::make(height, width, tile_h, tile_w, window);
    WorkspaceLayout layout(workspace);
    const TrackingWorkspace ws = TrackingWorkspace::carve(layout, geo.tiles, channels, pair_count);
    const cudaStream_t s = as_stream(stream);
    if (int32_t status = launch_means(fn, k, dtype, frames, geo, channels, pairs, pair_count, window_origins, ws, s))
      return status;
    const float coef_scale = static_cast<float>(static_cast<double>(loss_grad) / (geo.window_h * geo.window_w));
    FVMT_LAUNCH(pair_count, kBlock, 0, s, couple_norm_kernel<true>)
    (geo.tiles, channels, ws.next, ws.weight, ws.means, coef_scale, ws.partials, ws.coefs);
    if (int32_t status = check_launch(fn, "couple_norm_kernel")) return status;
    const int column_chunks = (width + kColumns - 1) / kColumns;
    const int channel_chunks = (channels + kChannels - 1) / kChannels;
    unsigned grid = 0;
    if (int32_t status = grid_size(
            fn, static_cast<int64_t>(frames) * height * column_chunks * channel_chunks, &grid))
      return status;
    FVMT_LAUNCH(grid, kBlock, 0, s, tracking_key_gradient_kernel)
    (geo, channels, pairs, pair_count, window_origins, ws.next, ws.prev, ws.means, ws.coefs, column_chunks,
     channel_chunks, dk);
    return check_launch(fn, "tracking_key_gradient_kernel");
  });
}
