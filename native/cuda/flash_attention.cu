// Fused multi-head attention (fastvmt.h, "Fused multi-head attention"), fp32 SIMT.
//
// Per head h, with q_i, k_j, v_j the head_dim-long slices of token i / j
// (q, out: [q_tokens, heads, head_dim]; k, v: [kv_tokens, heads, head_dim]; token-major):
//     s_ij = scale * q_i . k_j        P_ij = exp(s_ij - lse_i),  lse_i = log sum_j exp(s_ij)
//     out_i = sum_j P_ij v_j          lse: [heads, q_tokens]
// Backward, given d_out (g_i) and the row terms D_i = g_i . out_i:
//     dP_ij = g_i . v_j               dS_ij = P_ij (dP_ij - D_i)
//     dq_i += scale * sum_j dS_ij k_j     dk_j += scale * sum_i dS_ij q_i     dv_j += sum_i P_ij g_i
//
// Kernels (256 threads = 16 x 16; a thread (ta, tb) owns R = A/16 consecutive rows of the
// block's A own rows and, of each streamed 64-row tile, the rows 2tb, 2tb+1, 2tb+32, 2tb+33):
//  - attention_forward_kernel<D>: one block per (head, A queries). Streams 64-key tiles of K
//    and V through one shared buffer with an online softmax in base 2 (running max and sum
//    per row, output accumulator in registers, rescaled when the max grows), so the
//    [q_tokens, kv_tokens] scores are never stored. Writes out and lse.
//  - attention_row_dot_kernel: D_i, one warp per (token, head), into the workspace.
//  - attention_dq_kernel<D>: one block per (head, A queries) owns their dq rows and streams
//    every key tile: dP from d_out and V, S from Q and K, dS, then dq += dS K.
//  - attention_dkv_kernel<D>: one block per (head, A keys) owns their dk and dv rows and
//    streams every query tile: S^T from K and Q, P^T, dV += P^T d_out, dP^T from V and d_out,
//    dK += dS^T Q.
// Every gradient element is summed by one thread in a fixed order, with no atomics: the
// results are deterministic. D, the head_dim rounded up to 32, 64, 128 or 256, is a template
// parameter (channels past head_dim are zero in shared memory), so every loop is unrolled.
//
// Why it is fast without tensor cores:
//  - own rows (Q, or K and V) are staged once per block in shared memory, channel-major
//    [D][A + 4]; a thread reads its R rows of a channel as one 8- or 16-byte broadcast;
//  - streamed tiles are staged channel-major [D][66]: the score product reads two float2
//    per channel (rows 2tb.. and 2tb+32.., all 32 banks across a half warp), and the
//    products "coefficients x tile" read the same buffer transposed: tile[c][j..j+1] (one
//    float2, the unrolled j loop pairs them) for the 16 columns c = tc + 16y of a half warp
//    lands in 32 distinct banks thanks to the stride 66, so no row-major copy is needed;
//  - per channel a thread does 4R FMAs of the scores; per streamed row R x D/16 FMAs of the
//    products, all in registers (no spills at head_dim 128, see the build log);
//  - the online softmax reduces a row's max over its 16 threads with 4 shuffles per tile
//    and its sum only once at the end; exp2 of pre-scaled scores is one instruction.
// Shared memory per block (opted in past 48 KiB): at head_dim 128 the forward takes 84 KiB
// (two blocks per SM on sm_90), dq and dk/dv 78 KiB each (two on sm_80 and sm_90); at 256 the
// forward 111 KiB and the backward 147 KiB, within sm_80's 163 KiB.
#include <cmath>

#include "entry.cuh"
#include "dit_checks.hpp"

