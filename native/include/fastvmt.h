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

#define FVMT_ABI_VERSION 1

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

#ifdef __cplusplus
}
#endif

#endif /* FASTVMT_H */
