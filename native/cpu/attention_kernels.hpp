// AVX2/FMA building blocks of the CPU AMF kernels (full and windowed share them).
//
// A "block" is up to kQueryBlock query tokens of frame i that attend to the same
// key set of frame j (a whole frame, or one tile's search window). Everything
// below works on one block at a time:
//
//   scores      S[n][q] = Q_i[q] . K_j[key n]             (an "NT" product: the
//               reduction runs over C, contiguous in both operands)
//   softmax     P[n][q] = softmax_n(scale * S[n][q]),  E[q] = sum_n P[n][q] pos(n)
//   gradient    dS[n][q] = scale * P[n][q] * (g[q] . (pos(n) - E[q]))
//   dQ / dK     dQ[q] += sum_n dS[n][q] K[n],  dK[n] += sum_q dS[n][q] Q[q]
//               ("NN" products: the reduction runs over keys or queries)
//
// Layouts. S is stored transposed, s_t[n * stride + q] with stride = the block's
// query count rounded up to 4, so one micro-kernel result (4 queries x 1 key) is
// one 128-bit store and the softmax runs over 4 queries per vector.
//
// Why it is fast:
//  - dot_4x3 keeps 4 queries x 3 keys = 12 accumulators of 8 lanes in registers;
//    each step loads 7 vectors for 12 FMAs, so it is FMA-bound from L1. The
//    queries are packed per C-chunk ([chunk][query][chunk width], zero padded),
//    so a block's queries stay in L1 while key rows stream past; the next key
//    triple is prefetched because 3 short rows are too little for the hardware
//    prefetcher to lock on.
//  - The NN products read their B operand from "panels": a frame repacked as
//    [C/16][token][16], so consecutive keys (or queries) of one 16-channel slice
//    are consecutive cache lines. Read straight from [token][C], the 6 KB row
//    stride of C = 1536 maps every row of a column slice to the same few cache
//    sets. nn_accumulate keeps R x 16 outputs (R <= 6) in registers: 2 loads and
//    R broadcasts per 2R FMAs.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace fvmt::cpu {

#define FVMT_INLINE [[gnu::always_inline]] inline

// Queries per block: a FastVMT tile (3 x 4) is exactly one block.
inline constexpr int kQueryBlock = 12;
// Longest C-chunk of the score product: 12 packed queries x 384 floats = 18 KB
// stay in the 32 KB L1 next to the key triple being read.
#ifndef TUNE_KC
#define TUNE_KC 384
#endif
#ifndef TUNE_PF
#define TUNE_PF 2
#endif
#ifndef TUNE_HINT
#define TUNE_HINT _MM_HINT_T0
#endif
inline constexpr int kScoreChunk = TUNE_KC;
// Channels per panel of the NN products (two AVX vectors).
inline constexpr int kPanel = 16;
// Rows per NN micro-kernel call: 12 accumulators + 2 panel vectors + 1 broadcast.
inline constexpr int kNnRows = 6;

inline int round_up(int value, int multiple) { return (value + multiple - 1) / multiple * multiple; }

// How the score product splits C: `count` chunks of `width` channels (a
// multiple of 8), the last one possibly shorter.
struct ChunkPlan {
  int count;
  int width;
};

inline ChunkPlan plan_chunks(int channels) {
  const int count = (channels + kScoreChunk - 1) / kScoreChunk;
  return {count, round_up((channels + count - 1) / count, 8)};
}

// Lanes [0, valid) set, valid in [0, 8].
FVMT_INLINE __m256i lane_mask(int valid) {
  const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(valid), lanes);
}

// ------------------------------------------------------------------ packing

