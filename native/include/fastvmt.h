/*
 * fastvmt.h — the one C ABI of fastvmt's native kernels.
 *
 * Three libraries implement every function declared here:
 *   libfastvmt_cpu      C++20 + OpenMP, host memory          (native/cpu)
 *   libfastvmt_cuda     CUDA, device memory, sm_80 / sm_90    (native/cuda)
 *   libfastvmt_cudaemu  the same CUDA sources run on CPU
 *                       threads, host memory                  (native/cuda + native/emu)
 * The Java bindings (org.fastvmt.nativeabi) mirror this file; a test parses it
 * and fails when a prototype and its binding disagree.
 *
 * Conventions, for every function:
 *  - The return value is a status code (FVMT_OK or an FVMT_ERR_*). Nothing
 *    aborts the process. On failure, fvmt_last_error() returns a sentence
 *    naming the offending argument (thread-local, valid until the next call
 *    on the same thread).
 *  - Memory: in the cuda build every tensor pointer (including `pairs`,
 *    `window_origins`, `loss`, `workspace`) is a device pointer; in the cpu
 *    and cudaemu builds it is host memory. `stream` is a cudaStream_t in the
 *    cuda build (NULL = legacy default stream) and is ignored elsewhere.
 *    Kernels are asynchronous with respect to the host in the cuda build.
 *  - Q and K are `[F, H, W, C]`, token-major and contiguous: element
 *    (f, r, c, ch) is at ((f*H + r)*W + c)*C + ch. C = heads * d_h.
 *    `dtype` is FVMT_DTYPE_F32 or FVMT_DTYPE_BF16 (see fvmt_supports_dtype).
 *    All outputs and gradients are fp32; accumulation is fp32 or wider.
 *  - Gradient outputs (dq, dk, d_delta_gen) are ACCUMULATED into (+=): the
 *    caller zeroes them first. Every gradient is deterministic: the same
 *    inputs give bit-identical results on the same build and thread count.
 *  - `workspace` is scratch memory of at least the size the matching
 *    *_workspace_bytes function returns (it may return 0: then NULL is fine).
 *  - Sizes are int32; element offsets are computed in 64 bits.
 *
 * Attention motion flow (AMF), shared definitions:
 *  - score(p, q) = temperature * (Q_i[p] . K_j[q]) / (heads * sqrt(C / heads))
 *    which is temperature times the mean over heads of the per-head scaled
 *    dot products  sum_h q_h.k_h / (heads * sqrt(d_h)).
 *  - For a query token p = (r, c) of frame i attending to a key set S of
 *    frame j: P(q) = softmax_{q in S} score(p, q);
 *    delta = sum_q P(q) * (row(q), col(q))  -  (r, c)
 *    i.e. the expected position in frame-j coordinates minus the own
 *    position. delta is stored as [pair, H, W, 2] = (d_row, d_col).
 *  - `pairs` is an int32 array [pair_count, 2] of distinct (i, j) frame
 *    indices, 0 <= i, j < F. Output pair p of delta belongs to pairs[p].
 *
 * Windowed AMF (FastVMT's sliding window):
 *  - A pair with i == j uses full in-frame attention (S = all of frame j).
 *  - A pair with i != j: frame i is cut into tiles of tile_h x tile_w tokens,
 *    tiles_h = ceil(H / tile_h), tiles_w = ceil(W / tile_w); border tiles may
 *    be partial. A tile covering rows [r0, r0+eh) and cols [c0, c0+ew) has
 *    the centre token (r0 + eh/2, c0 + ew/2) (integer division).
 *    Pass 1: the centre token attends to all of frame j; its expected
 *    position (er, ec) rounded as floor(x + 0.5) is the window centre
 *    (cr, cc). No gradient flows through pass 1.
 *    Pass 2: the window is lh x lw with lh = min(window, H), lw = min(window, W);
 *    its origin is row0 = clamp(cr - window/2, 0, H - lh), likewise col0 with
 *    W and lw (the centre is clamped so the window lies inside the frame; an
 *    axis shorter than `window` uses the whole axis). Every query of the tile
 *    attends to the window's tokens only.
 *  - window_origins is int32 [pair_count, tiles_h, tiles_w, 2] = (row0, col0).
 *    The forward writes it; the backward and the tracking loss read it. For a
 *    pair with i == j every entry is (0, 0): its window is the whole frame.
 *  - `window` must be odd and >= 1; 1 <= tile_h <= H and 1 <= tile_w <= W.
 */