namespace fvmt {
namespace {

constexpr int kThreads = 256;                 // 16 x 16
constexpr int kLanes = 16;                    // threads sharing one row group (half a warp)
constexpr int kTile = 64;                     // rows of a streamed tile
constexpr int kTileStride = kTile + 2;        // floats per channel of a staged tile
constexpr int kMaxHeadDim = 256;
constexpr int kRowDotWarps = 8;               // rows per block of the row-dot kernel
constexpr size_t kDefaultSharedLimit = 48 * 1024;
constexpr double kLog2e = 1.4426950408889634;
constexpr float kLn2 = 0.693147180559945309f;

// Own rows per block: as many as the registers and shared memory allow at two blocks per SM.
__host__ __device__ constexpr int forward_rows(int d) { return d <= 128 ? 64 : 32; }
__host__ __device__ constexpr int backward_rows(int d) { return d <= 64 ? 64 : 32; }
// __launch_bounds__ minimum of resident blocks: 2 lets ptxas use 128 registers per thread (no
// spills). At head_dim 256 the shared memory admits one block per SM anyway, so the kernels
// may use up to 255 registers (the dK/dV one spills at 128).
__host__ __device__ constexpr int min_blocks(int d) { return d <= 128 ? 2 : 1; }

// Tiles of d covering n >= 1 rows (no overflow near INT32_MAX).
constexpr int ceil_div(int n, int d) { return (n - 1) / d + 1; }

// Floats of dynamic shared memory of each kernel (own tiles, streamed buffer, coefficients).
constexpr size_t forward_shared_floats(int d) {
  return static_cast<size_t>(d) * (forward_rows(d) + 4) + static_cast<size_t>(d) * kTileStride +
         static_cast<size_t>(kTile) * (forward_rows(d) + 4);
}
constexpr size_t dq_shared_floats(int d) {
  return 2 * static_cast<size_t>(d) * (backward_rows(d) + 4) + static_cast<size_t>(d) * kTileStride +
         static_cast<size_t>(kTile) * (backward_rows(d) + 4);
}
constexpr size_t dkv_shared_floats(int d) { return dq_shared_floats(d) + 2 * kTile; }

// Row y (0..3) of a streamed tile that thread column tb owns.
__device__ __forceinline__ int tile_row(int tb, int y) { return 2 * tb + (y & 1) + 32 * (y >> 1); }

// dst[ch][r] = src[(row0 + r) * stride + ch] for r < A, ch < D; zero past `rows` or head_dim.
// Lane l of group g writes row (g % (A/4))*4 + l%4, channel (g / (A/4))*8 + l/4: reads are
// 32-byte runs, and the stride A + 4 puts the 32 writes in 32 banks.
template <int D, int A>
__device__ __forceinline__ void stage_own(float (*dst)[A + 4], const float *__restrict__ src, int64_t stride,
                                          int row0, int rows, int head_dim) {
  constexpr int kRowGroups = A / 4;
  for (int e = threadIdx.x; e < A * D; e += kThreads) {
    const int lane = e & 31, group = e >> 5;
    const int r = (group % kRowGroups) * 4 + (lane & 3);
    const int ch = (group / kRowGroups) * 8 + (lane >> 2);
    const int64_t row = static_cast<int64_t>(row0) + r;
    dst[ch][r] = (row < rows && ch < head_dim) ? src[row * stride + ch] : 0.0f;
  }
}

// The same for a streamed tile of kTile rows, with 2 rows x 16 channels per warp (banks
// 2ch + r of the stride 66 are then distinct).
template <int D>
__device__ __forceinline__ void stage_tile(float (*dst)[kTileStride], const float *__restrict__ src, int64_t stride,
                                           int row0, int rows, int head_dim) {
  constexpr int kRowGroups = kTile / 2;
  for (int e = threadIdx.x; e < kTile * D; e += kThreads) {
    const int lane = e & 31, group = e >> 5;
    const int r = (group % kRowGroups) * 2 + (lane & 1);
    const int ch = (group / kRowGroups) * 16 + (lane >> 1);
    const int64_t row = static_cast<int64_t>(row0) + r;
    dst[ch][r] = (row < rows && ch < head_dim) ? src[row * stride + ch] : 0.0f;
  }
}

// acc[x][y] = sum_ch own[ch][ta*R + x] * tile[ch][tile_row(tb, y)].
template <int D, int R>
__device__ __forceinline__ void score_block(float (&acc)[R][4], const float (*own)[R * kLanes + 4],
                                            const float (*tile)[kTileStride]) {
  const int ta = threadIdx.x / kLanes, tb = threadIdx.x % kLanes;
  for (int x = 0; x < R; ++x)
    for (int y = 0; y < 4; ++y) acc[x][y] = 0.0f;
  FVMT_UNROLL(8)
  for (int ch = 0; ch < D; ++ch) {
    float a[R], b[4];
    for (int x = 0; x < R; ++x) a[x] = own[ch][ta * R + x];
    for (int y = 0; y < 4; ++y) b[y] = tile[ch][tile_row(tb, y)];
    for (int x = 0; x < R; ++x)
      for (int y = 0; y < 4; ++y) acc[x][y] = fmaf(a[x], b[y], acc[x][y]);
  }
}

// acc[x][c] += sum_j coef[j][ta*R + x] * tile[tc + 16c][j]: coefficients (P or dS, stored
// tile-row-major) times the streamed tile, read transposed.
template <int D, int R>
__device__ __forceinline__ void add_product(float (&acc)[R][D / kLanes], const float (*coef)[R * kLanes + 4],
                                            const float (*tile)[kTileStride]) {
  const int ta = threadIdx.x / kLanes, tc = threadIdx.x % kLanes;
  FVMT_UNROLL(4)
  for (int j = 0; j < kTile; ++j) {
    float a[R], b[D / kLanes];
    for (int x = 0; x < R; ++x) a[x] = coef[j][ta * R + x];
    for (int c = 0; c < D / kLanes; ++c) b[c] = tile[tc + kLanes * c][j];
    for (int x = 0; x < R; ++x)
      for (int c = 0; c < D / kLanes; ++c) acc[x][c] = fmaf(a[x], b[c], acc[x][c]);
  }
}

// Max / sum over the 16 threads of a row group (xor offsets below 16 stay in the half warp).
__device__ __forceinline__ float group_max(float value) {
  for (int offset = kLanes / 2; offset > 0; offset /= 2)
    value = fmaxf(value, __shfl_xor_sync(0xffffffffu, value, offset));
  return value;
}
__device__ __forceinline__ float group_sum(float value) {
  for (int offset = kLanes / 2; offset > 0; offset /= 2) value += __shfl_xor_sync(0xffffffffu, value, offset);
  return value;
}

// ------------------------------------------------------------------- forward

// One block per (head, A queries); grid = heads * query_tiles, head-major so that the blocks
// running together share K and V in L2. scale2 = scale * log2(e).
template <int D>
__global__ void __launch_bounds__(kThreads, min_blocks(D))
    attention_forward_kernel(const float *__restrict__ q, const float *__restrict__ k, const float *__restrict__ v,
                             int q_tokens, int kv_tokens, int heads, int head_dim, float scale2, int query_tiles,
                             float *__restrict__ out, float *__restrict__ lse) {
  constexpr int A = forward_rows(D), R = A / kLanes, C = D / kLanes;
  FVMT_DYNAMIC_SHARED(float, smem);
  float(*q_cm)[A + 4] = reinterpret_cast<float(*)[A + 4]>(smem);
  float(*kv)[kTileStride] = reinterpret_cast<float(*)[kTileStride]>(smem + D * (A + 4));
  float(*p)[A + 4] = reinterpret_cast<float(*)[A + 4]>(smem + D * (A + 4) + D * kTileStride);

  const int head = blockIdx.x / query_tiles, q0 = (blockIdx.x % query_tiles) * A;
  const int ta = threadIdx.x / kLanes, tb = threadIdx.x % kLanes;
  const int64_t stride = static_cast<int64_t>(heads) * head_dim, offset = static_cast<int64_t>(head) * head_dim;

  stage_own<D, A>(q_cm, q + offset, stride, q0, q_tokens, head_dim);
  float m[R], l[R], o[R][C];
  for (int x = 0; x < R; ++x) {
    m[x] = -INFINITY;
    l[x] = 0.0f;
    for (int c = 0; c < C; ++c) o[x][c] = 0.0f;
  }
  for (int64_t k0 = 0; k0 < kv_tokens; k0 += kTile) {  // 64-bit: no overflow past the last tile
    stage_tile<D>(kv, k + offset, stride, static_cast<int>(k0), kv_tokens, head_dim);
    __syncthreads();  // also publishes q_cm on the first tile
    float s[R][4];
    score_block<D, R>(s, q_cm, kv);
    __syncthreads();  // K is consumed: V replaces it
    stage_tile<D>(kv, v + offset, stride, static_cast<int>(k0), kv_tokens, head_dim);
    for (int x = 0; x < R; ++x) {
      float s2[4];
      for (int y = 0; y < 4; ++y) s2[y] = k0 + tile_row(tb, y) < kv_tokens ? s[x][y] * scale2 : -INFINITY;
      // Every tile holds a real key, so the new max is finite and alpha is 0 on the first tile.
      const float m_new = fmaxf(m[x], group_max(fmaxf(fmaxf(s2[0], s2[1]), fmaxf(s2[2], s2[3]))));
      const float alpha = exp2f(m[x] - m_new);
      float sum = 0.0f;
      for (int y = 0; y < 4; ++y) {
        const float pv = exp2f(s2[y] - m_new);
        p[tile_row(tb, y)][ta * R + x] = pv;
        sum += pv;
      }
      l[x] = l[x] * alpha + sum;
      m[x] = m_new;
      for (int c = 0; c < C; ++c) o[x][c] *= alpha;
    }
    __syncthreads();
    add_product<D, R>(o, p, kv);
    __syncthreads();  // p and kv are free for the next tile
  }
  for (int x = 0; x < R; ++x) {
    const float total = group_sum(l[x]);
    const int64_t row = static_cast<int64_t>(q0) + ta * R + x;
    if (row >= q_tokens) continue;
    const float inv = 1.0f / total;
    float *dst = out + row * stride + offset;
    for (int c = 0; c < C; ++c) {
      const int col = tb + kLanes * c;
      if (col < head_dim) dst[col] = o[x][c] * inv;
    }
    if (tb == 0) lse[static_cast<int64_t>(head) * q_tokens + row] = (m[x] + log2f(total)) * kLn2;
  }
}

// ------------------------------------------------------------------ backward

// row_dot[head, token] = d_out[token, head, :] . out[token, head, :]; one warp per row,
// a fixed shuffle tree.
__global__ void __launch_bounds__(kRowDotWarps * 32)
    attention_row_dot_kernel(const float *__restrict__ out, const float *__restrict__ d_out, int q_tokens, int heads,
                             int head_dim, float *__restrict__ row_dot) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kRowDotWarps + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (row >= static_cast<int64_t>(q_tokens) * heads) return;  // whole warps leave together
  const float *o = out + row * head_dim;
  const float *g = d_out + row * head_dim;
  float sum = 0.0f;
  for (int d = lane; d < head_dim; d += 32) sum = fmaf(o[d], g[d], sum);
  for (int offset = 16; offset > 0; offset /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, offset);
  if (lane == 0) {
    const int64_t token = row / heads, head = row % heads;
    row_dot[head * q_tokens + token] = sum;
  }
}

// One block per (head, A queries) owns their dq rows: dq += scale * dS K over all key tiles.
template <int D>
__global__ void __launch_bounds__(kThreads, min_blocks(D))
    attention_dq_kernel(const float *__restrict__ q, const float *__restrict__ k, const float *__restrict__ v,
                        const float *__restrict__ lse, const float *__restrict__ d_out,
                        const float *__restrict__ row_dot, int q_tokens, int kv_tokens, int heads, int head_dim,
                        float scale, float scale2, int query_tiles, float *__restrict__ dq) {
  constexpr int A = backward_rows(D), R = A / kLanes, C = D / kLanes;
  FVMT_DYNAMIC_SHARED(float, smem);
  float(*q_cm)[A + 4] = reinterpret_cast<float(*)[A + 4]>(smem);
  float(*g_cm)[A + 4] = reinterpret_cast<float(*)[A + 4]>(smem + D * (A + 4));
  float(*kv)[kTileStride] = reinterpret_cast<float(*)[kTileStride]>(smem + 2 * D * (A + 4));
  float(*ds)[A + 4] = reinterpret_cast<float(*)[A + 4]>(smem + 2 * D * (A + 4) + D * kTileStride);

  const int head = blockIdx.x / query_tiles, q0 = (blockIdx.x % query_tiles) * A;
  const int ta = threadIdx.x / kLanes, tb = threadIdx.x % kLanes;
  const int64_t stride = static_cast<int64_t>(heads) * head_dim, offset = static_cast<int64_t>(head) * head_dim;

  stage_own<D, A>(q_cm, q + offset, stride, q0, q_tokens, head_dim);
  stage_own<D, A>(g_cm, d_out + offset, stride, q0, q_tokens, head_dim);
  float lse2[R], dot[R], acc[R][C];
  bool valid[R];
  for (int x = 0; x < R; ++x) {
    const int64_t row = static_cast<int64_t>(q0) + ta * R + x;
    valid[x] = row < q_tokens;
    const int64_t index = static_cast<int64_t>(head) * q_tokens + row;
    lse2[x] = valid[x] ? lse[index] * static_cast<float>(kLog2e) : 0.0f;
    dot[x] = valid[x] ? row_dot[index] : 0.0f;
    for (int c = 0; c < C; ++c) acc[x][c] = 0.0f;
  }
  for (int64_t k0 = 0; k0 < kv_tokens; k0 += kTile) {
    stage_tile<D>(kv, v + offset, stride, static_cast<int>(k0), kv_tokens, head_dim);
    __syncthreads();
    float dp[R][4];
    score_block<D, R>(dp, g_cm, kv);
    __syncthreads();  // V is consumed: K replaces it
    stage_tile<D>(kv, k + offset, stride, static_cast<int>(k0), kv_tokens, head_dim);
    __syncthreads();
    float s[R][4];
    score_block<D, R>(s, q_cm, kv);
    for (int x = 0; x < R; ++x)
      for (int y = 0; y < 4; ++y) {
        const bool live = valid[x] && k0 + tile_row(tb, y) < kv_tokens;
        ds[tile_row(tb, y)][ta * R + x] = live ? exp2f(s[x][y] * scale2 - lse2[x]) * (dp[x][y] - dot[x]) : 0.0f;
      }
    __syncthreads();
    add_product<D, R>(acc, ds, kv);
    __syncthreads();  // ds and kv are free for the next tile
  }
  for (int x = 0; x < R; ++x) {
    if (!valid[x]) continue;
    float *dst = dq + (static_cast<int64_t>(q0) + ta * R + x) * stride + offset;
    for (int c = 0; c < C; ++c) {
      const int col = tb + kLanes * c;
      if (col < head_dim) dst[col] += scale * acc[x][c];
    }
  }
}

// One block per (head, A keys) owns their dk and dv rows: over all query tiles,
// dv += P^T d_out and dk += scale * dS^T Q.
template <int D>
__global__ void __launch_bounds__(kThreads, min_blocks(D))
    attention_dkv_kernel(const float *__restrict__ q, const float *__restrict__ k, const float *__restrict__ v,
                         const float *__restrict__ lse, const float *__restrict__ d_out,
                         const float *__restrict__ row_dot, int q_tokens, int kv_tokens, int heads, int head_dim,
                         float scale, float scale2, int key_tiles, float *__restrict__ dk, float *__restrict__ dv) {
  constexpr int A = backward_rows(D), R = A / kLanes, C = D / kLanes;
  FVMT_DYNAMIC_SHARED(float, smem);
  float(*k_cm)[A + 4] = reinterpret_cast<float(*)[A + 4]>(smem);
  float(*v_cm)[A + 4] = reinterpret_cast<float(*)[A + 4]>(smem + D * (A + 4));
  float(*tile)[kTileStride] = reinterpret_cast<float(*)[kTileStride]>(smem + 2 * D * (A + 4));
  float(*coef)[A + 4] = reinterpret_cast<float(*)[A + 4]>(smem + 2 * D * (A + 4) + D * kTileStride);
  float *tile_lse2 = smem + 2 * D * (A + 4) + D * kTileStride + kTile * (A + 4);
  float *tile_dot = tile_lse2 + kTile;

  const int head = blockIdx.x / key_tiles, k0 = (blockIdx.x % key_tiles) * A;
  const int ta = threadIdx.x / kLanes, tb = threadIdx.x % kLanes;
  const int64_t stride = static_cast<int64_t>(heads) * head_dim, offset = static_cast<int64_t>(head) * head_dim;

  stage_own<D, A>(k_cm, k + offset, stride, k0, kv_tokens, head_dim);
  stage_own<D, A>(v_cm, v + offset, stride, k0, kv_tokens, head_dim);
  float acc_k[R][C], acc_v[R][C];
  bool valid[R];
  for (int x = 0; x < R; ++x) {
    valid[x] = static_cast<int64_t>(k0) + ta * R + x < kv_tokens;
    for (int c = 0; c < C; ++c) acc_k[x][c] = acc_v[x][c] = 0.0f;
  }
  for (int64_t q0 = 0; q0 < q_tokens; q0 += kTile) {
    stage_tile<D>(tile, q + offset, stride, static_cast<int>(q0), q_tokens, head_dim);
    if (threadIdx.x < kTile) {
      const int64_t row = q0 + threadIdx.x;
      const int64_t index = static_cast<int64_t>(head) * q_tokens + row;
      tile_lse2[threadIdx.x] = row < q_tokens ? lse[index] * static_cast<float>(kLog2e) : 0.0f;
      tile_dot[threadIdx.x] = row < q_tokens ? row_dot[index] : 0.0f;
    }
    __syncthreads();
    float pr[R][4];
    score_block<D, R>(pr, k_cm, tile);  // s^T: own keys x tile queries
    for (int x = 0; x < R; ++x)
      for (int y = 0; y < 4; ++y) {
        const int j = tile_row(tb, y);
        pr[x][y] = valid[x] && q0 + j < q_tokens ? exp2f(pr[x][y] * scale2 - tile_lse2[j]) : 0.0f;
      }
    __syncthreads();  // Q is consumed: d_out replaces it
    stage_tile<D>(tile, d_out + offset, stride, static_cast<int>(q0), q_tokens, head_dim);
    for (int x = 0; x < R; ++x)
      for (int y = 0; y < 4; ++y) coef[tile_row(tb, y)][ta * R + x] = pr[x][y];
    __syncthreads();
    float dp[R][4];
    score_block<D, R>(dp, v_cm, tile);  // dP^T
    add_product<D, R>(acc_v, coef, tile);
    __syncthreads();  // P and d_out are consumed: dS and Q replace them
    for (int x = 0; x < R; ++x)
      for (int y = 0; y < 4; ++y) {
        const int j = tile_row(tb, y);
        coef[j][ta * R + x] = pr[x][y] * (dp[x][y] - tile_dot[j]);
      }
    stage_tile<D>(tile, q + offset, stride, static_cast<int>(q0), q_tokens, head_dim);
    __syncthreads();
    add_product<D, R>(acc_k, coef, tile);
    __syncthreads();  // tile, coef and the row terms are free for the next tile
  }
  for (int x = 0; x < R; ++x) {
    if (!valid[x]) continue;
    const int64_t base = (static_cast<int64_t>(k0) + ta * R + x) * stride + offset;
    for (int c = 0; c < C; ++c) {
      const int col = tb + kLanes * c;
      if (col < head_dim) {
        dk[base + col] += scale * acc_k[x][c];
        dv[base + col] += acc_v[x][c];
      }
    }
  }
}

// ------------------------------------------------------------------ launchers

struct AttentionWorkspace {
  float *row_dot;  // [heads, q_tokens], the backward's D_i

