// Tiles of a query frame and search windows of FastVMT's windowed AMF (fastvmt.h), shared
// by amf_window.cu and tracking_loss.cu.
//  - Frame i is cut into tiles of tile_h x tile_w tokens, row-major, tiles_w per row;
//    border tiles are partial.
//  - The window of (pair p, tile t) is window_h x window_w = min(window, H) x min(window, W)
//    tokens of frame j at window_origins[p, t] = (row0, col0) (a pair with i == j attends to
//    the whole frame instead; amf_window.cu runs those pairs through full_attention.cuh).
//  - An origin that would put the window outside the frame is refused (the caller skips
//    the entry), so no kernel reads or writes out of bounds on bad input.
#pragma once

#include <cstdint>

#include "portable.cuh"

namespace fvmt::window {

// Rows [row0, row0 + rows) x columns [col0, col0 + cols).
struct Rect {
  int row0, col0, rows, cols;
};

struct Geometry {
  int height, width, tile_h, tile_w, tiles_w, tiles, window_h, window_w;

  static Geometry make(int height, int width, int tile_h, int tile_w, int window) {
    const int tiles_h = (height + tile_h - 1) / tile_h, tiles_w = (width + tile_w - 1) / tile_w;
    return {height,          width,
            tile_h,          tile_w,
            tiles_w,         tiles_h * tiles_w,
            window < height ? window : height, window < width ? window : width};
  }

  __device__ __forceinline__ Rect tile(int t) const {
    const int row0 = (t / tiles_w) * tile_h, col0 = (t % tiles_w) * tile_w;
    return {row0, col0, min(tile_h, height - row0), min(tile_w, width - col0)};
  }

  // The token at the tile's centre (row0 + rows/2, col0 + cols/2), as an index in its frame.
  __device__ __forceinline__ int tile_centre(int t) const {
    const Rect r = tile(t);
    return (r.row0 + r.rows / 2) * width + r.col0 + r.cols / 2;
  }

  // The token at position `index` (row-major) of rectangle r, as an index in its frame.
  __device__ __forceinline__ int token_in(const Rect &r, int index) const {
    return (r.row0 + index / r.cols) * width + r.col0 + index % r.cols;
  }

  // The window of entry = pair * tiles + tile of a pair with i != j; false when its stored
  // origin is out of range.
  __device__ __forceinline__ bool window(const int32_t *origins, int64_t entry, Rect *out) const {
    const int row0 = origins[2 * entry], col0 = origins[2 * entry + 1];
    *out = {row0, col0, window_h, window_w};
    return row0 >= 0 && row0 <= height - window_h && col0 >= 0 && col0 <= width - window_w;
  }
};

__device__ __forceinline__ bool contains(const Rect &r, int row, int col) {
  return row >= r.row0 && row < r.row0 + r.rows && col >= r.col0 && col < r.col0 + r.cols;
}

__device__ __forceinline__ bool overlaps(const Rect &a, const Rect &b) {
  return a.row0 < b.row0 + b.rows && b.row0 < a.row0 + a.rows && a.col0 < b.col0 + b.cols &&
         b.col0 < a.col0 + a.cols;
}

}  // namespace fvmt::window