// qpack[chunk][q][width] = Q[token q][chunk * width + c]; rows q >= count and
// channels >= C are zero. `stride` = count rounded up to 4.
inline void pack_queries(const float *q_frame, const int32_t *tokens, int count, int stride, int channels,
                         ChunkPlan plan, float *qpack) {
  for (int chunk = 0; chunk < plan.count; ++chunk) {
    const int c0 = chunk * plan.width;
    const int len = std::min(plan.width, channels - c0);
    float *dst = qpack + static_cast<size_t>(chunk) * stride * plan.width;
    for (int q = 0; q < stride; ++q, dst += plan.width) {
      if (q < count) {
        const float *src = q_frame + static_cast<int64_t>(tokens[q]) * channels + c0;
        std::copy(src, src + len, dst);
        std::fill(dst + len, dst + plan.width, 0.0f);
      } else {
        std::fill(dst, dst + plan.width, 0.0f);
      }
    }
  }
}

// panels[p][t][16] = x[t][16p + c] for tokens [t0, t1) of one frame (zero past C).
inline void pack_panels(const float *x_frame, int tokens, int channels, int t0, int t1, float *panels) {
  const int panel_count = (channels + kPanel - 1) / kPanel;
  for (int t = t0; t < t1; ++t) {
    const float *src = x_frame + static_cast<int64_t>(t) * channels;
    for (int p = 0; p < panel_count; ++p) {
      float *dst = panels + (static_cast<size_t>(p) * tokens + t) * kPanel;
      const int len = std::min(kPanel, channels - p * kPanel);
      std::copy(src + p * kPanel, src + p * kPanel + len, dst);
      std::fill(dst + len, dst + kPanel, 0.0f);
    }
  }
}

// ------------------------------------------------------------------- scores

FVMT_INLINE __m128 sum_lanes4(__m256 a, __m256 b, __m256 c, __m256 d) {
  const __m256 abcd = _mm256_hadd_ps(_mm256_hadd_ps(a, b), _mm256_hadd_ps(c, d));
  return _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1));
}

// out_r[0..4) += dot(query row 0..3, key r) over one chunk, for 3 keys. The
// query rows are `width` apart in the pack; `tail` channels after len8 are read
// from the keys through `mask` (the pack is zero there already).
FVMT_INLINE void dot_4x3(const float *q, int width, const float *k0, const float *k1, const float *k2, int len8,
                         int tail, __m256i mask, float *out0, float *out1, float *out2) {
  __m256 a00 = _mm256_setzero_ps(), a01 = a00, a02 = a00, a10 = a00, a11 = a00, a12 = a00;
  __m256 a20 = a00, a21 = a00, a22 = a00, a30 = a00, a31 = a00, a32 = a00;
  const float *q0 = q, *q1 = q + width, *q2 = q + 2 * width, *q3 = q + 3 * width;
  auto step = [&](__m256 b0, __m256 b1, __m256 b2, int c) {
    __m256 x = _mm256_load_ps(q0 + c);
    a00 = _mm256_fmadd_ps(x, b0, a00), a01 = _mm256_fmadd_ps(x, b1, a01), a02 = _mm256_fmadd_ps(x, b2, a02);
    x = _mm256_load_ps(q1 + c);
    a10 = _mm256_fmadd_ps(x, b0, a10), a11 = _mm256_fmadd_ps(x, b1, a11), a12 = _mm256_fmadd_ps(x, b2, a12);
    x = _mm256_load_ps(q2 + c);
    a20 = _mm256_fmadd_ps(x, b0, a20), a21 = _mm256_fmadd_ps(x, b1, a21), a22 = _mm256_fmadd_ps(x, b2, a22);
    x = _mm256_load_ps(q3 + c);
    a30 = _mm256_fmadd_ps(x, b0, a30), a31 = _mm256_fmadd_ps(x, b1, a31), a32 = _mm256_fmadd_ps(x, b2, a32);
  };
  for (int c = 0; c < len8; c += 8)
    step(_mm256_loadu_ps(k0 + c), _mm256_loadu_ps(k1 + c), _mm256_loadu_ps(k2 + c), c);
  if (tail > 0)
    step(_mm256_maskload_ps(k0 + len8, mask), _mm256_maskload_ps(k1 + len8, mask),
         _mm256_maskload_ps(k2 + len8, mask), len8);
  _mm_storeu_ps(out0, _mm_add_ps(_mm_loadu_ps(out0), sum_lanes4(a00, a10, a20, a30)));
  _mm_storeu_ps(out1, _mm_add_ps(_mm_loadu_ps(out1), sum_lanes4(a01, a11, a21, a31)));
  _mm_storeu_ps(out2, _mm_add_ps(_mm_loadu_ps(out2), sum_lanes4(a02, a12, a22, a32)));
}