  static AttentionWorkspace carve(WorkspaceLayout &layout, int32_t q_tokens, int32_t heads) {
    return {layout.take<float>(static_cast<int64_t>(q_tokens) * heads)};
  }
};

// Allows `kernel` `floats` of dynamic shared memory (CUDA needs an opt-in past 48 KiB).
template <typename Kernel>
int32_t allow_shared(const char *fn, Kernel *kernel, size_t floats, int32_t head_dim, const char *what) {
  const size_t bytes = floats * sizeof(float);
  if (bytes <= kDefaultSharedLimit) return FVMT_OK;
  const cudaError_t error =
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes));
  if (error == cudaSuccess) return FVMT_OK;
  cudaGetLastError();  // not to be reported again by a later launch check
  return fail(FVMT_ERR_UNSUPPORTED, "%s: head_dim %d needs %zu bytes of shared memory per block for %s: %s", fn,
              head_dim, bytes, what, cudaGetErrorString(error));
}

template <int D>
int32_t launch_forward(const char *fn, const float *q, const float *k, const float *v, int32_t q_tokens,
                       int32_t kv_tokens, int32_t heads, int32_t head_dim, float scale, float *out, float *lse,
                       cudaStream_t stream) {
  const int query_tiles = ceil_div(q_tokens, forward_rows(D));
  unsigned grid = 0;
  if (int32_t s = grid_size(fn, static_cast<int64_t>(heads) * query_tiles, &grid)) return s;
  const size_t floats = forward_shared_floats(D);
  if (int32_t s = allow_shared(fn, attention_forward_kernel<D>, floats, head_dim, "attention_forward_kernel"))
    return s;
  const float scale2 = static_cast<float>(scale * kLog2e);
  FVMT_LAUNCH(grid, kThreads, floats * sizeof(float), stream, attention_forward_kernel<D>)
  (q, k, v, q_tokens, kv_tokens, heads, head_dim, scale2, query_tiles, out, lse);
  return check_launch(fn, "attention_forward_kernel");
}

