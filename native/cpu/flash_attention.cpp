// Fused multi-head attention, CPU (fastvmt.h, "Fused multi-head attention").
//
//   per head h:  S = scale Q_h K_h^T   [q_tokens, kv_tokens]
//                P = softmax_rows(S),  out_h = P V_h,  lse_h[i] = log sum_j exp S[i][j]
//   q, out: [q_tokens, heads, head_dim]; k, v: [kv_tokens, heads, head_dim]
//   (token-major: row i of head h is the head_dim floats at (i * heads + h) * head_dim).
// Backward, with D_i = sum_d dout[i][d] out[i][d] and P recomputed as exp(S - lse):
//   dV += P^T dO,  dP = dO V^T,  dS = P * (dP - D),  dQ += scale dS K,  dK += scale dS^T Q
//
// Forward: one task per (head, tile of kQueryTile queries); the tile streams over
// tiles of kKeyTile keys with an online softmax (running row max m and sum l;
// O is rescaled by exp(m_old - m_new) whenever the max grows), so the score
// matrix is never stored. Scores are kept in the log2 domain: Q is packed
// pre-multiplied by scale * log2(e) and P = 2^(S' - m'), lse = (m' + log2 l) ln 2.
// Backward: one task per (head, chunk of key tiles), a single pass over every
// (key tile, query tile) pair that recomputes S^T and P^T = 2^(S'^T - lse log2 e)
// and forms all of dV, dP^T, dS^T, dK and dQ from them. The task owns dK and dV
// of its keys; dQ of the head is owned by the task too when a head is one chunk
// (heads >= threads, Wan's case), else every chunk writes its own dQ partial and
// the partials are added in chunk order afterwards. No float atomics; every sum
// runs in an order fixed by the shape and the thread count (bit-identical reruns).
//
// Why it is fast: every product is a register-blocked AVX2 FMA micro-kernel,
// 6 rows x 16 columns = 12 accumulators; one step loads two 8-float vectors of B
// and broadcasts 6 floats of A for 12 FMAs, so it runs from L1 at the FMA rate.
// Operands are packed so that both streams are contiguous: each thread packs, once
// per head it works on, K^T as [key/16][d][16] panels and V as [d/16][key][16]
// panels (forward), or Q and dO in both orientations (backward); the packing cost
// is spread over all query (key) tiles of the head. The tiles being multiplied
// (a 16-key K^T panel of 8 KB, a 6-row Q block) stay in L1, the head's packed
// operands in L2/L3. exp is a vectorised 2^x (degree-7 polynomial on [-1/2, 1/2],
// < 1e-8 relative): ~12 vector ops per 8 scores against 2 x 128 FMAs per score.
// The single-pass backward does the minimum, 5 products per (key tile, query
// tile) pair; two passes (one owning dK and dV, one owning dQ) would recompute S
// and dP: 7 products, at best 71% of this.
// Measured on the 2-core AVX2 (Zen) box against OpenBLAS 0.3.21 sgemm (Haswell
// kernels, 1536^3, 2 threads) in the same process, q = kv = 1560, 12 heads,
// head_dim 128, flops 4 q kv d heads (forward) and 10 q kv d heads (backward,
// with the recomputation). Quiet machine, medians of 8 rounds: sgemm 213 GFLOP/s,
// forward 199 GFLOP/s (93% of sgemm), backward 202 GFLOP/s (95%). Per core
// (thread CPU time, immune to the other tenants): sgemm 110, forward 98 (90%),
// backward 98 (90%). Other shapes (2 threads, best rounds): head_dim 64 forward
// 89%, backward 98%; 512 tokens 79% / 84%; one head of 4096 tokens (dQ partials)
// 90% / 81%. Noise: with the other jobs on the 2 cores, sgemm and attention both
// halve and single rounds range 40-150% of sgemm. The first version (plain loops,
// same tiling) ran the forward at 19% of sgemm.
//
// Workspace: one slice per thread (omp_get_max_threads() when sized) holding the
// head packs, about 2 kv d floats (forward) or 5 q d floats (backward; 84 MB per
// thread at Wan's 32 760 tokens), plus dQ partials when heads are cut into key
// chunks. A call runs on as many threads as OpenMP offers and the workspace holds.
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>

#include "boundary.hpp"
#include "dit_checks.hpp"

using namespace fvmt;