#ifndef FASTVMT_H
#define FASTVMT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define FVMT_API __declspec(dllexport)
#else
#define FVMT_API __attribute__((visibility("default")))
#endif

#define FVMT_ABI_VERSION 3

/* Status codes. */
#define FVMT_OK 0
#define FVMT_ERR_INVALID_ARGUMENT 1     /* a shape, pointer or scalar is out of its domain */
#define FVMT_ERR_UNSUPPORTED 2          /* this build does not implement the request (e.g. dtype) */
#define FVMT_ERR_OUT_OF_MEMORY 3        /* host or device allocation failed */
#define FVMT_ERR_WORKSPACE_TOO_SMALL 4  /* workspace_bytes < the *_workspace_bytes value */
#define FVMT_ERR_DEVICE 5               /* the CUDA runtime reported an error */
#define FVMT_ERR_INTERNAL 6             /* a bug: an invariant of the library failed */

/* Element types of Q and K. */
#define FVMT_DTYPE_F32 0
#define FVMT_DTYPE_BF16 1

/* ---------------------------------------------------------------- library */

/* FVMT_ABI_VERSION of the library. */
FVMT_API int32_t fvmt_abi_version(void);

/* "cpu", "cuda" or "cudaemu". */
FVMT_API const char *fvmt_build_name(void);

/* A static English name of a status code. */
FVMT_API const char *fvmt_status_message(int32_t status);

/* Detail of the last failure on the calling thread ("" if none). */
FVMT_API const char *fvmt_last_error(void);

/* 1 if Q/K of this dtype are accepted, 0 otherwise. cpu: F32 only;
 * cuda and cudaemu: F32 and BF16. */
FVMT_API int32_t fvmt_supports_dtype(int32_t dtype);

/* FVMT_OK when the build can run kernels now. cuda: at least one device and
 * a driver new enough for the runtime (else FVMT_ERR_DEVICE with the CUDA
 * error in fvmt_last_error). cpu and cudaemu: always FVMT_OK. */
FVMT_API int32_t fvmt_runtime_check(void);

/* *count = the number of elements of x (dtype F32 or BF16, in every build) that are NaN or
 * infinite. `count` points to one int64 in the build's memory space. */
FVMT_API int32_t fvmt_count_nonfinite(const void *x, int32_t dtype, int64_t n,
                                      int64_t *count, void *stream);

/* ------------------------------------------------------------- full AMF */
/* Every token of frame i attends to every token of frame j, for each pair.
 * DiTFlow's baseline (all F*F pairs) or FastVMT's pair set (j in [i, i+sf)).
 * Cost: pair_count * (H*W)^2 * 2C flops forward, twice that more backward. */

FVMT_API size_t fvmt_amf_full_workspace_bytes(int32_t frames, int32_t height, int32_t width,
                                              int32_t channels, int32_t pair_count);

/* delta: fp32 [pair_count, H, W, 2]. */
FVMT_API int32_t fvmt_amf_full_forward(const void *q, const void *k, int32_t dtype,
                                       int32_t frames, int32_t height, int32_t width,
                                       int32_t channels, int32_t heads, float temperature,
                                       const int32_t *pairs, int32_t pair_count,
                                       float *delta,
                                       void *workspace, size_t workspace_bytes, void *stream);

/* d_delta: fp32 [pair_count, H, W, 2] (dL/d delta). dq, dk: fp32 [F, H, W, C],
 * accumulated. The softmax is recomputed; nothing from the forward is needed. */
FVMT_API int32_t fvmt_amf_full_backward(const void *q, const void *k, int32_t dtype,
                                        int32_t frames, int32_t height, int32_t width,
                                        int32_t channels, int32_t heads, float temperature,
                                        const int32_t *pairs, int32_t pair_count,
                                        const float *d_delta, float *dq, float *dk,
                                        void *workspace, size_t workspace_bytes, void *stream);

/* --------------------------------------------------------- windowed AMF */
/* FastVMT's sliding-window AMF (see the definitions at the top). */