template <int D>
int32_t launch_backward(const char *fn, const float *q, const float *k, const float *v, const float *out,
                        const float *lse, const float *d_out, int32_t q_tokens, int32_t kv_tokens, int32_t heads,
                        int32_t head_dim, float scale, float *dq, float *dk, float *dv, const AttentionWorkspace &ws,
                        cudaStream_t stream) {
  unsigned row_grid = 0, q_grid = 0, k_grid = 0;
  if (int32_t s = grid_size(fn, (static_cast<int64_t>(q_tokens) * heads + kRowDotWarps - 1) / kRowDotWarps, &row_grid))
    return s;
  const int query_tiles = ceil_div(q_tokens, backward_rows(D)), key_tiles = ceil_div(kv_tokens, backward_rows(D));
  if (int32_t s = grid_size(fn, static_cast<int64_t>(heads) * query_tiles, &q_grid)) return s;
  if (int32_t s = grid_size(fn, static_cast<int64_t>(heads) * key_tiles, &k_grid)) return s;
  if (int32_t s = allow_shared(fn, attention_dq_kernel<D>, dq_shared_floats(D), head_dim, "attention_dq_kernel"))
    return s;
  if (int32_t s = allow_shared(fn, attention_dkv_kernel<D>, dkv_shared_floats(D), head_dim, "attention_dkv_kernel"))
    return s;
  const float scale2 = static_cast<float>(scale * kLog2e);

  FVMT_LAUNCH(row_grid, kRowDotWarps * 32, 0, stream, attention_row_dot_kernel)
  (out, d_out, q_tokens, heads, head_dim, ws.row_dot);
  if (int32_t s = check_launch(fn, "attention_row_dot_kernel")) return s;
  FVMT_LAUNCH(q_grid, kThreads, dq_shared_floats(D) * sizeof(float), stream, attention_dq_kernel<D>)
  (q, k, v, lse, d_out, ws.row_dot, q_tokens, kv_tokens, heads, head_dim, scale, scale2, query_tiles, dq);
  if (int32_t s = check_launch(fn, "attention_dq_kernel")) return s;
  FVMT_LAUNCH(k_grid, kThreads, dkv_shared_floats(D) * sizeof(float), stream, attention_dkv_kernel<D>)
  (q, k, v, lse, d_out, ws.row_dot, q_tokens, kv_tokens, heads, head_dim, scale, scale2, key_tiles, dk, dv);
  return check_launch(fn, "attention_dkv_kernel");
}

}  // namespace
}  // namespace fvmt

