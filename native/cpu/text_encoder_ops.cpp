// Text encoder ops, CPU (fastvmt.h, "Text encoder ops"), forward only:
//   product      y[i] = a[i] b[i]                      (T5's gated-GELU FFN)
//   embedding    out[t, :] = table[ids[t], :]           (fp32 or bf16 table -> fp32 rows)
//   attention    out_i = sum_j softmax_j(scale q_i.k_j + rel_bias[h, j - i + q_tokens - 1]) v_j
//                over the keys with key_mask[j] != 0, per head; q, out [q_tokens, heads, head_dim],
//                k, v [kv_tokens, heads, head_dim]
// The product and the gather are memory-bound single passes (rows split across threads,
// vectorised inner loops). The attention gives each thread whole (head, query) rows: it
// walks the keys in chunks of kChunk, scores a chunk into a small per-thread buffer, then
// folds it into a running max, sum and head_dim-long accumulator (online softmax), so
// memory is O(threads * (head_dim + kChunk)), never the score matrix. The dot products
// and the accumulator updates are contiguous head_dim loops the compiler vectorises.
#include <omp.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "boundary.hpp"
#include "text_encoder_checks.hpp"

using namespace fvmt;

namespace {

constexpr int32_t kChunk = 128;  // keys scored per step of the online softmax

// One (head, query) row of the attention; `scores` holds kChunk floats, `acc` head_dim.
void attention_row(const float *q, const float *k, const float *v, const float *rel_bias, const int32_t *key_mask,
                   int32_t i, int32_t h, int32_t q_tokens, int32_t kv_tokens, int32_t heads, int32_t head_dim,
                   float scale, float *out, float *scores, float *acc) {
  const int64_t row_stride = static_cast<int64_t>(heads) * head_dim;
  const float *qi = q + i * row_stride + static_cast<int64_t>(h) * head_dim;
  const float *bias = rel_bias != nullptr
                          ? rel_bias + static_cast<int64_t>(h) * (q_tokens + kv_tokens - 1) + (q_tokens - 1 - i)
                          : nullptr;  // bias[j] is rel_bias[h, j - i + q_tokens - 1]
  constexpr float kMinus = -std::numeric_limits<float>::infinity();
  float running_max = kMinus, sum = 0.0f;
  for (int32_t d = 0; d < head_dim; ++d) acc[d] = 0.0f;
  for (int32_t j0 = 0; j0 < kv_tokens; j0 += kChunk) {
    const int32_t n = kv_tokens - j0 < kChunk ? kv_tokens - j0 : kChunk;
    float chunk_max = kMinus;
    for (int32_t c = 0; c < n; ++c) {
      const int32_t j = j0 + c;
      if (key_mask != nullptr && key_mask[j] == 0) {
        scores[c] = kMinus;
        continue;
      }
      const float *kj = k + j * row_stride + static_cast<int64_t>(h) * head_dim;
      float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
      for (int32_t d = 0; d < head_dim; ++d) dot += qi[d] * kj[d];
      const float s = scale * dot + (bias != nullptr ? bias[j] : 0.0f);
      scores[c] = s;
      chunk_max = s > chunk_max ? s : chunk_max;
    }
    if (chunk_max == kMinus) continue;  // every key of the chunk is masked
    const float new_max = chunk_max > running_max ? chunk_max : running_max;
    if (new_max > running_max) {  // rescale what was summed under the old max (nothing when it was -inf)
      const float correction = running_max == kMinus ? 0.0f : std::exp(running_max - new_max);
      sum *= correction;
#pragma omp simd
      for (int32_t d = 0; d < head_dim; ++d) acc[d] *= correction;
      running_max = new_max;
    }
    for (int32_t c = 0; c < n; ++c) {
      if (scores[c] == kMinus) continue;
      const float p = std::exp(scores[c] - running_max);
      sum += p;
      const float *vj = v + (j0 + c) * row_stride + static_cast<int64_t>(h) * head_dim;
#pragma omp simd
      for (int32_t d = 0; d < head_dim; ++d) acc[d] += p * vj[d];
    }
  }
  float *oi = out + i * row_stride + static_cast<int64_t>(h) * head_dim;
  const float inverse = sum > 0.0f ? 1.0f / sum : 0.0f;  // all keys masked: out_i = 0
#pragma omp simd
  for (int32_t d = 0; d < head_dim; ++d) oi[d] = acc[d] * inverse;
}

}  // namespace

