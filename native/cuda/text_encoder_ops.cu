// Text encoder ops, CUDA (fastvmt.h, "Text encoder ops"), forward only:
//   product      y[i] = a[i] b[i]                      (T5's gated-GELU FFN)
//   embedding    out[t, :] = table[ids[t], :]           (fp32 or bf16 table -> fp32 rows)
//   attention    out_i = sum_j softmax_j(scale q_i.k_j + rel_bias[h, j - i + q_tokens - 1]) v_j
//                over the keys with key_mask[j] != 0, per head; q, out [q_tokens, heads, head_dim],
//                k, v [kv_tokens, heads, head_dim]
// Kernels:
//  - mul_kernel: a grid-stride loop, float4 when every pointer is 16-byte aligned.
//  - embedding_kernel: one block per token copies (or widens, bf16) its table row with
//    coalesced loads; a bad id zeroes the row and records its position in a device flag
//    (atomicMax of count - t, so the first bad position wins), which the launcher copies
//    back: the host sees the same error as the cpu build's.
//  - relative_attention_kernel: one block (4 warps) per (head, query). q_i and the fp32
//    accumulator (head_dim each) live in shared memory, so any head_dim up to 4096 fits in
//    33 KiB. Keys stream in chunks of 128: each warp scores every 4th key of the chunk
//    (lanes split head_dim, so a key row is read coalesced, then a shuffle reduction),
//    the chunk's scores become probabilities under the running max (online softmax: the
//    accumulator and the running sum are rescaled when the max grows), and the threads,
//    split over head_dim, add p_j v_j with coalesced reads of V. Nothing of size
//    q_tokens x kv_tokens is stored. Every sum runs in a fixed order: deterministic.
//    Why this shape: T5's attention is small (512 tokens, head_dim 64) next to its
//    GEMMs, so a simple SIMT kernel that reads K and V once per (head, query) from L2 is
//    enough; it needs no tiling by head_dim and so takes any head width.
#include <cmath>

#include "entry.cuh"
#include "text_encoder_checks.hpp"