FVMT_API size_t fvmt_amf_window_workspace_bytes(int32_t frames, int32_t height, int32_t width,
                                                int32_t channels, int32_t tile_h, int32_t tile_w,
                                                int32_t window, int32_t pair_count);

/* delta: fp32 [pair_count, H, W, 2]; window_origins: int32
 * [pair_count, tiles_h, tiles_w, 2], written. */
FVMT_API int32_t fvmt_amf_window_forward(const void *q, const void *k, int32_t dtype,
                                         int32_t frames, int32_t height, int32_t width,
                                         int32_t channels, int32_t heads, float temperature,
                                         int32_t tile_h, int32_t tile_w, int32_t window,
                                         const int32_t *pairs, int32_t pair_count,
                                         float *delta, int32_t *window_origins,
                                         void *workspace, size_t workspace_bytes, void *stream);

/* window_origins as written by the forward (any in-range origins are
 * accepted: the backward differentiates pass 2 for those windows).
 * dq, dk: fp32 [F, H, W, C], accumulated; dk is gathered per key, so the
 * scatter over overlapping windows is deterministic. */
FVMT_API int32_t fvmt_amf_window_backward(const void *q, const void *k, int32_t dtype,
                                          int32_t frames, int32_t height, int32_t width,
                                          int32_t channels, int32_t heads, float temperature,
                                          int32_t tile_h, int32_t tile_w, int32_t window,
                                          const int32_t *pairs, int32_t pair_count,
                                          const int32_t *window_origins,
                                          const float *d_delta, float *dq, float *dk,
                                          void *workspace, size_t workspace_bytes, void *stream);

/* ------------------------------------------------ corresponding-window loss */
/* L = (1 / pair_count) * sum_p pair_weights[p] * sum_{t, c} (ref[p,t,c] - gen[p,t,c])^2
 * over tokens t < tokens_per_frame and c in {row, col}: the mean over pairs
 * of the weighted squared Frobenius norm of delta_ref - delta_gen. FastVMT
 * weights pair (i, j) by linspace(1, 0.8, sf)[j - i]. */

FVMT_API size_t fvmt_window_loss_workspace_bytes(int32_t pair_count, int32_t tokens_per_frame);

/* delta_ref, delta_gen: fp32 [pair_count, tokens_per_frame, 2];
 * pair_weights: fp32 [pair_count]; loss: one fp32, written. */
FVMT_API int32_t fvmt_window_loss_forward(const float *delta_ref, const float *delta_gen,
                                          const float *pair_weights, int32_t pair_count,
                                          int32_t tokens_per_frame, float *loss,
                                          void *workspace, size_t workspace_bytes, void *stream);

/* d_delta_gen += loss_grad * dL/d delta_gen
 *             = loss_grad * (-2 / pair_count) * w_p * (ref - gen). */
FVMT_API int32_t fvmt_window_loss_backward(const float *delta_ref, const float *delta_gen,
                                           const float *pair_weights, int32_t pair_count,
                                           int32_t tokens_per_frame, float loss_grad,
                                           float *d_delta_gen, void *stream);

/* ------------------------------------------------------------ tracking loss */
/* For each pair (i, j) with i != j and each tile t of frame i, m(i, j, t) is
 * the mean key vector (length C) over the tile's window in frame j (given by
 * window_origins). For each query frame i, the couples are the pairs (i, j)
 * and (i, j + 1) that are both in `pairs` with i != j and i != j + 1:
 *   L_i = mean over couples and tiles of || m(i, j+1, t) - m(i, j, t) ||_2
 *   L   = mean of L_i over the frames i that have at least one couple
 *         (0 when none has).
 * The gradient of ||d||_2 at d = 0 is taken as 0. */

FVMT_API size_t fvmt_tracking_loss_workspace_bytes(int32_t frames, int32_t height, int32_t width,
                                                   int32_t channels, int32_t tile_h, int32_t tile_w,
                                                   int32_t pair_count);

/* loss: one fp32, written. */
FVMT_API int32_t fvmt_tracking_loss_forward(const void *k, int32_t dtype,
                                            int32_t frames, int32_t height, int32_t width,
                                            int32_t channels, int32_t tile_h, int32_t tile_w,
                                            int32_t window,
                                            const int32_t *pairs, int32_t pair_count,
                                            const int32_t *window_origins, float *loss,
                                            void *workspace, size_t workspace_bytes, void *stream);

