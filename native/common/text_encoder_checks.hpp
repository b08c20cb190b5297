// Host-side argument checks of the text encoder ops (fastvmt.h, "Text encoder ops"),
// shared by every build so that each refuses the same inputs with the same sentence.
// Only scalars and pointers: ids and masks live in device memory in the cuda build.
#pragma once

#include <cmath>
#include <cstdint>

#include "dit_checks.hpp"
#include "validate.hpp"

namespace fvmt::text {

inline int32_t check_mul(const char *fn, const float *a, const float *b, int64_t n, const float *y) {
  return check_elements(fn, n, {{"a", a}, {"b", b}, {"y", y}});
}

inline int32_t check_embedding(const char *fn, const int32_t *ids, int32_t count, const void *table, int32_t dtype,
                               int32_t vocab, int32_t dim, const float *out) {
  if (int32_t s = check_positive(fn, "count", count)) return s;
  if (int32_t s = check_positive(fn, "vocab", vocab)) return s;
  if (int32_t s = check_positive(fn, "dim", dim)) return s;
  // Every build gathers bf16 tables: the dtype check is the same for all.
  if (int32_t s = check_dtype(fn, dtype, true)) return s;
  return check_pointers(fn, {{"ids", ids}, {"table", table}, {"out", out}});
}

inline int32_t bad_id(const char *fn, int32_t position, int32_t id, int32_t vocab) {
  return fail(FVMT_ERR_INVALID_ARGUMENT, "%s: ids[%d] = %d is outside [0, vocab=%d)", fn, position, id, vocab);
}

// Host memory only: the first id outside [0, vocab), reported with its position.
inline int32_t check_ids(const char *fn, const int32_t *ids, int32_t count, int32_t vocab) {
  for (int32_t t = 0; t < count; ++t)
    if (ids[t] < 0 || ids[t] >= vocab) return bad_id(fn, t, ids[t], vocab);
  return FVMT_OK;
}

inline int32_t check_relative_attention(const char *fn, const float *q, const float *k, const float *v,
                                        int32_t q_tokens, int32_t kv_tokens, int32_t heads, int32_t head_dim,
                                        float scale, const float *out) {
  if (int32_t s = check_positive(fn, "q_tokens", q_tokens)) return s;
  if (int32_t s = check_positive(fn, "kv_tokens", kv_tokens)) return s;
  if (int32_t s = check_positive(fn, "heads", heads)) return s;
  if (int32_t s = check_positive(fn, "head_dim", head_dim)) return s;
  // The relative positions j - i + q_tokens - 1 are int32 inside the kernels.
  if (static_cast<int64_t>(q_tokens) + kv_tokens > INT32_MAX)
    return fail(FVMT_ERR_INVALID_ARGUMENT, "%s: q_tokens + kv_tokens = %lld is too large (limit 2^31 - 1)", fn,
                static_cast<long long>(q_tokens) + kv_tokens);
  if (static_cast<int64_t>(heads) * head_dim > INT32_MAX)
    return fail(FVMT_ERR_INVALID_ARGUMENT, "%s: heads * head_dim = %lld is too large (limit 2^31 - 1)", fn,
                static_cast<long long>(heads) * head_dim);
  if (!std::isfinite(scale))
    return fail(FVMT_ERR_INVALID_ARGUMENT, "%s: scale must be finite, got %g", fn, static_cast<double>(scale));
  return check_pointers(fn, {{"q", q}, {"k", k}, {"v", v}, {"out", out}});
}

}  // namespace fvmt::text