inline void prefetch_row(const float *row, int floats) {
  const char *p = reinterpret_cast<const char *>(row);
  const char *end = p + static_cast<size_t>(floats) * sizeof(float);
  for (p = reinterpret_cast<const char *>(reinterpret_cast<uintptr_t>(p) & ~uintptr_t{63}); p < end; p += 64)
    _mm_prefetch(p, TUNE_HINT);
}

// s_t[n * stride + q] = Q[q] . K_j[keys[n]] for n < key_count and all `stride`
// packed queries. s_t needs key_count + 1 rows: the last one absorbs the
// results of the padding keys of a final, partial key triple.
inline void block_scores(const float *qpack, int stride, const float *k_frame, const int32_t *keys, int key_count,
                         int channels, ChunkPlan plan, float *s_t) {
  std::fill(s_t, s_t + static_cast<size_t>(key_count + 1) * stride, 0.0f);
  const int triples = (key_count + 2) / 3;
  auto key_row = [&](int n, int c0) {
    return k_frame + static_cast<int64_t>(keys[std::min(n, key_count - 1)]) * channels + c0;
  };
  for (int chunk = 0; chunk < plan.count; ++chunk) {
    const int c0 = chunk * plan.width;
    const int len = std::min(plan.width, channels - c0);
    const int len8 = len & ~7, tail = len - len8;
    const __m256i mask = lane_mask(tail);
    const float *qc = qpack + static_cast<size_t>(chunk) * stride * plan.width;
    for (int t = 0; t < triples; ++t) {
      const int n = 3 * t;
      if (t + TUNE_PF < triples)
        for (int r = 0; r < 3; ++r) prefetch_row(key_row(n + 3 * TUNE_PF + r, c0), len);
      const float *k0 = key_row(n, c0), *k1 = key_row(n + 1, c0), *k2 = key_row(n + 2, c0);
      float *out0 = s_t + static_cast<size_t>(n) * stride;
      float *out1 = s_t + static_cast<size_t>(std::min(n + 1, key_count)) * stride;
      float *out2 = s_t + static_cast<size_t>(std::min(n + 2, key_count)) * stride;
      for (int g = 0; g < stride; g += 4)
        dot_4x3(qc + static_cast<size_t>(g) * plan.width, plan.width, k0, k1, k2, len8, tail, mask, out0 + g,
                out1 + g, out2 + g);
    }
  }
}

// ------------------------------------------------------------------ softmax