namespace {

#define FVMT_INLINE [[gnu::always_inline]] inline

constexpr int kMr = 6;   // rows per micro-kernel
constexpr int kNr = 16;  // columns per micro-kernel (two AVX vectors)
// Forward tiles: queries per task (multiple of kMr), keys per step (multiple of kNr).
constexpr int kQueryTile = 72;
constexpr int kKeyTile = 128;
// Backward tiles: keys per step (multiple of kMr), queries per step (multiple of 48 = lcm(kMr, kNr)).
constexpr int kKeyTileB = 48;
constexpr int kQueryTileB = 96;
constexpr int kQueryAlignB = 48;

constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;
// The CPU build takes heads of any width (fastvmt.h; the CUDA builds stop at 256).
constexpr int32_t kAnyHeadDim = std::numeric_limits<int32_t>::max();

size_t round_up(size_t value, size_t multiple) { return (value + multiple - 1) / multiple * multiple; }

struct Shape {
  int32_t q_tokens, kv_tokens, heads, head_dim;
  int64_t row() const { return int64_t{heads} * head_dim; }  // token stride in floats
  size_t dpad() const { return round_up(head_dim, kNr); }
};

// A per-thread workspace slice is cut into consecutive arrays, each rounded up to
// 16 floats so every array starts on a 64-byte line.
class Carver {
 public:
  explicit Carver(float *base) : next_(base) {}
  float *take(size_t floats) {
    float *p = next_;
    if (next_ != nullptr) next_ += round_up(floats, 16);
    used_ += round_up(floats, 16);
    return p;
  }
  size_t used() const { return used_; }