using namespace fvmt;

extern "C" FVMT_API size_t fvmt_attention_workspace_bytes(int32_t q_tokens, int32_t kv_tokens, int32_t heads,
                                                          int32_t head_dim) {
  if (q_tokens <= 0 || kv_tokens <= 0 || heads <= 0 || head_dim <= 0) return 0;
  WorkspaceLayout layout(nullptr);
  AttentionWorkspace::carve(layout, q_tokens, heads);
  return layout.bytes();
}

extern "C" FVMT_API int32_t fvmt_attention_forward(const float *q, const float *k, const float *v, int32_t q_tokens,
                                                   int32_t kv_tokens, int32_t heads, int32_t head_dim, float scale,
                                                   float *out, float *lse, void *workspace, size_t workspace_bytes,
                                                   void *stream) {
  static const char fn[] = "fvmt_attention_forward";
  return guarded(fn, [&]() -> int32_t {
    if (int32_t s = check_attention_shape(fn, q_tokens, kv_tokens, heads, head_dim, scale, kMaxHeadDim)) return s;
    if (int32_t s = check_pointers(fn, {{"q", q}, {"k", k}, {"v", v}, {"out", out}, {"lse", lse}})) return s;
    // fastvmt.h has one workspace size for both directions; the forward itself uses none of it.
    if (int32_t s = check_workspace(fn, workspace, workspace_bytes,
                                    fvmt_attention_workspace_bytes(q_tokens, kv_tokens, heads, head_dim)))
      return s;
    const cudaStream_t st = as_stream(stream);
    if (head_dim <= 32)
      return launch_forward<32>(fn, q, k, v, q_tokens, kv_tokens, heads, head_dim, scale, out, lse, st);
    if (head_dim <= 64)
      return launch_forward<64>(fn, q, k, v, q_tokens, kv_tokens, heads, head_dim, scale, out, lse, st);
    if (head_dim <= 128)
      return launch_forward<128>(fn, q, k, v, q_tokens, kv_tokens, heads, head_dim, scale, out, lse, st);
    return launch_forward<256>(fn, q, k, v, q_tokens, kv_tokens, heads, head_dim, scale, out, lse, st);
  });
}