namespace fvmt {
namespace {

constexpr int kBlock = 256;
constexpr int64_t kMaxBlocks = 4096;  // the grid-stride loop covers the rest
constexpr int kAttentionThreads = 128;
constexpr int kAttentionWarps = kAttentionThreads / 32;
constexpr int kChunk = 128;  // keys per step of the online softmax
constexpr int kMaxHeadDim = 4096;

template <bool kVector>
__global__ void __launch_bounds__(kBlock) mul_kernel(const float *a, const float *b, float *y, int64_t n) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * kBlock;
  const int64_t first = static_cast<int64_t>(blockIdx.x) * kBlock + threadIdx.x;
  int64_t done = 0;
  if constexpr (kVector) {
    const int64_t groups = n / 4;
    for (int64_t g = first; g < groups; g += stride) {
      const float4 x = reinterpret_cast<const float4 *>(a)[g];
      const float4 z = reinterpret_cast<const float4 *>(b)[g];
      reinterpret_cast<float4 *>(y)[g] = make_float4(x.x * z.x, x.y * z.y, x.z * z.z, x.w * z.w);
    }
    done = groups * 4;
  }
  for (int64_t e = done + first; e < n; e += stride) y[e] = a[e] * b[e];
}

// kBf16: the table holds bf16 (the upper halves of fp32), else fp32.
template <bool kBf16>
__global__ void __launch_bounds__(kBlock)
    embedding_kernel(const int32_t *__restrict__ ids, int32_t count, const void *__restrict__ table, int32_t vocab,
                     int32_t dim, float *__restrict__ out, int32_t *__restrict__ bad) {
  const int32_t t = static_cast<int32_t>(blockIdx.x);
  const int32_t id = ids[t];
  float *row = out + static_cast<int64_t>(t) * dim;
  if (id < 0 || id >= vocab) {
    for (int32_t c = threadIdx.x; c < dim; c += kBlock) row[c] = 0.0f;
    if (threadIdx.x == 0) atomicMax(bad, count - t);
    return;
  }
  const int64_t base = static_cast<int64_t>(id) * dim;
  for (int32_t c = threadIdx.x; c < dim; c += kBlock) {
    if constexpr (kBf16) {
      row[c] = __uint_as_float(static_cast<unsigned>(static_cast<const uint16_t *>(table)[base + c]) << 16);
    } else {
      row[c] = static_cast<const float *>(table)[base + c];
    }
  }
}

__device__ __forceinline__ float warp_sum(float x) {
  FVMT_UNROLL(5)
  for (int offset = 16; offset > 0; offset >>= 1) x += __shfl_xor_sync(0xffffffffu, x, offset);
  return x;
}

// Dynamic shared memory: q_i [head_dim], accumulator [head_dim], chunk scores [kChunk].
__global__ void __launch_bounds__(kAttentionThreads)
    relative_attention_kernel(const float *__restrict__ q, const float *__restrict__ k, const float *__restrict__ v,
                              const float *__restrict__ rel_bias, const int32_t *__restrict__ key_mask,
                              int32_t q_tokens, int32_t kv_tokens, int32_t heads, int32_t head_dim, float scale,
                              float *__restrict__ out) {
  FVMT_DYNAMIC_SHARED(float, shared);
  float *q_row = shared;
  float *acc = shared + head_dim;
  float *chunk = shared + 2 * head_dim;
  const int32_t h = static_cast<int32_t>(blockIdx.x / static_cast<unsigned>(q_tokens));
  const int32_t i = static_cast<int32_t>(blockIdx.x % static_cast<unsigned>(q_tokens));
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int64_t row_stride = static_cast<int64_t>(heads) * head_dim;
  const int64_t head_offset = static_cast<int64_t>(h) * head_dim;
  const float *bias = rel_bias != nullptr
                          ? rel_bias + static_cast<int64_t>(h) * (q_tokens + kv_tokens - 1) + (q_tokens - 1 - i)
                          : nullptr;  // bias[j] is rel_bias[h, j - i + q_tokens - 1]
  for (int d = tid; d < head_dim; d += kAttentionThreads) {
    q_row[d] = q[i * row_stride + head_offset + d];
    acc[d] = 0.0f;
  }
  __syncthreads();
  // Every thread keeps the same running max and sum: each is computed from shared values
  // in the same order by all threads.
  float running_max = -INFINITY, sum = 0.0f;
  for (int32_t j0 = 0; j0 < kv_tokens; j0 += kChunk) {
    const int n = kv_tokens - j0 < kChunk ? kv_tokens - j0 : kChunk;
    for (int c = warp; c < n; c += kAttentionWarps) {
      const int32_t j = j0 + c;
      if (key_mask != nullptr && key_mask[j] == 0) {  // uniform in the warp
        if (lane == 0) chunk[c] = -INFINITY;
        continue;
      }
      const float *kj = k + j * row_stride + head_offset;
      float dot = 0.0f;
      for (int d = lane; d < head_dim; d += 32) dot += q_row[d] * kj[d];
      dot = warp_sum(dot);
      if (lane == 0) chunk[c] = scale * dot + (bias != nullptr ? bias[j] : 0.0f);
    }
    __syncthreads();
    float chunk_max = -INFINITY;
    for (int c = 0; c < n; ++c) chunk_max = fmaxf(chunk_max, chunk[c]);
    if (chunk_max == -INFINITY) {  // every key of the chunk is masked (the same in all threads)
      __syncthreads();
      continue;
    }
    const float new_max = fmaxf(running_max, chunk_max);
    const float correction = running_max == -INFINITY ? 0.0f : expf(running_max - new_max);
    __syncthreads();  // all threads have read the scores before they become probabilities
    for (int c = tid; c < n; c += kAttentionThreads) chunk[c] = chunk[c] == -INFINITY ? 0.0f : expf(chunk[c] - new_max);
    __syncthreads();
    float chunk_sum = 0.0f;
    for (int c = 0; c < n; ++c) chunk_sum += chunk[c];
    sum = sum * correction + chunk_sum;
    running_max = new_max;
    for (int d = tid; d < head_dim; d += kAttentionThreads) {
      float a = acc[d] * correction;
      const float *vd = v + static_cast<int64_t>(j0) * row_stride + head_offset + d;
      for (int c = 0; c < n; ++c) a += chunk[c] * vd[c * row_stride];
      acc[d] = a;
    }
    __syncthreads();  // the chunk buffer is rewritten next
  }
  const float inverse = sum > 0.0f ? 1.0f / sum : 0.0f;  // all keys masked: out_i = 0
  float *oi = out + i * row_stride + head_offset;
  for (int d = tid; d < head_dim; d += kAttentionThreads) oi[d] = acc[d] * inverse;
}

int32_t check_cuda(const char *fn, const char *what, cudaError_t error) {
  if (error != cudaSuccess) return fail(FVMT_ERR_DEVICE, "%s: %s failed: %s", fn, what, cudaGetErrorString(error));
  return FVMT_OK;
}

size_t embedding_workspace() {
  WorkspaceLayout layout(nullptr);
  layout.take<int32_t>(1);
  return layout.bytes();
}

}  // namespace
}  // namespace fvmt

using namespace fvmt;