/* dk: fp32 [F, H, W, C]; dk += loss_grad * dL/dK. */
FVMT_API int32_t fvmt_tracking_loss_backward(const void *k, int32_t dtype,
                                             int32_t frames, int32_t height, int32_t width,
                                             int32_t channels, int32_t tile_h, int32_t tile_w,
                                             int32_t window,
                                             const int32_t *pairs, int32_t pair_count,
                                             const int32_t *window_origins, float loss_grad,
                                             float *dk,
                                             void *workspace, size_t workspace_bytes, void *stream);

/* ------------------------------------- gradient reuse + AdamW latent step */
/* One fused pass over n fp32 elements, PyTorch's AdamW (amsgrad off):
 *   if fresh_grad != NULL:  grad_cache = fresh_grad      (the reuse buffer)
 *   g = grad_cache
 *   param *= 1 - lr * weight_decay
 *   exp_avg    = beta1 * exp_avg    + (1 - beta1) * g
 *   exp_avg_sq = beta2 * exp_avg_sq + (1 - beta2) * g^2
 *   param -= (lr / (1 - beta1^step)) * exp_avg
 *            / (sqrt(exp_avg_sq) / sqrt(1 - beta2^step) + eps)
 * `step` is the 1-based count of steps taken, including this one.
 * fresh_grad may alias nothing else; grad_cache must not be NULL. */
FVMT_API int32_t fvmt_adamw_step(float *param, const float *fresh_grad, float *grad_cache,
                                 float *exp_avg, float *exp_avg_sq, int64_t n,
                                 float lr, float beta1, float beta2, float eps,
                                 float weight_decay, int32_t step, void *stream);

/* ================================================================ DiT ops */
/* The layers of the Wan2.1 DiT (forward, and backward to every input), used by
 * org.fastvmt.tensor.Ops. GEMM is not here: it is OpenBLAS on the CPU and cuBLAS
 * on the GPU, called from Java.
 *  - Activations are fp32, row-major and contiguous: a [rows, cols] matrix has
 *    element (r, c) at r * cols + c. rows is int64, cols int32.
 *  - Gradient outputs ACCUMULATE (+=) like the AMF gradients, except where a
 *    function says it writes. Gradient outputs marked "may be NULL" are then
 *    not computed (a NULL dgamma means: no gradient to gamma is wanted).
 *  - "y may equal x" means the function is correct in place; otherwise outputs
 *    must not overlap inputs.
 *  - Reductions over rows (the gradients of per-column vectors: dbias, dgamma,
 *    dbeta, dweight, dshift, dscale, dgate) use a workspace of
 *    fvmt_column_reduction_workspace_bytes(rows, cols) bytes and a fixed
 *    summation order, so they are deterministic. */

/* Scratch bytes every row-reducing backward below needs for (rows, cols). */
FVMT_API size_t fvmt_column_reduction_workspace_bytes(int64_t rows, int32_t cols);

/* dst[i] = src[i] widened from bf16 (the upper half of an IEEE fp32) to fp32,
 * i < n. Used to run GEMMs of bf16 weights in fp32. Writes dst. */
FVMT_API int32_t fvmt_bf16_to_f32(const uint16_t *src, float *dst, int64_t n, void *stream);

/* y[i] += alpha * x[i], i < n (gradient accumulation). */
FVMT_API int32_t fvmt_add_scaled(const float *x, float alpha, float *y, int64_t n, void *stream);

/* y[r, c] = x[r, c] + bias[c]. y may equal x. */
FVMT_API int32_t fvmt_bias_add_forward(const float *x, const float *bias, int64_t rows,
                                       int32_t cols, float *y, void *stream);

/* dbias[c] += sum_r dy[r, c]. (dL/dx = dy needs no kernel.) */
FVMT_API int32_t fvmt_bias_add_backward(const float *dy, int64_t rows, int32_t cols, float *dbias,
                                        void *workspace, size_t workspace_bytes, void *stream);