extern "C" FVMT_API int32_t fvmt_attention_backward(const float *q, const float *k, const float *v, const float *out,
                                                    const float *lse, const float *d_out, int32_t q_tokens,
                                                    int32_t kv_tokens, int32_t heads, int32_t head_dim, float scale,
                                                    float *dq, float *dk, float *dv, void *workspace,
                                                    size_t workspace_bytes, void *stream) {
  static const char fn[] = "fvmt_attention_backward";
  return guarded(fn, [&]() -> int32_t {
    if (int32_t s = check_attention_shape(fn, q_tokens, kv_tokens, heads, head_dim, scale, kMaxHeadDim)) return s;
    if (int32_t s = check_pointers(fn, {{"q", q}, {"k", k}, {"v", v}, {"out", out}, {"lse", lse}, {"d_out", d_out},
                                        {"dq", dq}, {"dk", dk}, {"dv", dv}}))
      return s;
    if (int32_t s = check_attention_gradients(fn, q_tokens, kv_tokens, heads, head_dim, dq, dk, dv)) return s;
    if (int32_t s = check_workspace(fn, workspace, workspace_bytes,
                                    fvmt_attention_workspace_bytes(q_tokens, kv_tokens, heads, head_dim)))
      return s;
    WorkspaceLayout layout(workspace);
    const AttentionWorkspace ws = AttentionWorkspace::carve(layout, q_tokens, heads);
    const cudaStream_t st = as_stream(stream);
    if (head_dim <= 32)
      return launch_backward<32>(fn, q, k, v, out, lse, d_out, q_tokens, kv_tokens, heads, head_dim, scale, dq, dk,
                                 dv, ws, st);
    if (head_dim <= 64)
      return launch_backward<64>(fn, q, k, v, out, lse, d_out, q_tokens, kv_tokens, heads, head_dim, scale, dq, dk,
                                 dv, ws, st);
    if (head_dim <= 128)
      return launch_backward<128>(fn, q, k, v, out, lse, d_out, q_tokens, kv_tokens, heads, head_dim, scale, dq, dk,
                                  dv, ws, st);
    return launch_backward<256>(fn, q, k, v, out, lse, d_out, q_tokens, kv_tokens, heads, head_dim, scale, dq, dk,
                                dv, ws, st);
  });
}
