// Deterministic sums over the rows of a [rows, cols] matrix: the gradients of
// per-column vectors (dbias, dgamma, dbeta, dweight, dshift, dscale, dgate).
//
// Rows are cut into FIXED chunks of kRowsPerChunk rows (not one chunk per
// thread). The thread that handles a chunk also does that chunk's row-wise work
// (dx of a norm, say) and adds each row into the chunk's own fp32 partial-sum
// row in the caller's workspace, so x and dy are read from memory once. The
// partials are then added in chunk order, in double. Every sum is therefore
// formed in the same order whatever the number of threads: bit-identical.
// Accuracy: a chunk sums 32 terms in fp32 (error <= 32 * 2^-24 * sum |term|),
// the chunks are summed in double. fp32 partials keep a chunk's partial rows
// (6 KiB each at Wan's 1536 columns) in L1 next to the rows being read; double
// ones measured twice as slow for modulate's backward.
//
// Workspace layout: [kMaxColumnSums, chunks, cols] floats (two sums at most
// per backward: dgamma and dbeta, dshift and dscale).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace fvmt::cpu {

inline constexpr int64_t kRowsPerChunk = 32;
inline constexpr int kMaxColumnSums = 2;

inline int64_t row_chunks(int64_t rows) { return (rows + kRowsPerChunk - 1) / kRowsPerChunk; }

inline size_t column_reduction_bytes(int64_t rows, int32_t cols) {
  if (rows <= 0 || cols <= 0) return 0;
  return static_cast<size_t>(kMaxColumnSums) * static_cast<size_t>(row_chunks(rows)) * static_cast<size_t>(cols) *
         sizeof(float);
}

// The partial sums of up to kMaxColumnSums column vectors over chunks of rows.
class ColumnPartials {
 public:
  ColumnPartials(void *workspace, int64_t rows, int32_t cols)
      : sums_(static_cast<float *>(workspace)), chunks_(row_chunks(rows)), rows_(rows), cols_(cols) {}

  int64_t chunks() const { return chunks_; }
  int64_t chunk_begin(int64_t chunk) const { return chunk * kRowsPerChunk; }
  int64_t chunk_end(int64_t chunk) const { return std::min(rows_, (chunk + 1) * kRowsPerChunk); }

  // The zeroed partial row of sum `which` for `chunk` (called by the chunk's thread).
  float *start(int which, int64_t chunk) {
    float *row = sums_ + (which * chunks_ + chunk) * cols_;
    std::fill(row, row + cols_, 0.0f);
    return row;
  }

  // out[c] += the sum of the partial rows of `which`, in chunk order, in double.
  void finish(int which, float *out) const {
    const float *base = sums_ + which * chunks_ * cols_;
#pragma omp parallel for simd schedule(static)
    for (int32_t c = 0; c < cols_; ++c) {
      double total = 0.0;
      for (int64_t chunk = 0; chunk < chunks_; ++chunk) total += base[chunk * cols_ + c];
      out[c] += static_cast<float>(total);
    }
  }

 private:
  float *sums_;
  int64_t chunks_;
  int64_t rows_;
  int32_t cols_;
};

}  // namespace fvmt::cpu