 private:
  float *next_;
  size_t used_ = 0;
};

// The forward's slice of one thread.
struct ForwardSlot {
  float *kt;  // K^T of the head, [kv16/16][d][16]
  float *vp;  // V of the head, [dpad/16][kv16][16]
  float *qa;  // the query tile, scaled, [kQueryTile/6][d][6]
  float *s;   // scores / probabilities, [kQueryTile][kKeyTile]
  float *o;   // output accumulator, [kQueryTile][dpad]
  float *m, *l;
  ForwardSlot(const Shape &sh, Carver &c) {
    const size_t kv16 = round_up(sh.kv_tokens, kNr), d = sh.head_dim, dpad = sh.dpad();
    kt = c.take(kv16 * d);
    vp = c.take(dpad * kv16);
    qa = c.take(kQueryTile * d);
    s = c.take(size_t{kQueryTile} * kKeyTile);
    o = c.take(kQueryTile * dpad);
    m = c.take(kQueryTile);
    l = c.take(kQueryTile);
  }
};

// The backward's slice of one thread.
struct BackwardSlot {
  float *qt, *gt;    // Q scaled by scale log2e, dO: [q48/16][d][16] (B of S^T, dP^T)
  float *qn, *gn;    // Q, dO: [dpad/16][q48][16] (B of dK, dV)
  float *lse2, *dterm;  // lse log2e (+inf past q_tokens), D; [q48]
  float *dq;         // dQ accumulator [q48][dpad] (unused when the head has several chunks)
  float *ka, *va;    // the key tile, [kKeyTileB/6][d][6] (A of S^T, dP^T)
  float *kn;         // the key tile, [dpad/16][kKeyTileB][16] (B of dQ)
  float *dk, *dv;    // [kKeyTileB][dpad]
  float *p, *ds;     // P^T, dP^T then dS^T: [kKeyTileB][kQueryTileB]
  BackwardSlot(const Shape &sh, Carver &c) {
    const size_t q48 = round_up(sh.q_tokens, kQueryAlignB), d = sh.head_dim, dpad = sh.dpad();
    qt = c.take(q48 * d);
    gt = c.take(q48 * d);
    qn = c.take(dpad * q48);
    gn = c.take(dpad * q48);
    lse2 = c.take(q48);
    dterm = c.take(q48);
    dq = c.take(q48 * dpad);
    ka = c.take(kKeyTileB * d);
    va = c.take(kKeyTileB * d);
    kn = c.take(dpad * kKeyTileB);
    dk = c.take(kKeyTileB * dpad);
    dv = c.take(kKeyTileB * dpad);
    p = c.take(size_t{kKeyTileB} * kQueryTileB);
    ds = c.take(size_t{kKeyTileB} * kQueryTileB);
  }
};

// How a call uses its workspace: `threads` slices of max(forward, backward)
// slot floats, then (backward, when a head is cut into key chunks) one dQ
// partial [q48][dpad] per (head, chunk).
struct Plan {
  int threads = 1;
  int key_chunks = 1;
  size_t slot_floats = 0;
  size_t partial_floats = 0;  // per (head, chunk)
  size_t partials = 0;        // count
  // + 64: the kernels align the workspace base up to a cache line themselves.
  size_t bytes() const { return (threads * slot_floats + partials * partial_floats) * sizeof(float) + 64; }
};

float *aligned_base(void *workspace) {
  return reinterpret_cast<float *>((reinterpret_cast<uintptr_t>(workspace) + 63) & ~uintptr_t{63});
}

int64_t key_tiles_b(const Shape &sh) { return tiles_along(sh.kv_tokens, kKeyTileB); }

Plan plan_for(const Shape &sh, int threads) {
  Plan p;
  p.threads = threads;
  Carver f(nullptr), b(nullptr);
  ForwardSlot fs(sh, f);
  BackwardSlot bs(sh, b);
  p.slot_floats = std::max(f.used(), b.used());
  // Enough (head, chunk) tasks to share evenly among the threads.
  p.key_chunks = static_cast<int>(std::min<int64_t>(threads / std::gcd(threads, sh.heads), key_tiles_b(sh)));
  if (p.key_chunks > 1) {
    p.partial_floats = round_up(round_up(sh.q_tokens, kQueryAlignB) * sh.dpad(), 16);
    p.partials = static_cast<size_t>(sh.heads) * p.key_chunks;
  }
  return p;
}

// The plan for this call: as many threads as OpenMP offers and the workspace holds.
int32_t plan_call(const char *fn, const Shape &sh, const void *workspace, size_t bytes, Plan &plan) {
  int threads = std::max(1, omp_get_max_threads());
  plan = plan_for(sh, threads);
  while (plan.threads > 1 && plan.bytes() > bytes) plan = plan_for(sh, plan.threads - 1);
  if (plan.bytes() > bytes)
    return fail(FVMT_ERR_WORKSPACE_TOO_SMALL, "%s: workspace_bytes is %zu, need %zu (%zu with %d threads)", fn, bytes,
                plan.bytes(), plan_for(sh, threads).bytes(), threads);
  if (workspace == nullptr)
    return fail(FVMT_ERR_INVALID_ARGUMENT, "%s: workspace must not be NULL (need %zu bytes)", fn, plan.bytes());
  return FVMT_OK;
}

// ------------------------------------------------------------------ building blocks

// 2^x for x <= 0 (the callers' range; up to 127 is exact too, beyond it is 2^127);
// below -127 it is 0. x = n + f with n = round(x), f in [-1/2, 1/2]: 2^f by its
// Taylor polynomial of degree 7 (error < 6e-9), 2^n by building the exponent bits.
FVMT_INLINE __m256 exp2_nonpositive(__m256 x) {
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-127.0f)), _mm256_set1_ps(127.0f));
  const __m256 n = _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m256 f = _mm256_sub_ps(x, n);
  __m256 p = _mm256_set1_ps(1.5252733804059838e-05f);
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.5403530393381606e-04f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.3333558146428441e-03f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(9.6181291076284772e-03f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(5.5504108664821576e-02f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(2.4022650695910071e-01f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(6.9314718055994531e-01f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.0f));
  const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
}

FVMT_INLINE float horizontal_max(__m256 v) {
  __m128 x = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  x = _mm_max_ps(x, _mm_movehl_ps(x, x));
  x = _mm_max_ss(x, _mm_movehdup_ps(x));
  return _mm_cvtss_f32(x);
}

FVMT_INLINE float horizontal_sum(__m256 v) {
  __m128 x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  x = _mm_add_ps(x, _mm_movehl_ps(x, x));
  x = _mm_add_ss(x, _mm_movehdup_ps(x));
  return _mm_cvtss_f32(x);
}

// C(r, 0..15) = (accumulate ? C : 0) + sum_{k < kc} A(r, k) B(k, 0..15) for r < 6, with
// A(r, k) = a[r * ar + k * ak], B(k, :) the 16 aligned floats at b + k * bk and C
// row r the 16 aligned floats at c + r * cr. One step: 2 loads, 6 broadcasts and 12
// FMAs into 12 accumulators that live in registers for the whole loop. The sum
// starts from 0 and is added to C at the end: a long reduction (dV over 32 760
// queries) is then a sum of tile sums, with ~sqrt(tile) times less rounding error
// than one FMA chain through C. Not inlined on purpose: inlined, the compiler
// kept values of the caller in registers across the loop and spilled
// accumulators (16 ymm registers only).
[[gnu::noinline]] void micro_kernel(const float *a, ptrdiff_t ar, ptrdiff_t ak, const float *b, ptrdiff_t bk, int kc,
                                    float *c, ptrdiff_t cr, bool accumulate) {
  // Twelve named accumulators: as an array, GCC kept them in memory.
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00,
         c40 = c00, c41 = c00, c50 = c00, c51 = c00;
  const float *a0 = a, *a1 = a + ar, *a2 = a + 2 * ar, *a3 = a + 3 * ar, *a4 = a + 4 * ar, *a5 = a + 5 * ar;
#pragma GCC unroll 4
  for (int k = 0; k < kc; ++k) {
    const __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
    const ptrdiff_t o = k * ak;
    __m256 x;
    x = _mm256_broadcast_ss(a0 + o);
    c00 = _mm256_fmadd_ps(x, b0, c00);
    c01 = _mm256_fmadd_ps(x, b1, c01);
    x = _mm256_broadcast_ss(a1 + o);
    c10 = _mm256_fmadd_ps(x, b0, c10);
    c11 = _mm256_fmadd_ps(x, b1, c11);
    x = _mm256_broadcast_ss(a2 + o);
    c20 = _mm256_fmadd_ps(x, b0, c20);
    c21 = _mm256_fmadd_ps(x, b1, c21);
    x = _mm256_broadcast_ss(a3 + o);
    c30 = _mm256_fmadd_ps(x, b0, c30);
    c31 = _mm256_fmadd_ps(x, b1, c31);
    x = _mm256_broadcast_ss(a4 + o);
    c40 = _mm256_fmadd_ps(x, b0, c40);
    c41 = _mm256_fmadd_ps(x, b1, c41);
    x = _mm256_broadcast_ss(a5 + o);
    c50 = _mm256_fmadd_ps(x, b0, c50);
    c51 = _mm256_fmadd_ps(x, b1, c51);
    b += bk;
  }
  if (accumulate) {
    c00 = _mm256_add_ps(c00, _mm256_load_ps(c)), c01 = _mm256_add_ps(c01, _mm256_load_ps(c + 8));
    c10 = _mm256_add_ps(c10, _mm256_load_ps(c + cr)), c11 = _mm256_add_ps(c11, _mm256_load_ps(c + cr + 8));
    c20 = _mm256_add_ps(c20, _mm256_load_ps(c + 2 * cr)), c21 = _mm256_add_ps(c21, _mm256_load_ps(c + 2 * cr + 8));
    c30 = _mm256_add_ps(c30, _mm256_load_ps(c + 3 * cr)), c31 = _mm256_add_ps(c31, _mm256_load_ps(c + 3 * cr + 8));
    c40 = _mm256_add_ps(c40, _mm256_load_ps(c + 4 * cr)), c41 = _mm256_add_ps(c41, _mm256_load_ps(c + 4 * cr + 8));
    c50 = _mm256_add_ps(c50, _mm256_load_ps(c + 5 * cr)), c51 = _mm256_add_ps(c51, _mm256_load_ps(c + 5 * cr + 8));
  }
  _mm256_store_ps(c, c00), _mm256_store_ps(c + 8, c01);
  _mm256_store_ps(c + cr, c10), _mm256_store_ps(c + cr + 8, c11);
  _mm256_store_ps(c + 2 * cr, c20), _mm256_store_ps(c + 2 * cr + 8, c21);
  _mm256_store_ps(c + 3 * cr, c30), _mm256_store_ps(c + 3 * cr + 8, c31);
  _mm256_store_ps(c + 4 * cr, c40), _mm256_store_ps(c + 4 * cr + 8, c41);
  _mm256_store_ps(c + 5 * cr, c50), _mm256_store_ps(c + 5 * cr + 8, c51);
}

// A packed for the micro-kernel, "A layout": rows in blocks of 6, [block][k][6].
// Packs rows [0, rows) of a strided source (row r at src + r * stride, `cols`
// floats, times `mul`) into `blocks` blocks; rows past `rows` are zero.
void pack_a(const float *src, int64_t stride, int rows, int cols, float mul, int blocks, float *dst) {
  for (int blk = 0; blk < blocks; ++blk) {
    float *out = dst + static_cast<size_t>(blk) * cols * kMr;
    for (int r = 0; r < kMr; ++r) {
      const int row = blk * kMr + r;
      if (row < rows) {
        const float *in = src + row * stride;
        for (int k = 0; k < cols; ++k) out[k * kMr + r] = in[k] * mul;
      } else {
        for (int k = 0; k < cols; ++k) out[k * kMr + r] = 0.0f;
      }
    }
  }
}

// Transposed panels, [rows/16][cols][16]: element (row, k) at
// ((row / 16) * cols + k) * 16 + row % 16; rows past `rows` up to `padded` are zero.
void pack_transposed_panels(const float *src, int64_t stride, int rows, int padded, int cols, float mul,
                            float *dst) {
  for (int p = 0; p < padded / kNr; ++p) {
    float *out = dst + static_cast<size_t>(p) * cols * kNr;
    for (int r = 0; r < kNr; ++r) {
      const int row = p * kNr + r;
      if (row < rows) {
        const float *in = src + row * stride;
        for (int k = 0; k < cols; ++k) out[k * kNr + r] = in[k] * mul;
      } else {
        for (int k = 0; k < cols; ++k) out[k * kNr + r] = 0.0f;
      }
    }
  }
}

// Column panels, [dpad/16][padded][16]: element (row, c) at ((c / 16) * padded + row) * 16 + c % 16;
// zero past `rows` and past `cols`.
void pack_column_panels(const float *src, int64_t stride, int rows, int padded, int cols, float *dst) {
  const int panels = static_cast<int>(round_up(cols, kNr) / kNr);
  for (int row = 0; row < padded; ++row) {
    const float *in = src + row * stride;
    for (int p = 0; p < panels; ++p) {
      float *out = dst + (static_cast<size_t>(p) * padded + row) * kNr;
      const int c0 = p * kNr, n = row < rows ? std::min(kNr, cols - c0) : 0;
      for (int c = 0; c < n; ++c) out[c] = in[c0 + c];
      for (int c = n; c < kNr; ++c) out[c] = 0.0f;
    }
  }
}

// ------------------------------------------------------------------ forward

struct ForwardArgs {
  const float *q, *k, *v;
  float scale;
  float *out, *lse;
};

void pack_forward_head(const Shape &sh, const ForwardArgs &a, int32_t h, const ForwardSlot &s) {
  const int kv16 = static_cast<int>(round_up(sh.kv_tokens, kNr));
  const int64_t hd = int64_t{h} * sh.head_dim;
  pack_transposed_panels(a.k + hd, sh.row(), sh.kv_tokens, kv16, sh.head_dim, 1.0f, s.kt);
  pack_column_panels(a.v + hd, sh.row(), sh.kv_tokens, kv16, sh.head_dim, s.vp);
}

// One (head, query tile): rows [i0, i0 + br) of head h; the head is packed in s.
void forward_tile(const Shape &sh, const ForwardArgs &a, int32_t h, int32_t i0, int32_t br, const ForwardSlot &s) {
  const int d = sh.head_dim, dpad = static_cast<int>(sh.dpad()), dpanels = dpad / kNr;
  const int kv16 = static_cast<int>(round_up(sh.kv_tokens, kNr));
  const int blocks = static_cast<int>(round_up(br, kMr) / kMr), rows = blocks * kMr;
  const int64_t hd = int64_t{h} * d;
  pack_a(a.q + i0 * sh.row() + hd, sh.row(), br, d, a.scale * kLog2e, blocks, s.qa);
  std::fill(s.o, s.o + static_cast<size_t>(rows) * dpad, 0.0f);
  for (int r = 0; r < rows; ++r) {
    s.m[r] = -std::numeric_limits<float>::infinity();
    s.l[r] = 0.0f;
  }
  for (int j0 = 0; j0 < sh.kv_tokens; j0 += kKeyTile) {
    const int bc = std::min(kKeyTile, sh.kv_tokens - j0), nb = static_cast<int>(round_up(bc, kNr));
    // S' = Q' K^T for the tile, 6 x 16 blocks.
    for (int jp = 0; jp < nb / kNr; ++jp) {
      const float *b = s.kt + static_cast<size_t>(j0 / kNr + jp) * d * kNr;
      for (int blk = 0; blk < blocks; ++blk)
        micro_kernel(s.qa + static_cast<size_t>(blk) * d * kMr, 1, kMr, b, kNr, d,
                     s.s + static_cast<size_t>(blk) * kMr * kKeyTile + jp * kNr, kKeyTile, false);
    }
    // Keys past kv_tokens in the last panel get probability 0.
    for (int r = 0; r < rows; ++r)
      for (int c = bc; c < nb; ++c) s.s[r * kKeyTile + c] = -std::numeric_limits<float>::infinity();
    // Online softmax, row by row: P = 2^(S' - m_new), alpha = 2^(m_old - m_new).
    alignas(32) float alpha[kQueryTile];
    for (int r = 0; r < rows; ++r) {
      float *sr = s.s + r * kKeyTile;
      __m256 mx = _mm256_set1_ps(s.m[r]);
      for (int c = 0; c < nb; c += 8) mx = _mm256_max_ps(mx, _mm256_load_ps(sr + c));
      const float m_new = horizontal_max(mx);
      const __m256 m8 = _mm256_set1_ps(m_new);
      __m256 sum = _mm256_setzero_ps();
      for (int c = 0; c < nb; c += 8) {
        const __m256 p = exp2_nonpositive(_mm256_sub_ps(_mm256_load_ps(sr + c), m8));
        _mm256_store_ps(sr + c, p);
        sum = _mm256_add_ps(sum, p);
      }
      alpha[r] = std::exp2(std::max(s.m[r] - m_new, -127.0f));
      s.l[r] = s.l[r] * alpha[r] + horizontal_sum(sum);
      s.m[r] = m_new;
    }
    // O = alpha O + P V, 6 x 16 blocks; the V panel (bc x 16) stays in L1 across the row blocks.
    if (j0 > 0)
      for (int r = 0; r < rows; ++r) {
        const __m256 al = _mm256_set1_ps(alpha[r]);
        float *o = s.o + static_cast<size_t>(r) * dpad;
        for (int e = 0; e < dpad; e += 8) _mm256_store_ps(o + e, _mm256_mul_ps(al, _mm256_load_ps(o + e)));
      }
    for (int dp = 0; dp < dpanels; ++dp) {
      const float *b = s.vp + (static_cast<size_t>(dp) * kv16 + j0) * kNr;
      for (int blk = 0; blk < blocks; ++blk)
        micro_kernel(s.s + static_cast<size_t>(blk) * kMr * kKeyTile, kKeyTile, 1, b, kNr, bc,
                     s.o + static_cast<size_t>(blk) * kMr * dpad + dp * kNr, dpad, true);
    }
  }
  for (int r = 0; r < br; ++r) {
    const float inv = 1.0f / s.l[r];
    float *dst = a.out + (i0 + r) * sh.row() + hd;
    const float *o = s.o + static_cast<size_t>(r) * dpad;
    for (int e = 0; e < d; ++e) dst[e] = o[e] * inv;
    a.lse[int64_t{h} * sh.q_tokens + i0 + r] = (s.m[r] + std::log2(s.l[r])) * kLn2;
  }
}

// ------------------------------------------------------------------ backward

struct BackwardArgs {
  const float *q, *k, *v, *out, *lse, *d_out;
  float scale;
  float *dq, *dk, *dv;
};

// Packs Q and dO of head h in both orientations, lse log2e and D = dO . out.
void pack_backward_head(const Shape &sh, const BackwardArgs &a, int32_t h, const BackwardSlot &s) {
  const int q48 = static_cast<int>(round_up(sh.q_tokens, kQueryAlignB)), d = sh.head_dim;
  const int64_t hd = int64_t{h} * d, row = sh.row();
  pack_transposed_panels(a.q + hd, row, sh.q_tokens, q48, d, a.scale * kLog2e, s.qt);
  pack_transposed_panels(a.d_out + hd, row, sh.q_tokens, q48, d, 1.0f, s.gt);
  pack_column_panels(a.q + hd, row, sh.q_tokens, q48, d, s.qn);
  pack_column_panels(a.d_out + hd, row, sh.q_tokens, q48, d, s.gn);
  for (int i = 0; i < q48; ++i) {
    if (i < sh.q_tokens) {
      s.lse2[i] = a.lse[int64_t{h} * sh.q_tokens + i] * kLog2e;
      const float *g = a.d_out + i * row + hd, *o = a.out + i * row + hd;
      float t = 0.0f;
      for (int e = 0; e < d; ++e) t += g[e] * o[e];
      s.dterm[i] = t;
    } else {
      s.lse2[i] = std::numeric_limits<float>::infinity();  // P = 0 for padded queries
      s.dterm[i] = 0.0f;
    }
  }
}

// Key tiles [t0, t1) of head h against every query; dq_acc [q48][dpad] accumulates dS K.
void backward_chunk(const Shape &sh, const BackwardArgs &a, int32_t h, int64_t t0, int64_t t1,
                    const BackwardSlot &s, float *dq_acc) {
  const int d = sh.head_dim, dpad = static_cast<int>(sh.dpad()), dpanels = dpad / kNr;
  const int q48 = static_cast<int>(round_up(sh.q_tokens, kQueryAlignB));
  const int64_t hd = int64_t{h} * d, row = sh.row();
  for (int64_t t = t0; t < t1; ++t) {
    const int j0 = static_cast<int>(t * kKeyTileB), bc = std::min(kKeyTileB, sh.kv_tokens - j0);
    const int kblocks = static_cast<int>(round_up(bc, kMr) / kMr);
    pack_a(a.k + j0 * row + hd, row, bc, d, 1.0f, kblocks, s.ka);
    pack_a(a.v + j0 * row + hd, row, bc, d, 1.0f, kblocks, s.va);
    pack_column_panels(a.k + j0 * row + hd, row, bc, kKeyTileB, d, s.kn);
    std::fill(s.dk, s.dk + static_cast<size_t>(kKeyTileB) * dpad, 0.0f);
    std::fill(s.dv, s.dv + static_cast<size_t>(kKeyTileB) * dpad, 0.0f);
    for (int i0 = 0; i0 < q48; i0 += kQueryTileB) {
      const int nq = std::min(kQueryTileB, q48 - i0);  // a multiple of 48
      // S'^T = K Q'^T and dP^T = V dO^T, 6 keys x 16 queries at a time.
      for (int qp = 0; qp < nq / kNr; ++qp) {
        const int col = i0 + qp * kNr;
        const float *bq = s.qt + static_cast<size_t>(col / kNr) * d * kNr;
        const float *bg = s.gt + static_cast<size_t>(col / kNr) * d * kNr;
        for (int kb = 0; kb < kblocks; ++kb) {
          const size_t at = static_cast<size_t>(kb) * kMr * kQueryTileB + qp * kNr;
          micro_kernel(s.ka + static_cast<size_t>(kb) * d * kMr, 1, kMr, bq, kNr, d, s.p + at, kQueryTileB, false);
          micro_kernel(s.va + static_cast<size_t>(kb) * d * kMr, 1, kMr, bg, kNr, d, s.ds + at, kQueryTileB, false);
        }
      }
      // P^T = 2^(S'^T - lse log2e), dS^T = P^T (dP^T - D).
      for (int c = 0; c < kblocks * kMr; ++c) {
        float *pr = s.p + static_cast<size_t>(c) * kQueryTileB, *dr = s.ds + static_cast<size_t>(c) * kQueryTileB;
        for (int e = 0; e < nq; e += 8) {
          const __m256 p = exp2_nonpositive(_mm256_sub_ps(_mm256_load_ps(pr + e), _mm256_load_ps(s.lse2 + i0 + e)));
          _mm256_store_ps(pr + e, p);
          _mm256_store_ps(dr + e, _mm256_mul_ps(p, _mm256_sub_ps(_mm256_load_ps(dr + e), _mm256_load_ps(s.dterm + i0 + e))));
        }
      }
      // dV += P^T dO and dK += dS^T Q: 6 keys x 16 channels, reduction over the tile's queries.
      for (int dpn = 0; dpn < dpanels; ++dpn) {
        const float *bg = s.gn + (static_cast<size_t>(dpn) * q48 + i0) * kNr;
        const float *bq = s.qn + (static_cast<size_t>(dpn) * q48 + i0) * kNr;
        for (int kb = 0; kb < kblocks; ++kb) {
          const size_t at = static_cast<size_t>(kb) * kMr * dpad + dpn * kNr;
          micro_kernel(s.p + static_cast<size_t>(kb) * kMr * kQueryTileB, kQueryTileB, 1, bg, kNr, nq, s.dv + at, dpad,
                       true);
          micro_kernel(s.ds + static_cast<size_t>(kb) * kMr * kQueryTileB, kQueryTileB, 1, bq, kNr, nq, s.dk + at,
                       dpad, true);
        }
      }
      // dQ += dS K: 6 queries x 16 channels, reduction over the tile's keys.
      for (int dpn = 0; dpn < dpanels; ++dpn) {
        const float *bk = s.kn + static_cast<size_t>(dpn) * kKeyTileB * kNr;
        for (int qb = 0; qb < nq / kMr; ++qb)
          micro_kernel(s.ds + qb * kMr, 1, kQueryTileB, bk, kNr, bc,
                       dq_acc + static_cast<size_t>(i0 + qb * kMr) * dpad + dpn * kNr, dpad, true);
      }
    }
    for (int c = 0; c < bc; ++c) {
      float *dkr = a.dk + (j0 + c) * row + hd, *dvr = a.dv + (j0 + c) * row + hd;
      const float *sk = s.dk + static_cast<size_t>(c) * dpad, *sv = s.dv + static_cast<size_t>(c) * dpad;
      for (int e = 0; e < d; ++e) {
        dkr[e] += a.scale * sk[e];
        dvr[e] += sv[e];
      }
    }
  }
}

}  // namespace