/* LayerNorm over each row: mean = sum_c x / cols, var = sum_c (x - mean)^2 / cols
 * (biased), y = (x - mean) / sqrt(var + eps) * gamma[c] + beta[c].
 * gamma and beta are both NULL (no affine, Wan's norm1/norm2/head norm) or both
 * given (norm3). Statistics in fp32 or wider. */
FVMT_API int32_t fvmt_layer_norm_forward(const float *x, const float *gamma, const float *beta,
                                         int64_t rows, int32_t cols, float eps, float *y,
                                         void *stream);

/* Recomputes the row statistics from x. dx, dgamma, dbeta may be NULL (dgamma
 * and dbeta must be NULL when gamma is). */
FVMT_API int32_t fvmt_layer_norm_backward(const float *x, const float *gamma, const float *dy,
                                          int64_t rows, int32_t cols, float eps, float *dx,
                                          float *dgamma, float *dbeta,
                                          void *workspace, size_t workspace_bytes, void *stream);

/* RMSNorm over each row (Wan's norm_q/norm_k, over the full width):
 * y = x / sqrt(sum_c x^2 / cols + eps) * weight[c]; weight may be NULL (1). */
FVMT_API int32_t fvmt_rms_norm_forward(const float *x, const float *weight, int64_t rows,
                                       int32_t cols, float eps, float *y, void *stream);

/* dx, dweight may be NULL (dweight must be NULL when weight is). */
FVMT_API int32_t fvmt_rms_norm_backward(const float *x, const float *weight, const float *dy,
                                        int64_t rows, int32_t cols, float eps, float *dx,
                                        float *dweight,
                                        void *workspace, size_t workspace_bytes, void *stream);

/* Adaptive modulation: y[r, c] = x[r, c] * (1 + scale[c]) + shift[c]. y may equal x. */
FVMT_API int32_t fvmt_modulate_forward(const float *x, const float *shift, const float *scale,
                                       int64_t rows, int32_t cols, float *y, void *stream);

/* dx += dy * (1 + scale); dshift += sum_r dy; dscale += sum_r dy * x.
 * dx, dshift, dscale may be NULL. */
FVMT_API int32_t fvmt_modulate_backward(const float *x, const float *scale, const float *dy,
                                        int64_t rows, int32_t cols, float *dx, float *dshift,
                                        float *dscale,
                                        void *workspace, size_t workspace_bytes, void *stream);

/* Gated residual: out[r, c] = x[r, c] + gate[c] * y[r, c]; gate NULL means 1 (a
 * plain residual add). out may equal x. */
FVMT_API int32_t fvmt_gated_residual_forward(const float *x, const float *y, const float *gate,
                                             int64_t rows, int32_t cols, float *out,
                                             void *stream);

/* dx += dout; dy += dout * gate; dgate += sum_r dout * y. dx, dy, dgate may be
 * NULL (dgate must be NULL when gate is). */
FVMT_API int32_t fvmt_gated_residual_backward(const float *y, const float *gate,
                                              const float *dout, int64_t rows, int32_t cols,
                                              float *dx, float *dy, float *dgate,
                                              void *workspace, size_t workspace_bytes,
                                              void *stream);

/* GELU, tanh approximation (PyTorch approximate='tanh'):
 * y = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), i < n. y may equal x. */
FVMT_API int32_t fvmt_gelu_tanh_forward(const float *x, int64_t n, float *y, void *stream);
/* dx += dy * gelu_tanh'(x). */
FVMT_API int32_t fvmt_gelu_tanh_backward(const float *x, const float *dy, int64_t n, float *dx,
                                         void *stream);

/* SiLU: y = x / (1 + exp(-x)), i < n. y may equal x. */
FVMT_API int32_t fvmt_silu_forward(const float *x, int64_t n, float *y, void *stream);
/* dx += dy * silu'(x). */
FVMT_API int32_t fvmt_silu_backward(const float *x, const float *dy, int64_t n, float *dx,
                                    void *stream);