extern "C" FVMT_API int32_t fvmt_mul_forward(const float *a, const float *b, int64_t n, float *y, void *stream) {
  static constexpr char fn[] = "fvmt_mul_forward";
  return guarded(fn, [&]() -> int32_t {
    if (int32_t s = text::check_mul(fn, a, b, n, y)) return s;
    if (n == 0) return FVMT_OK;
    const bool vector = reinterpret_cast<uintptr_t>(a) % 16 == 0 && reinterpret_cast<uintptr_t>(b) % 16 == 0 &&
                        reinterpret_cast<uintptr_t>(y) % 16 == 0;
    const int64_t items = vector ? (n + 3) / 4 : n;
    const int64_t blocks = (items + kBlock - 1) / kBlock;
    const unsigned grid = static_cast<unsigned>(blocks < kMaxBlocks ? blocks : kMaxBlocks);
    if (vector) {
      FVMT_LAUNCH(grid, kBlock, 0, as_stream(stream), mul_kernel<true>)(a, b, y, n);
    } else {
      FVMT_LAUNCH(grid, kBlock, 0, as_stream(stream), mul_kernel<false>)(a, b, y, n);
    }
    return check_launch(fn, "mul_kernel");
  });
}

extern "C" FVMT_API size_t fvmt_embedding_workspace_bytes(void) { return embedding_workspace(); }

extern "C" FVMT_API int32_t fvmt_embedding_forward(const int32_t *ids, int32_t count, const void *table,
                                                   int32_t dtype, int32_t vocab, int32_t dim, float *out,
                                                   void *workspace, size_t workspace_bytes, void *stream) {
  static constexpr char fn[] = "fvmt_embedding_forward";
  return guarded(fn, [&]() -> int32_t {
    if (int32_t s = text::check_embedding(fn, ids, count, table, dtype, vocab, dim, out)) return s;
    if (int32_t s = check_workspace(fn, workspace, workspace_bytes, embedding_workspace())) return s;
    WorkspaceLayout layout(workspace);
    int32_t *bad = layout.take<int32_t>(1);
    const cudaStream_t st = as_stream(stream);
    if (int32_t s = check_cuda(fn, "clearing the bad-id flag", cudaMemsetAsync(bad, 0, sizeof(int32_t), st))) return s;
    const unsigned grid = static_cast<unsigned>(count);
    if (dtype == FVMT_DTYPE_BF16) {
      FVMT_LAUNCH(grid, kBlock, 0, st, embedding_kernel<true>)(ids, count, table, vocab, dim, out, bad);
    } else {
      FVMT_LAUNCH(grid, kBlock, 0, st, embedding_kernel<false>)(ids, count, table, vocab, dim, out, bad);
    }
    if (int32_t s = check_launch(fn, "embedding_kernel")) return s;
    int32_t verdict = 0;
    if (int32_t s = check_cuda(fn, "reading the bad-id flag",
                               cudaMemcpyAsync(&verdict, bad, sizeof(int32_t), cudaMemcpyDeviceToHost, st)))
      return s;
    if (int32_t s = check_cuda(fn, "synchronising the stream", cudaStreamSynchronize(st))) return s;
    if (verdict == 0) return FVMT_OK;
    const int32_t position = count - verdict;
    int32_t id = 0;
    if (int32_t s = check_cuda(fn, "reading the bad id",
                               cudaMemcpy(&id, ids + position, sizeof(int32_t), cudaMemcpyDeviceToHost)))
      return s;
    return text::bad_id(fn, position, id, vocab);
  });
}

extern "C" FVMT_API int32_t fvmt_relative_attention_forward(const float *q, const float *k, const float *v,
                                                            const float *rel_bias, const int32_t *key_mask,
                                                            int32_t q_tokens, int32_t kv_tokens, int32_t heads,
                                                            int32_t head_dim, float scale, float *out, void *stream) {
  static constexpr char fn[] = "fvmt_relative_attention_forward";
  return guarded(fn, [&]() -> int32_t {
    if (int32_t s = text::check_relative_attention(fn, q, k, v, q_tokens, kv_tokens, heads, head_dim, scale, out))
      return s;
    if (head_dim > kMaxHeadDim)
      return fail(FVMT_ERR_UNSUPPORTED, "%s: head_dim must be at most %d on this build, got %d", fn, kMaxHeadDim,
                  head_dim);
    unsigned grid = 0;
    if (int32_t s = grid_size(fn, static_cast<int64_t>(heads) * q_tokens, &grid)) return s;
    const size_t shared_bytes = (2 * static_cast<size_t>(head_dim) + kChunk) * sizeof(float);
    FVMT_LAUNCH(grid, kAttentionThreads, shared_bytes, as_stream(stream), relative_attention_kernel)(
        q, k, v, rel_bias, key_mask, q_tokens, kv_tokens, heads, head_dim, scale, out);
    return check_launch(fn, "relative_attention_kernel");
  });
}
