// Windowed attention motion flow (FastVMT's sliding window), CPU.
//
// Pair (i, j) with i == j: full attention (amf_full.cpp), window origins (0, 0).
// Pair with i != j: frame i is cut into tile_h x tile_w tiles (border tiles
// partial). For the tile rows [r0, r0+eh) x cols [c0, c0+ew):
//   pass 1  its centre (r0 + eh/2, c0 + ew/2) attends to all of frame j; the
//           expected position (er, ec) rounded as floor(x + 0.5) centres the
//           window: row0 = clamp(round(er) - window/2, 0, H - lh), lh = min(window, H),
//           likewise col0 (W, lw)                     -> window_origins[pair, tile]
//   pass 2  each query of the tile attends to the lh x lw window only, and
//           delta = E_window - own position           -> delta[pair, r, c]
// Backward: the gradient of pass 2 in the given windows (pass 1 has none).
//
// Why it is fast: a tile (3 x 4 = 12 queries) is exactly one query block of the
// shared engine (attention.hpp), so pass 2 runs the same register-blocked score
// micro-kernel as the full AMF, over the window's 21 x 21 keys; pass 1 batches
// 12 tile centres per block. Its backward computes dS per tile, dQ per tile
// (each tile owns its queries) and dK as an owner-computes gather: a task owns
// one row of frame j and walks the tiles in order, adding each one whose window
// covers that row, so overlapping windows need no atomics and the result is
// bit-identical for any thread count.
#include <cmath>
#include <vector>

#include "attention.hpp"
#include "fastvmt.h"
#include "validate.hpp"

using namespace fvmt;
using namespace fvmt::cpu;

namespace {

struct TileGrid {
  int height, width, tile_h, tile_w, tiles_h, tiles_w;
  int count() const { return tiles_h * tiles_w; }
  int row0(int tile) const { return tile / tiles_w * tile_h; }
  int col0(int tile) const { return tile % tiles_w * tile_w; }
  int rows(int tile) const { return std::min(tile_h, height - row0(tile)); }
  int cols(int tile) const { return std::min(tile_w, width - col0(tile)); }
  int centre_token(int tile) const {
    return (row0(tile) + rows(tile) / 2) * width + col0(tile) + cols(tile) / 2;
  }
  // The tile holding a token (a centre token gives back its own tile).
  int tile_of(int token) const { return token / width / tile_h * tiles_w + token % width / tile_w; }
};

TileGrid tile_grid(int height, int width, int tile_h, int tile_w) {
  return {height, width, tile_h, tile_w, static_cast<int>(tiles_along(height, tile_h)),
          static_cast<int>(tiles_along(width, tile_w))};
}

// clamp(floor(expected + 0.5) - window/2, 0, extent - min(window, extent)),
// computed in float so that a NaN expectation still yields a window inside the frame.
int window_origin(float expected, int extent, int window) {
  const float origin = std::floor(expected + 0.5f) - static_cast<float>(window / 2);
  const int last = extent - std::min(window, extent);
  if (!(origin > 0.0f)) return 0;
  return origin < static_cast<float>(last) ? static_cast<int>(origin) : last;
}

// The query blocks of one tile (its tokens row-major, kQueryBlock at a time).
void tile_blocks(const TileGrid &grid, int tile, const Window &keys, std::vector<Block> &out) {
  const int r0 = grid.row0(tile), c0 = grid.col0(tile), rows = grid.rows(tile), cols = grid.cols(tile);
  Block block{};
  block.keys = keys;
  for (int n = 0; n < rows * cols; ++n) {
    block.tokens[block.count++] = (r0 + n / cols) * grid.width + c0 + n % cols;
    if (block.count == kQueryBlock || n + 1 == rows * cols) {
      out.push_back(block);
      block.count = 0;
    }
  }
}

// The pass-2 blocks of pair p (i != j) in the windows of `origins`.
void window_blocks(const TileGrid &grid, int window, const int32_t *origins, std::vector<Block> &out) {
  const int lh = std::min(window, grid.height), lw = std::min(window, grid.width);
  for (int tile = 0; tile < grid.count(); ++tile)
    tile_blocks(grid, tile, {origins[2 * tile], origins[2 * tile + 1], lh, lw}, out);
}

}  // namespace

extern "C" FVMT_API size_t fvmt_amf_window_workspace_bytes(int32_t, int32_t, int32_t, int32_t, int32_t, int32_t,
                                                           int32_t, int32_t) {
  return 0;
}