extern "C" FVMT_API size_t fvmt_attention_workspace_bytes(int32_t q_tokens, int32_t kv_tokens, int32_t heads,
                                                          int32_t head_dim) {
  if (q_tokens <= 0 || kv_tokens <= 0 || heads <= 0 || head_dim <= 0) return 0;
  return plan_for(Shape{q_tokens, kv_tokens, heads, head_dim}, std::max(1, omp_get_max_threads())).bytes();
}

extern "C" FVMT_API int32_t fvmt_attention_forward(const float *q, const float *k, const float *v, int32_t q_tokens,
                                                   int32_t kv_tokens, int32_t heads, int32_t head_dim, float scale,
                                                   float *out, float *lse, void *workspace, size_t workspace_bytes,
                                                   void *) {
  static constexpr char fn[] = "fvmt_attention_forward";
  return cpu::run_guarded(fn, [&]() -> int32_t {
    if (int32_t s = check_attention_shape(fn, q_tokens, kv_tokens, heads, head_dim, scale, kAnyHeadDim)) return s;
    if (int32_t s = check_pointers(fn, {{"q", q}, {"k", k}, {"v", v}, {"out", out}, {"lse", lse}})) return s;
    const Shape sh{q_tokens, kv_tokens, heads, head_dim};
    Plan plan;
    if (int32_t s = plan_call(fn, sh, workspace, workspace_bytes, plan)) return s;
    const ForwardArgs a{q, k, v, scale, out, lse};
    const int64_t tiles = tiles_along(q_tokens, kQueryTile), tasks = tiles * heads;
#pragma omp parallel num_threads(plan.threads)
    {
      Carver carve(aligned_base(workspace) + omp_get_thread_num() * plan.slot_floats);
      const ForwardSlot slot(sh, carve);
      int32_t packed = -1;  // the head whose K and V the slot holds
      // Static: each thread gets consecutive tasks, so it packs each of its heads once.
#pragma omp for schedule(static)
      for (int64_t t = 0; t < tasks; ++t) {
        const int32_t h = static_cast<int32_t>(t / tiles);
        const int32_t i0 = static_cast<int32_t>((t % tiles) * kQueryTile);
        if (h != packed) {
          pack_forward_head(sh, a, h, slot);
          packed = h;
        }
        forward_tile(sh, a, h, i0, std::min(kQueryTile, q_tokens - i0), slot);
      }
    }
    return FVMT_OK;
  });
}