/* 3D rotary position embedding (Wan2.1's rope_apply).
 * x, y: [tokens, heads, head_dim] with tokens = frames * height * width in
 * (f, r, c) order, token t = (f * height + r) * width + c. head_dim is even; the
 * pairs (x[2m], x[2m+1]), m < head_dim / 2, are complex numbers, rotated by
 * angle(t, m):
 *   with n_r = n_c = (head_dim / 2) / 3 and n_f = head_dim / 2 - 2 * n_r,
 *   m <  n_f:              f * theta^(-2m / (2 n_f))
 *   m in [n_f, n_f + n_r): r * theta^(-2(m - n_f) / (2 n_r))
 *   otherwise:             c * theta^(-2(m - n_f - n_r) / (2 n_c))
 *   (head_dim 128: 22 / 21 / 21 frequencies; Wan uses theta = 10000).
 *   y[2m] = x[2m] cos a - x[2m+1] sin a;  y[2m+1] = x[2m] sin a + x[2m+1] cos a.
 * Angles are computed in double precision. y may equal x. */
FVMT_API int32_t fvmt_rope3d_forward(const float *x, int32_t frames, int32_t height,
                                     int32_t width, int32_t heads, int32_t head_dim, float theta,
                                     float *y, void *stream);
/* dx += the inverse rotation of dy. */
FVMT_API int32_t fvmt_rope3d_backward(const float *dy, int32_t frames, int32_t height,
                                      int32_t width, int32_t heads, int32_t head_dim, float theta,
                                      float *dx, void *stream);

/* Sinusoidal timestep embedding (Wan's sinusoidal_embedding_1d): half = dim / 2,
 * w_m = 10000^(-m / half); out[i, m] = cos(t[i] w_m), out[i, half + m] =
 * sin(t[i] w_m) for m < half; dim even; computed in double. out [count, dim], written. */
FVMT_API int32_t fvmt_timestep_embedding_forward(const float *t, int32_t count, int32_t dim,
                                                 float *out, void *stream);
/* dt[i] += sum_m d_out[i, m] * d out[i, m] / d t[i]. */
FVMT_API int32_t fvmt_timestep_embedding_backward(const float *t, int32_t count, int32_t dim,
                                                  const float *d_out, float *dt, void *stream);

/* Patch layouts: the order of the pt*ph*pw*channels features of a token. */
#define FVMT_PATCH_CHANNEL_FIRST 0 /* ((ch * pt + a) * ph + b) * pw + e: Conv3d weight order */
#define FVMT_PATCH_CHANNEL_LAST 1  /* ((a * ph + b) * pw + e) * channels + ch: Wan's unpatchify */

/* latent [channels, frames, height, width] (one sample, channel-first) to tokens
 * [(frames/pt) * (height/ph) * (width/pw), channels*pt*ph*pw]: token
 * (f * (height/ph) + r) * (width/pw) + c holds latent[ch, f*pt + a, r*ph + b,
 * c*pw + e] at the feature index of `layout`. frames, height and width are
 * multiples of pt, ph, pw. A permutation: WRITES tokens; its gradient is
 * fvmt_unpatchify with the same layout. */
FVMT_API int32_t fvmt_patchify(const float *latent, int32_t channels, int32_t frames,
                               int32_t height, int32_t width, int32_t pt, int32_t ph, int32_t pw,
                               int32_t layout, float *tokens, void *stream);
/* The inverse of fvmt_patchify (same arguments); WRITES latent. */
FVMT_API int32_t fvmt_unpatchify(const float *tokens, int32_t channels, int32_t frames,
                                 int32_t height, int32_t width, int32_t pt, int32_t ph, int32_t pw,
                                 int32_t layout, float *latent, void *stream);

/* Fused multi-head attention, out = softmax(scale * Q K^T) V per head, no mask.
 * Tiles of queries stream over tiles of keys with an online softmax; the
 * [q_tokens, kv_tokens] score matrix is never stored (Wan's self-attention has
 * 32 760 tokens at 480x832x81, its cross-attention 512 text tokens).
 * q, out: [q_tokens, heads, head_dim]; k, v: [kv_tokens, heads, head_dim]
 * (token-major: the layout of a Linear's [tokens, heads * head_dim] output).
 * lse: [heads, q_tokens], written: the natural log of sum_j exp(scale * q.k_j),
 * which the backward needs. scale is usually 1 / sqrt(head_dim). head_dim is at
 * most 256 on the CUDA builds (FVMT_ERR_UNSUPPORTED beyond; the CPU build takes
 * any), and the gradient outputs dq, dk, dv must not overlap one another. */