extern "C" FVMT_API int32_t fvmt_mul_forward(const float *a, const float *b, int64_t n, float *y, void *) {
  static constexpr char fn[] = "fvmt_mul_forward";
  return cpu::run_guarded(fn, [&]() -> int32_t {
    if (int32_t s = text::check_mul(fn, a, b, n, y)) return s;
#pragma omp parallel for simd schedule(static)
    for (int64_t e = 0; e < n; ++e) y[e] = a[e] * b[e];
    return FVMT_OK;
  });
}

extern "C" FVMT_API size_t fvmt_embedding_workspace_bytes(void) { return 0; }

extern "C" FVMT_API int32_t fvmt_embedding_forward(const int32_t *ids, int32_t count, const void *table,
                                                   int32_t dtype, int32_t vocab, int32_t dim, float *out, void *,
                                                   size_t, void *) {
  static constexpr char fn[] = "fvmt_embedding_forward";
  return cpu::run_guarded(fn, [&]() -> int32_t {
    if (int32_t s = text::check_embedding(fn, ids, count, table, dtype, vocab, dim, out)) return s;
    if (int32_t s = text::check_ids(fn, ids, count, vocab)) return s;
    if (dtype == FVMT_DTYPE_F32) {
      const float *rows = static_cast<const float *>(table);
#pragma omp parallel for schedule(static)
      for (int32_t t = 0; t < count; ++t)
        std::memcpy(out + static_cast<int64_t>(t) * dim, rows + static_cast<int64_t>(ids[t]) * dim,
                    static_cast<size_t>(dim) * sizeof(float));
    } else {
      const uint16_t *rows = static_cast<const uint16_t *>(table);
#pragma omp parallel for schedule(static)
      for (int32_t t = 0; t < count; ++t) {
        const uint16_t *src = rows + static_cast<int64_t>(ids[t]) * dim;
        uint32_t *dst = reinterpret_cast<uint32_t *>(out + static_cast<int64_t>(t) * dim);
#pragma omp simd
        for (int32_t c = 0; c < dim; ++c) dst[c] = static_cast<uint32_t>(src[c]) << 16;
      }
    }
    return FVMT_OK;
  });
}

extern "C" FVMT_API int32_t fvmt_relative_attention_forward(const float *q, const float *k, const float *v,
                                                            const float *rel_bias, const int32_t *key_mask,
                                                            int32_t q_tokens, int32_t kv_tokens, int32_t heads,
                                                            int32_t head_dim, float scale, float *out, void *) {
  static constexpr char fn[] = "fvmt_relative_attention_forward";
  return cpu::run_guarded(fn, [&]() -> int32_t {
    if (int32_t s = text::check_relative_attention(fn, q, k, v, q_tokens, kv_tokens, heads, head_dim, scale, out))
      return s;
    // Per-thread scratch, allocated before the parallel region (nothing inside may throw).
    const int threads = omp_get_max_threads();
    const size_t per_thread = (static_cast<size_t>(kChunk) + static_cast<size_t>(head_dim) + 15) / 16 * 16;
    cpu::AlignedArray<float> scratch(per_thread * static_cast<size_t>(threads));
    const int64_t rows = static_cast<int64_t>(heads) * q_tokens;
#pragma omp parallel num_threads(threads)
    {
      float *scores = scratch.data() + per_thread * static_cast<size_t>(omp_get_thread_num());
      float *acc = scores + kChunk;
#pragma omp for schedule(static)
      for (int64_t r = 0; r < rows; ++r) {
        // Consecutive rows share a head, so a thread streams one head's keys over and over.
        const int32_t h = static_cast<int32_t>(r / q_tokens), i = static_cast<int32_t>(r % q_tokens);
        attention_row(q, k, v, rel_bias, key_mask, i, h, q_tokens, kv_tokens, heads, head_dim, scale, out, scores,
                      acc);
      }
    }
    return FVMT_OK;
  });
}