extern "C" FVMT_API int32_t fvmt_attention_backward(const float *q, const float *k, const float *v, const float *out,
                                                    const float *lse, const float *d_out, int32_t q_tokens,
                                                    int32_t kv_tokens, int32_t heads, int32_t head_dim, float scale,
                                                    float *dq, float *dk, float *dv, void *workspace,
                                                    size_t workspace_bytes, void *) {
  static constexpr char fn[] = "fvmt_attention_backward";
  return cpu::run_guarded(fn, [&]() -> int32_t {
    if (int32_t s = check_attention_shape(fn, q_tokens, kv_tokens, heads, head_dim, scale, kAnyHeadDim)) return s;
    if (int32_t s = check_pointers(fn, {{"q", q}, {"k", k}, {"v", v}, {"out", out}, {"lse", lse}, {"d_out", d_out},
                                        {"dq", dq}, {"dk", dk}, {"dv", dv}}))
      return s;
    if (int32_t s = check_attention_gradients(fn, q_tokens, kv_tokens, heads, head_dim, dq, dk, dv)) return s;
    const Shape sh{q_tokens, kv_tokens, heads, head_dim};
    Plan plan;
    if (int32_t s = plan_call(fn, sh, workspace, workspace_bytes, plan)) return s;
    const BackwardArgs a{q, k, v, out, lse, d_out, scale, dq, dk, dv};
    float *partials = aligned_base(workspace) + plan.threads * plan.slot_floats;
    const int chunks = plan.key_chunks;
    const int64_t key_tiles = key_tiles_b(sh), tasks = int64_t{heads} * chunks, row = sh.row();
    const size_t dpad = sh.dpad(), q48 = round_up(q_tokens, kQueryAlignB);
#pragma omp parallel num_threads(plan.threads)
    {
      Carver carve(aligned_base(workspace) + omp_get_thread_num() * plan.slot_floats);
      const BackwardSlot slot(sh, carve);
      int32_t packed = -1;
#pragma omp for schedule(static)
      for (int64_t t = 0; t < tasks; ++t) {
        const int32_t h = static_cast<int32_t>(t / chunks), g = static_cast<int32_t>(t % chunks);
        if (h != packed) {
          pack_backward_head(sh, a, h, slot);
          packed = h;
        }
        float *acc = chunks > 1 ? partials + static_cast<size_t>(t) * plan.partial_floats : slot.dq;
        std::fill(acc, acc + q48 * dpad, 0.0f);
        backward_chunk(sh, a, h, key_tiles * g / chunks, key_tiles * (g + 1) / chunks, slot, acc);
        if (chunks == 1) {  // the task owns dQ of head h
          for (int32_t i = 0; i < q_tokens; ++i) {
            float *dst = dq + i * row + int64_t{h} * head_dim;
            const float *src = acc + i * dpad;
            for (int32_t e = 0; e < head_dim; ++e) dst[e] += scale * src[e];
          }
        }
      }
      if (chunks > 1) {
        // dQ = the chunks' partials added in chunk order.
#pragma omp for schedule(static)
        for (int64_t t = 0; t < int64_t{heads} * q_tokens; ++t) {
          const int64_t h = t / q_tokens, i = t % q_tokens;
          float *dst = dq + i * row + h * head_dim;
          for (int32_t e = 0; e < head_dim; ++e) {
            float sum = 0.0f;
            for (int g = 0; g < chunks; ++g)
              sum += partials[static_cast<size_t>(h * chunks + g) * plan.partial_floats + i * dpad + e];
            dst[e] += scale * sum;
          }
        }
      }
    }
    return FVMT_OK;
  });
}
