// Host-side argument checks of the DiT ops and the fused attention (fastvmt.h, "DiT ops"),
// shared by the cpu and cuda builds so that both refuse the same inputs, in the same order,
// with the same sentence (fvmt_last_error, which Java puts in its exceptions). What differs
// between the builds comes in as an argument: the size of a column-sum workspace, the widest
// attention head.
// The backward checks end with the workspace, which a call needs only for its column sums.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <initializer_list>

#include "validate.hpp"

namespace fvmt {

// A pointer argument and its name in fastvmt.h.
struct Named {
  const char *name;
  const void *pointer;
};

// Every pointer given, checked in the order listed.
inline int32_t check_pointers(const char *fn, std::initializer_list<Named> arrays) {
  for (const Named &array : arrays)
    if (int32_t s = check_pointer(fn, array.name, array.pointer)) return s;
  return FVMT_OK;
}

// Flat ops over n elements: n >= 0, and the pointers only when there is work (n > 0).
inline int32_t check_elements(const char *fn, int64_t n, std::initializer_list<Named> arrays) {
  if (n < 0)
    return fail(FVMT_ERR_INVALID_ARGUMENT, "%s: n must not be negative, got %lld", fn, static_cast<long long>(n));
  return n == 0 ? FVMT_OK : check_pointers(fn, arrays);
}

// Row-broadcast ops over [rows, cols] matrices.
inline int32_t check_rows(const char *fn, int64_t rows, int32_t cols, std::initializer_list<Named> arrays) {
  if (int32_t s = check_positive(fn, "rows", rows)) return s;
  if (int32_t s = check_positive(fn, "cols", cols)) return s;
  return check_pointers(fn, arrays);
}

// The workspace of a backward's column sums, checked when one is `wanted`. `needed` is the
// build's fvmt_column_reduction_workspace_bytes (the builds lay the workspace out differently).
inline int32_t check_reduction_workspace(const char *fn, bool wanted, const void *workspace, size_t given,
                                         size_t needed) {
  if (!wanted) return FVMT_OK;
  if (given < needed)
    return fail(FVMT_ERR_WORKSPACE_TOO_SMALL, "%s: workspace_bytes is %zu, need %zu", fn, given, needed);
  if (workspace == nullptr)
    return fail(FVMT_ERR_INVALID_ARGUMENT, "%s: workspace must not be NULL (need %zu bytes)", fn, needed);
  if (reinterpret_cast<uintptr_t>(workspace) % alignof(float) != 0)
    return fail(FVMT_ERR_INVALID_ARGUMENT, "%s: workspace must be %zu-byte aligned", fn, alignof(float));
  return FVMT_OK;
}

inline int32_t check_bias_add_backward(const char *fn, const float *dy, int64_t rows, int32_t cols,
                                       const float *dbias, const void *workspace, size_t workspace_bytes,
                                       size_t needed) {
  if (int32_t s = check_rows(fn, rows, cols, {{"dy", dy}, {"dbias", dbias}})) return s;
  return check_reduction_workspace(fn, true, workspace, workspace_bytes, needed);
}

inline int32_t check_modulate_backward(const char *fn, const float *x, const float *scale, const float *dy,
                                       int64_t rows, int32_t cols, const float *dshift, const float *dscale,
                                       const void *workspace, size_t workspace_bytes, size_t needed) {
  if (int32_t s = check_rows(fn, rows, cols, {{"x", x}, {"scale", scale}, {"dy", dy}})) return s;
  return check_reduction_workspace(fn, dshift != nullptr || dscale != nullptr, workspace, workspace_bytes, needed);
}

inline int32_t check_gated_residual_backward(const char *fn, const float *y, const float *gate, const float *dout,
                                             int64_t rows, int32_t cols, const float *dgate, const void *workspace,
                                             size_t workspace_bytes, size_t needed) {
  if (int32_t s = check_rows(fn, rows, cols, {{"y", y}, {"dout", dout}})) return s;
  if (gate == nullptr && dgate != nullptr)
    return fail(FVMT_ERR_INVALID_ARGUMENT, "%s: dgate must be NULL when gate is NULL", fn);
  return check_reduction_workspace(fn, dgate != nullptr, workspace, workspace_bytes, needed);
}

// ---- LayerNorm and RMSNorm

inline int32_t check_norm(const char *fn, const float *x, int64_t rows, int32_t cols, float eps) {
  if (int32_t s = check_positive(fn, "rows", rows)) return s;
  if (int32_t s = check_positive(fn, "cols", cols)) return s;
  if (int32_t s = check_pointer(fn, "x", x)) return s;
  if (!(std::isfinite(eps) && eps > 0.0f))
    return fail(FVMT_ERR_INVALID_ARGUMENT, "%s: eps must be finite and positive, got %g", fn,
                static_cast<double>(eps));
  return FVMT_OK;
}

inline int32_t check_layer_norm_forward(const char *fn, const float *x, const float *gamma, const float *beta,
                                        int64_t rows, int32_t cols, float eps, const float *y) {
  if (int32_t s = check_norm(fn, x, rows, cols, eps)) return s;
  if (int32_t s = check_pointer(fn, "y", y)) return s;
  if ((gamma == nullptr) != (beta == nullptr))
    return fail(FVMT_ERR_INVALID_ARGUMENT, "%s: gamma and beta must both be given or both be NULL", fn);
  return FVMT_OK;
}

inline int32_t check_layer_norm_backward(const char *fn, const float *x, const float *gamma, const float *dy,
                                         int64_t rows, int32_t cols, float eps, const float *dgamma,
                                         const float *dbeta, const void *workspace, size_t workspace_bytes,
                                         size_t needed) {
  if (int32_t s = check_norm(fn, x, rows, cols, eps)) return s;
  if (int32_t s = check_pointer(fn, "dy", dy)) return s;
  if (gamma == nullptr && (dgamma != nullptr || dbeta != nullptr))
    return fail(FVMT_ERR_INVALID_ARGUMENT, "%s: dgamma and dbeta must be NULL when gamma is NULL", fn);
  return check_reduction_workspace(fn, dgamma != nullptr || dbeta != nullptr, workspace, workspace_bytes, needed);
}

inline int32_t check_rms_norm_forward(const char *fn, const float *x, int64_t rows, int32_t cols, float eps,
                                      const float *y) {
  if (int32_t s = check_norm(fn, x, rows, cols, eps)) return s;
  return check_pointer(fn, "y", y);
}

inline int32_t check_rms_norm_backward(const char *fn, const float *x, const float *weight, const float *dy,
                                       int64_t rows, int32_t cols, float eps, const float *dweight,
                                       const void *workspace, size_t workspace_bytes, size_t needed) {
  if (int32_t s = check_norm(fn, x, rows, cols, eps)) return s;
  if (int32_t s = check_pointer(fn, "dy", dy)) return s;
  if (weight == nullptr && dweight != nullptr)
    return fail(FVMT_ERR_INVALID_ARGUMENT, "%s: dweight must be NULL when weight is NULL", fn);
  return check_reduction_workspace(fn, dweight != nullptr, workspace, workspace_bytes, needed);
}

// ---- 3D RoPE, timestep embedding, patchify

// `in` and `out` are x and y of the forward, dy and dx of the backward.
inline int32_t check_rope(const char *fn, int32_t frames, int32_t height, int32_t width, int32_t heads,
                          int32_t head_dim, float theta, bool backward, const float *in, const float *out) {
  if (int32_t s = check_positive(fn, "frames", frames)) return s;
  if (int32_t s = check_positive(fn, "height", height)) return s;
  if (int32_t s = check_positive(fn, "width", width)) return s;
  if (int32_t s = check_positive(fn, "heads", heads)) return s;
  if (int32_t s = check_positive(fn, "head_dim", head_dim)) return s;
  if (head_dim % 2 != 0)
    return fail(FVMT_ERR_INVALID_ARGUMENT, "%s: head_dim must be even (channel pairs are rotated), got %d", fn,
                head_dim);
  if (!(std::isfinite(theta) && theta > 0.0f))
    return fail(FVMT_ERR_INVALID_ARGUMENT, "%s: theta must be finite and positive, got %g", fn,
                static_cast<double>(theta));
  return check_pointers(fn, {{backward ? "dy" : "x", in}, {backward ? "dx" : "y", out}});
}

inline int32_t check_embedding(const char *fn, const float *t, int32_t count, int32_t dim) {
  if (int32_t s = check_positive(fn, "count", count)) return s;
  if (int32_t s = check_positive(fn, "dim", dim)) return s;
  if (dim % 2 != 0) return fail(FVMT_ERR_INVALID_ARGUMENT, "%s: dim must be even, got %d", fn, dim);
  return check_pointer(fn, "t", t);
}

// The arguments of fvmt_patchify / fvmt_unpatchify but the arrays (a kernel argument in cuda).
struct Patches {
  int32_t channels, frames, height, width, pt, ph, pw, layout;
};

// `in` and `out` are latent and tokens of patchify, tokens and latent of unpatchify.
inline int32_t check_patches(const char *fn, const Patches &p, bool to_tokens, const float *in, const float *out) {
  if (int32_t s = check_positive(fn, "channels", p.channels)) return s;
  if (int32_t s = check_positive(fn, "frames", p.frames)) return s;
  if (int32_t s = check_positive(fn, "height", p.height)) return s;
  if (int32_t s = check_positive(fn, "width", p.width)) return s;
  if (int32_t s = check_positive(fn, "pt", p.pt)) return s;
  if (int32_t s = check_positive(fn, "ph", p.ph)) return s;
  if (int32_t s = check_positive(fn, "pw", p.pw)) return s;
  if (p.frames % p.pt != 0)
    return fail(FVMT_ERR_INVALID_ARGUMENT, "%s: frames (%d) must be a multiple of pt (%d)", fn, p.frames, p.pt);
  if (p.height % p.ph != 0)
    return fail(FVMT_ERR_INVALID_ARGUMENT, "%s: height (%d) must be a multiple of ph (%d)", fn, p.height, p.ph);
  if (p.width % p.pw != 0)
    return fail(FVMT_ERR_INVALID_ARGUMENT, "%s: width (%d) must be a multiple of pw (%d)", fn, p.width, p.pw);
  if (p.layout != FVMT_PATCH_CHANNEL_FIRST && p.layout != FVMT_PATCH_CHANNEL_LAST)
    return fail(FVMT_ERR_INVALID_ARGUMENT, "%s: layout must be %d (channel first) or %d (channel last), got %d", fn,
                FVMT_PATCH_CHANNEL_FIRST, FVMT_PATCH_CHANNEL_LAST, p.layout);
  return check_pointers(fn, {{to_tokens ? "latent" : "tokens", in}, {to_tokens ? "tokens" : "latent", out}});
}

// ---- fused attention

// max_head_dim: the widest head the build takes (fastvmt.h: 256 on the CUDA builds, any on
// the CPU build). Checked before the scale, so both builds report the same first error.
inline int32_t check_attention_shape(const char *fn, int32_t q_tokens, int32_t kv_tokens, int32_t heads,
                                     int32_t head_dim, float scale, int32_t max_head_dim) {
  if (int32_t s = check_positive(fn, "q_tokens", q_tokens)) return s;
  if (int32_t s = check_positive(fn, "kv_tokens", kv_tokens)) return s;
  if (int32_t s = check_positive(fn, "heads", heads)) return s;
  if (int32_t s = check_positive(fn, "head_dim", head_dim)) return s;
  if (head_dim > max_head_dim)
    return fail(FVMT_ERR_UNSUPPORTED, "%s: head_dim must be at most %d, got %d", fn, max_head_dim, head_dim);
  if (!std::isfinite(scale))
    return fail(FVMT_ERR_INVALID_ARGUMENT, "%s: scale must be finite, got %g", fn, static_cast<double>(scale));
  return FVMT_OK;
}

// Two gradient outputs of `a` and `b` elements must be disjoint (fastvmt.h).
inline int32_t check_disjoint(const char *fn, const char *name_a, const float *a, int64_t elements_a,
                              const char *name_b, const float *b, int64_t elements_b) {
  if (a < b + elements_b && b < a + elements_a)
    return fail(FVMT_ERR_INVALID_ARGUMENT, "%s: %s and %s must not overlap", fn, name_a, name_b);
  return FVMT_OK;
}

// dq [q_tokens, heads, head_dim], dk and dv [kv_tokens, heads, head_dim]: pairwise disjoint.
inline int32_t check_attention_gradients(const char *fn, int32_t q_tokens, int32_t kv_tokens, int32_t heads,
                                         int32_t head_dim, const float *dq, const float *dk, const float *dv) {
  const int64_t q_elements = static_cast<int64_t>(q_tokens) * heads * head_dim;
  const int64_t kv_elements = static_cast<int64_t>(kv_tokens) * heads * head_dim;
  if (int32_t s = check_disjoint(fn, "dq", dq, q_elements, "dk", dk, kv_elements)) return s;
  if (int32_t s = check_disjoint(fn, "dq", dq, q_elements, "dv", dv, kv_elements)) return s;
  return check_disjoint(fn, "dk", dk, kv_elements, "dv", dv, kv_elements);
}

}  // namespace fvmt