// e^x for x <= 0 (larger x is not needed: scores are taken minus their max).
// Range reduction x = n ln2 + r, |r| <= ln2/2, then a degree-7 Taylor series
// (relative error < 1e-8 before rounding); x below -87 gives e^-87 ~ 1.6e-38,
// which is 0 next to the max term 1.
FVMT_INLINE __m128 exp_nonpositive(__m128 x) {
  x = _mm_max_ps(x, _mm_set1_ps(-87.0f));
  const __m128 n = _mm_round_ps(_mm_mul_ps(x, _mm_set1_ps(1.44269504088896341f)),
                                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m128 r = _mm_fnmadd_ps(n, _mm_set1_ps(0.693145751953125f), x);
  r = _mm_fnmadd_ps(n, _mm_set1_ps(1.42860682030941723212e-6f), r);
  __m128 p = _mm_set1_ps(1.0f / 5040.0f);
  p = _mm_fmadd_ps(p, r, _mm_set1_ps(1.0f / 720.0f));
  p = _mm_fmadd_ps(p, r, _mm_set1_ps(1.0f / 120.0f));
  p = _mm_fmadd_ps(p, r, _mm_set1_ps(1.0f / 24.0f));
  p = _mm_fmadd_ps(p, r, _mm_set1_ps(1.0f / 6.0f));
  p = _mm_fmadd_ps(p, r, _mm_set1_ps(0.5f));
  p = _mm_fmadd_ps(p, r, _mm_set1_ps(1.0f));
  p = _mm_fmadd_ps(p, r, _mm_set1_ps(1.0f));
  const __m128i two_to_n = _mm_slli_epi32(_mm_add_epi32(_mm_cvtps_epi32(n), _mm_set1_epi32(127)), 23);
  return _mm_mul_ps(p, _mm_castsi128_ps(two_to_n));
}

// Where each key of a block sits in frame j, as floats for the expectation.
struct KeyPositions {
  const float *row;
  const float *col;
};

// The softmax statistics of 4 queries (one vector lane each) over a block's
// keys, computed in a fixed order: max, sum of e = exp(scale (s - max)), and
// the e-weighted sums of key rows and columns. With `keep_exp` the e values
// replace the scores in s_t.
struct SoftmaxSums {
  __m128 max, sum, row, col;
};

FVMT_INLINE SoftmaxSums softmax_sums(float *s_t, int stride, int key_count, KeyPositions pos, float scale,
                                     bool keep_exp) {
  __m128 max = _mm_loadu_ps(s_t);
  for (int n = 1; n < key_count; ++n) max = _mm_max_ps(max, _mm_loadu_ps(s_t + static_cast<size_t>(n) * stride));
  const __m128 vscale = _mm_set1_ps(scale);
  __m128 sum = _mm_setzero_ps(), row = sum, col = sum;
  for (int n = 0; n < key_count; ++n) {
    float *s = s_t + static_cast<size_t>(n) * stride;
    const __m128 e = exp_nonpositive(_mm_mul_ps(_mm_sub_ps(_mm_loadu_ps(s), max), vscale));
    if (keep_exp) _mm_storeu_ps(s, e);
    sum = _mm_add_ps(sum, e);
    row = _mm_fmadd_ps(e, _mm_set1_ps(pos.row[n]), row);
    col = _mm_fmadd_ps(e, _mm_set1_ps(pos.col[n]), col);
  }
  return {max, sum, row, col};
}

// expected[2q], expected[2q+1] = E[q] (row, col in frame j) for q < count.
inline void softmax_expectation(float *s_t, int stride, int count, int key_count, KeyPositions pos, float scale,
                                float *expected) {
  for (int g = 0; g < count; g += 4) {
    const SoftmaxSums sums = softmax_sums(s_t + g, stride, key_count, pos, scale, false);
    alignas(16) float row[4], col[4];
    _mm_store_ps(row, _mm_div_ps(sums.row, sums.sum));
    _mm_store_ps(col, _mm_div_ps(sums.col, sums.sum));
    for (int q = g; q < std::min(count, g + 4); ++q) {
      expected[2 * q] = row[q - g];
      expected[2 * q + 1] = col[q - g];
    }
  }
}

// Replaces s_t by dS[n][q] = dL/d(Q[q].K[n]) = scale P (g . (pos(n) - E)),
// with g = (g_row, g_col)[q] = dL/d delta of query q; padding queries
// (q >= count) get dS = 0.
inline void softmax_gradient(float *s_t, int stride, int count, int key_count, KeyPositions pos, float scale,
                             const float *g_row, const float *g_col) {
  for (int g = 0; g < stride; g += 4) {
    alignas(16) float gr[4] = {0, 0, 0, 0}, gc[4] = {0, 0, 0, 0};
    for (int q = g; q < std::min(count, g + 4); ++q) gr[q - g] = g_row[q], gc[q - g] = g_col[q];
    const __m128 vgr = _mm_load_ps(gr), vgc = _mm_load_ps(gc);
    const SoftmaxSums sums = softmax_sums(s_t + g, stride, key_count, pos, scale, true);
    const __m128 inv_sum = _mm_div_ps(_mm_set1_ps(1.0f), sums.sum);
    // g . E, and the factor scale / sum that turns e into scale * P.
    const __m128 g_dot_e = _mm_mul_ps(_mm_fmadd_ps(vgr, sums.row, _mm_mul_ps(vgc, sums.col)), inv_sum);
    const __m128 factor = _mm_mul_ps(_mm_set1_ps(scale), inv_sum);
    for (int n = 0; n < key_count; ++n) {
      float *s = s_t + static_cast<size_t>(n) * stride + g;
      const __m128 g_dot_pos = _mm_fmadd_ps(vgr, _mm_set1_ps(pos.row[n]), _mm_mul_ps(vgc, _mm_set1_ps(pos.col[n])));
      _mm_storeu_ps(s, _mm_mul_ps(_mm_mul_ps(_mm_loadu_ps(s), factor), _mm_sub_ps(g_dot_pos, g_dot_e)));
    }
  }
}

// ------------------------------------------------------------- NN products

// acc[r] += sum_{s < depth} a[r * a_row + s * a_step] * b[s * 16 .. s * 16 + 16):
// R output rows x 16 channels of a product whose B operand is a panel.
template <int R>
FVMT_INLINE void nn_accumulate(__m256 (&acc)[R][2], const float *a, ptrdiff_t a_row, ptrdiff_t a_step,
                               const float *b, int depth) {
  for (int s = 0; s < depth; ++s, a += a_step, b += kPanel) {
    const __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
    for (int r = 0; r < R; ++r) {
      const __m256 x = _mm256_broadcast_ss(a + r * a_row);
      acc[r][0] = _mm256_fmadd_ps(x, b0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(x, b1, acc[r][1]);
    }
  }
}

template <int R>
FVMT_INLINE void nn_zero(__m256 (&acc)[R][2]) {
  for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
}

// out[r][c] += acc[r][c] for c < valid (valid in [1, 16]).
template <int R>
FVMT_INLINE void nn_add_to(const __m256 (&acc)[R][2], float *const (&out)[R], int valid) {
  if (valid == kPanel) {
    for (int r = 0; r < R; ++r) {
      _mm256_storeu_ps(out[r], _mm256_add_ps(_mm256_loadu_ps(out[r]), acc[r][0]));
      _mm256_storeu_ps(out[r] + 8, _mm256_add_ps(_mm256_loadu_ps(out[r] + 8), acc[r][1]));
    }
    return;
  }
  const __m256i m0 = lane_mask(std::min(valid, 8)), m1 = lane_mask(std::max(valid - 8, 0));
  for (int r = 0; r < R; ++r) {
    _mm256_maskstore_ps(out[r], m0, _mm256_add_ps(_mm256_maskload_ps(out[r], m0), acc[r][0]));
    _mm256_maskstore_ps(out[r] + 8, m1, _mm256_add_ps(_mm256_maskload_ps(out[r] + 8, m1), acc[r][1]));
  }
}

// acc = out (16 floats per row, rows out_row apart), and the way back.
template <int R>
FVMT_INLINE void nn_load(__m256 (&acc)[R][2], const float *in, ptrdiff_t in_row) {
  for (int r = 0; r < R; ++r) acc[r][0] = _mm256_load_ps(in + r * in_row), acc[r][1] = _mm256_load_ps(in + r * in_row + 8);
}

template <int R>
FVMT_INLINE void nn_store(const __m256 (&acc)[R][2], float *out, ptrdiff_t out_row) {
  for (int r = 0; r < R; ++r) _mm256_store_ps(out + r * out_row, acc[r][0]), _mm256_store_ps(out + r * out_row + 8, acc[r][1]);
}

// Calls body.template operator()<R>() with R = rows in [1, kNnRows], so a row
// count known only at run time still gets a fully unrolled micro-kernel.
template <typename Body>
FVMT_INLINE void with_rows(int rows, Body &&body) {
  switch (rows) {
    case 1: body.template operator()<1>(); break;
    case 2: body.template operator()<2>(); break;
    case 3: body.template operator()<3>(); break;
    case 4: body.template operator()<4>(); break;
    case 5: body.template operator()<5>(); break;
    default: body.template operator()<6>(); break;
  }
}

}  // namespace fvmt::cpu
