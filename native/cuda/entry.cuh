// Host-side plumbing shared by the entry points of native/cuda/*.cu:
//  - guarded(): the C boundary. Clears the last error, runs the body and turns any
//    C++ exception into a status, so nothing escapes into the JVM.
//  - WorkspaceLayout: carves typed arrays out of the caller's workspace. The
//    *_workspace_bytes functions walk the same layout with a NULL base, so the size
//    they report is exactly what the launchers use.
//  - grid_size(): a 1-D grid of int64 blocks, refused (not truncated) when it does
//    not fit CUDA's 2^31 - 1 limit.
//  - stride_grid(), aligned16(): the capped grid of a grid-stride loop, float4 alignment.
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <new>

#include "portable.cuh"
#include "validate.hpp"

namespace fvmt {

template <class Body>
int32_t guarded(const char *fn, Body &&body) noexcept {
  clear_error();
  try {
    return body();
  } catch (const std::bad_alloc &) {
    return fail(FVMT_ERR_OUT_OF_MEMORY, "%s: out of host memory", fn);
  } catch (const std::exception &error) {
    return fail(FVMT_ERR_INTERNAL, "%s: %s", fn, error.what());
  } catch (...) {
    return fail(FVMT_ERR_INTERNAL, "%s: unknown C++ exception", fn);
  }
}

inline cudaStream_t as_stream(void *stream) { return static_cast<cudaStream_t>(stream); }

class WorkspaceLayout {
 public:
  explicit WorkspaceLayout(void *base) : base_(static_cast<char *>(base)) {}

  // The next array of `count` elements, 256-byte aligned from the base (NULL while sizing).
  template <typename E>
  E *take(int64_t count) {
    used_ = (used_ + 255) / 256 * 256;
    E *array = base_ == nullptr ? nullptr : reinterpret_cast<E *>(base_ + used_);
    used_ += static_cast<size_t>(count) * sizeof(E);
    return array;
  }

  size_t bytes() const { return used_; }

 private:
  char *base_;
  size_t used_ = 0;
};

// Blocks of a 1-D grid; FVMT_ERR_INVALID_ARGUMENT when CUDA cannot launch that many.
inline int32_t grid_size(const char *fn, int64_t blocks, unsigned *grid) {
  if (blocks > 2147483647LL)
    return fail(FVMT_ERR_INVALID_ARGUMENT, "%s: the shapes need %lld thread blocks, more than one launch allows",
                fn, static_cast<long long>(blocks));
  *grid = static_cast<unsigned>(blocks);
  return FVMT_OK;
}

// Blocks of a grid-stride loop over `items` with `block` threads each: one per `block` items,
// at most `max_blocks` (the loop covers the rest).
inline unsigned stride_grid(int64_t items, int block, int64_t max_blocks) {
  const int64_t blocks = (items + block - 1) / block;
  return static_cast<unsigned>(blocks < max_blocks ? blocks : max_blocks);
}

// 16-byte alignment, which float4 access needs. NULL counts as aligned: an absent array is
// never loaded.
inline bool aligned16(const void *p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// Token indices within a frame are int32 inside the kernels; the limit and the sentence
// are the cpu build's, so that both refuse the same frames alike.
inline int32_t check_frame_tokens(const char *fn, int32_t height, int32_t width) {
  const int64_t tokens = static_cast<int64_t>(height) * width;
  if (tokens >= (int64_t{1} << 27))
    return fail(FVMT_ERR_INVALID_ARGUMENT, "%s: height x width = %lld tokens per frame is too large (limit 2^27)",
                fn, static_cast<long long>(tokens));
  return FVMT_OK;
}

// The scalar and pointer arguments every AMF entry point shares, checked in the cpu build's order.
inline int32_t check_amf_arguments(const char *fn, const void *q, const void *k, int32_t dtype, int32_t frames,
                                   int32_t height, int32_t width, int32_t channels, int32_t heads,
                                   float temperature, const int32_t *pairs, int32_t pair_count) {
  if (int32_t s = check_dtype(fn, dtype, true)) return s;
  if (int32_t s = check_geometry(fn, frames, height, width, channels)) return s;
  if (int32_t s = check_frame_tokens(fn, height, width)) return s;
  if (int32_t s = check_attention(fn, channels, heads, temperature)) return s;
  if (int32_t s = check_pointer(fn, "q", q)) return s;
  if (int32_t s = check_pointer(fn, "k", k)) return s;
  if (int32_t s = check_positive(fn, "pair_count", pair_count)) return s;
  return check_pointer(fn, "pairs", pairs);
}

// d_delta, dq and dk of an AMF backward; dq and dk ([F, H, W, C] each) must be disjoint.
inline int32_t check_gradient_outputs(const char *fn, const float *d_delta, const float *dq, const float *dk,
                                      int64_t elements) {
  if (int32_t s = check_pointer(fn, "d_delta", d_delta)) return s;
  if (int32_t s = check_pointer(fn, "dq", dq)) return s;
  if (int32_t s = check_pointer(fn, "dk", dk)) return s;
  if (dq < dk + elements && dk < dq + elements)
    return fail(FVMT_ERR_INVALID_ARGUMENT, "%s: dq and dk must not overlap", fn);
  return FVMT_OK;
}

}  // namespace fvmt