extern "C" FVMT_API int32_t fvmt_amf_window_forward(const void *q, const void *k, int32_t dtype, int32_t frames,
                                                    int32_t height, int32_t width, int32_t channels, int32_t heads,
                                                    float temperature, int32_t tile_h, int32_t tile_w,
                                                    int32_t window, const int32_t *pairs, int32_t pair_count,
                                                    float *delta, int32_t *window_origins, void *workspace,
                                                    size_t workspace_bytes, void *) {
  static constexpr char fn[] = "fvmt_amf_window_forward";
  return run_guarded(fn, [&]() -> int32_t {
    if (int32_t s = check_amf_arguments(fn, q, k, dtype, frames, height, width, channels, heads, temperature,
                                        pairs, pair_count, workspace, workspace_bytes))
      return s;
    if (int32_t s = check_window(fn, height, width, tile_h, tile_w, window)) return s;
    if (int32_t s = check_pointer(fn, "delta", delta)) return s;
    if (int32_t s = check_pointer(fn, "window_origins", window_origins)) return s;
    const AmfProblem problem{static_cast<const float *>(q), static_cast<const float *>(k), frames, height, width,
                             channels, score_scale(channels, heads, temperature)};
    const TileGrid grid = tile_grid(height, width, tile_h, tile_w);
    const int64_t tokens = problem.tokens();

    // Pass 1: 12 tile centres per block against all of frame j -> window origins.
    std::vector<Job> jobs;
    for (int p = 0; p < pair_count; ++p) {
      const int i = pairs[2 * p], j = pairs[2 * p + 1];
      int32_t *origins = window_origins + 2 * static_cast<int64_t>(p) * grid.count();
      if (i == j) {
        std::fill(origins, origins + 2 * grid.count(), 0);
        continue;
      }
      for (int t0 = 0; t0 < grid.count(); t0 += kQueryBlock) {
        Job job{p, i, j, {}};
        job.block.count = std::min(kQueryBlock, grid.count() - t0);
        for (int n = 0; n < job.block.count; ++n) job.block.tokens[n] = grid.centre_token(t0 + n);
        job.block.keys = {0, 0, height, width};
        jobs.push_back(job);
      }
    }
    block_expectations(problem, jobs, problem.tokens(), [&](const Job &job, const float *expected) {
      int32_t *origins = window_origins + 2 * static_cast<int64_t>(job.pair) * grid.count();
      for (int n = 0; n < job.block.count; ++n) {
        const int tile = grid.tile_of(job.block.tokens[n]);
        origins[2 * tile] = window_origin(expected[2 * n], height, window);
        origins[2 * tile + 1] = window_origin(expected[2 * n + 1], width, window);
      }
    });

    // Pass 2 (and the full attention of the pairs with i == j).
    jobs.clear();
    std::vector<Block> blocks;
    for (int p = 0; p < pair_count; ++p) {
      const int i = pairs[2 * p], j = pairs[2 * p + 1];
      blocks.clear();
      if (i == j)
        full_blocks(height, width, blocks);
      else
        window_blocks(grid, window, window_origins + 2 * static_cast<int64_t>(p) * grid.count(), blocks);
      for (const Block &block : blocks) jobs.push_back({p, i, j, block});
    }
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

extern "C" FVMT_API int32_t fvmt_amf_window_backward(const void *q, const void *k, int32_t dtype, int32_t frames,
                                                     int32_t height, int32_t width, int32_t channels,
                                                     int32_t heads, float temperature, int32_t tile_h,
                                                     int32_t tile_w, int32_t window, const int32_t *pairs,
                                                     int32_t pair_count, const int32_t *window_origins,
                                                     const float *d_delta, float *dq, float *dk, void *workspace,
                                                     size_t workspace_bytes, void *) {
  static constexpr char fn[] = "fvmt_amf_window_backward";
  return run_guarded(fn, [&]() -> int32_t {
    if (int32_t s = check_amf_arguments(fn, q, k, dtype, frames, height, width, channels, heads, temperature,
                                        pairs, pair_count, workspace, workspace_bytes))
      return s;
    if (int32_t s = check_window(fn, height, width, tile_h, tile_w, window)) return s;
    if (int32_t s = check_window_origins(fn, window_origins, pair_count, height, width, tile_h, tile_w, window))
      return s;
    const AmfProblem problem{static_cast<const float *>(q), static_cast<const float *>(k), frames, height, width,
                             channels, score_scale(channels, heads, temperature)};
    const int64_t tokens = problem.tokens();
    if (int32_t s = check_gradient_outputs(fn, d_delta, dq, dk, frames * tokens * channels)) return s;
    const TileGrid grid = tile_grid(height, width, tile_h, tile_w);
    std::vector<Block> whole_frame, windows;
    full_blocks(height, width, whole_frame);
    PairBackward backward(problem, dq, dk);
    for (int p = 0; p < pair_count; ++p) {
      const int i = pairs[2 * p], j = pairs[2 * p + 1];
      const float *pair_d_delta = d_delta + 2 * p * tokens;
      if (i == j) {
        backward.add_pair(i, j, whole_frame, true, pair_d_delta);
      } else {
        windows.clear();
        window_blocks(grid, window, window_origins + 2 * static_cast<int64_t>(p) * grid.count(), windows);
        backward.add_pair(i, j, windows, false, pair_d_delta);
      }
    }
    return FVMT_OK;
  });
}