FVMT_API size_t fvmt_attention_workspace_bytes(int32_t q_tokens, int32_t kv_tokens, int32_t heads,
                                               int32_t head_dim);
FVMT_API int32_t fvmt_attention_forward(const float *q, const float *k, const float *v,
                                        int32_t q_tokens, int32_t kv_tokens, int32_t heads,
                                        int32_t head_dim, float scale, float *out, float *lse,
                                        void *workspace, size_t workspace_bytes, void *stream);
/* Recomputes the probabilities tile by tile from q, k and lse (out and d_out give
 * the row terms sum_d d_out * out). dq, dk, dv accumulate; each is computed by
 * the thread that owns its rows, so no float atomics are used. */
FVMT_API int32_t fvmt_attention_backward(const float *q, const float *k, const float *v,
                                         const float *out, const float *lse, const float *d_out,
                                         int32_t q_tokens, int32_t kv_tokens, int32_t heads,
                                         int32_t head_dim, float scale, float *dq, float *dk,
                                         float *dv,
                                         void *workspace, size_t workspace_bytes, void *stream);

/* ======================================================= Text encoder ops */
/* The layers of the umT5 text encoder (Wan2.1's wan/modules/t5.py) that the DiT ops
 * lack. Forward only: the text encoder is never differentiated. T5's RMS norm is
 * fvmt_rms_norm_forward, its GELU fvmt_gelu_tanh_forward, its projections GEMMs.
 * Conventions as for the DiT ops (fp32 activations, row-major, token-major). */

/* y[i] = a[i] * b[i], i < n: T5's gated-GELU feed-forward, fc1(x) * gelu(gate(x)).
 * y may equal a or b. */
FVMT_API int32_t fvmt_mul_forward(const float *a, const float *b, int64_t n, float *y, void *stream);

/* Embedding gather: out[t, c] = table[ids[t], c] widened to fp32, for t < count and
 * c < dim. table: [vocab, dim], dtype FVMT_DTYPE_F32 or FVMT_DTYPE_BF16 in every build
 * (the umT5 table, 256384 x 4096, stays bf16). ids: int32 [count]. An id outside
 * [0, vocab) fails with FVMT_ERR_INVALID_ARGUMENT naming its position and value: the
 * host builds check before reading; the cuda build checks on the device (rows of bad
 * ids are written as zeros), then copies the verdict back and so synchronises
 * `stream`. workspace: fvmt_embedding_workspace_bytes() bytes (0 on the host builds). */
FVMT_API size_t fvmt_embedding_workspace_bytes(void);
FVMT_API int32_t fvmt_embedding_forward(const int32_t *ids, int32_t count, const void *table,
                                        int32_t dtype, int32_t vocab, int32_t dim, float *out,
                                        void *workspace, size_t workspace_bytes, void *stream);

/* Multi-head attention with a relative position bias and a key mask (T5), forward only:
 *   s_ij  = scale * q_i . k_j + rel_bias[h, j - i + q_tokens - 1]
 *   out_i = sum_{j : key_mask[j] != 0} exp(s_ij) v_j / sum_{j : key_mask[j] != 0} exp(s_ij)
 * per head h, with q_i, k_j, v_j the head_dim-long slices of token i / j.
 * q, out: [q_tokens, heads, head_dim]; k, v: [kv_tokens, heads, head_dim] (token-major).
 * rel_bias: fp32 [heads, q_tokens + kv_tokens - 1], a bias per head and relative position
 * j - i (T5's bucketed position embedding, gathered by the caller), or NULL for none.
 * key_mask: int32 [kv_tokens], nonzero = attend (padding keys are 0), or NULL for all.
 * A query whose every key is masked gets out_i = 0. T5 does not scale the scores:
 * scale = 1. Online softmax over the keys: no [q_tokens, kv_tokens] matrix is stored.
 * head_dim: any on the cpu build; at most 4096 on the CUDA builds (FVMT_ERR_UNSUPPORTED
 * beyond: a block keeps q_i and its accumulator in shared memory). */
FVMT_API int32_t fvmt_relative_attention_forward(const float *q, const float *k, const float *v,
                                                 const float *rel_bias, const int32_t *key_mask,
                                                 int32_t q_tokens, int32_t kv_tokens, int32_t heads,
                                                 int32_t head_dim, float scale, float *out,
                                                 void *stream);

/* ================================================== Video autoencoder ops */
/* The layers of the Wan2.1 VAE (wan/modules/vae.py) that the DiT ops cannot do, forward
 * only (the VAE is run for inference). Its activations are channel-last fp32
 * [frames, height, width, channels]: element (f, r, c, ch) at
 * ((f * height + r) * width + c) * channels + ch, contiguous. So a per-channel RMS norm is
 * fvmt_rms_norm_forward over rows of `channels`, a 1x1x1 convolution is one GEMM, and a
 * k x k x k convolution is fvmt_im2col3d followed by one GEMM with the weight reordered
 * to [c_out, kt * kh * kw * c_in]. Sizes: int32 per axis, element offsets int64. */

/* Channel-last 3D im2col with zero padding given per side (Wan's CausalConv3d pads time
 * in front only: pad_t0 = 2, pad_t1 = 0 for a kernel of 3 frames).
 * x [frames, height, width, channels]. The output grid is
 *   out_frames = (frames + pad_t0 + pad_t1 - kt) / st + 1, likewise out_height with
 *   (height, pad_h0, pad_h1, kh, sh) and out_width with (width, pad_w0, pad_w1, kw, sw),
 * each at least 1. Output position p = (f * out_height + r) * out_width + c. Writes rows
 * [row_count, kt * kh * kw * channels] for the positions p = row_begin + i, i < row_count
 * (a block of positions, so that a large convolution runs in bounded memory):
 *   rows[i, ((a * kh + b) * kw + e) * channels + ch]
 *     = x[f * st + a - pad_t0, r * sh + b - pad_h0, c * sw + e - pad_w0, ch],
 *       0 where that index lies outside x.
 * Kernel sizes and strides are >= 1, paddings >= 0 and smaller than the kernel along
 * their axis; 0 <= row_begin and row_begin + row_count <= out_frames * out_height * out_width. */
FVMT_API int32_t fvmt_im2col3d(const float *x, int32_t frames, int32_t height, int32_t width,
                               int32_t channels, int32_t kt, int32_t kh, int32_t kw, int32_t st,
                               int32_t sh, int32_t sw, int32_t pad_t0, int32_t pad_t1,
                               int32_t pad_h0, int32_t pad_h1, int32_t pad_w0, int32_t pad_w1,
                               int64_t row_begin, int64_t row_count, float *rows, void *stream);

/* Nearest-neighbour 2x spatial upsampling, channel-last (Wan's Resample upsample2d/3d;
 * PyTorch's 'nearest' and 'nearest-exact' agree at scale 2):
 * x [images, height, width, channels] -> y [images, 2 height, 2 width, channels],
 * y[n, r, c, ch] = x[n, r / 2, c / 2, ch]. Writes y. */
FVMT_API int32_t fvmt_upsample_nearest2x(const float *x, int32_t images, int32_t height,
                                         int32_t width, int32_t channels, float *y, void *stream);

/* The frame interleave of Wan's upsample3d, whose time convolution outputs 2 * channels
 * per frame: x [frames, pixels, 2 * channels] -> y [2 * frames, pixels, channels],
 * y[2 f + s, p, ch] = x[f, p, s * channels + ch] for s in {0, 1}. Writes y. */
FVMT_API int32_t fvmt_frame_interleave(const float *x, int32_t frames, int64_t pixels,
                                       int32_t channels, float *y, void *stream);

/* Softmax of each row of scale * x: y[r, c] = exp(scale x[r, c] - m_r) / sum_j exp(scale
 * x[r, j] - m_r) with m_r = max_j scale x[r, j]; the sum in fp32 or wider. scale > 0 and
 * finite. The VAE's middle attention (one head of 384 channels per frame, wider than
 * fvmt_attention_forward takes on CUDA) runs as GEMM, this, GEMM. y may equal x. */
FVMT_API int32_t fvmt_softmax_rows_forward(const float *x, int64_t rows, int32_t cols, float scale,
                                           float *y, void *stream);

#ifdef __cplusplus
}
#endif

#endif /* FASTVMT_H */
