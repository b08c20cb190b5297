// fvmt_count_nonfinite, CPU: *count = the number of NaN or infinite elements of
// an fp32 or bf16 array of n elements (bf16 is accepted here although the CPU
// AMF kernels take fp32 only: the header promises both for this function).
//
// A value is NaN or infinite exactly when its 8 exponent bits are all ones (the
// same bits in fp32 and in bf16, its upper half), so the test is one AND and
// one compare on the bit pattern, which the
// compiler vectorises (8 lanes per AVX2 instruction); OpenMP splits the array
// and the integer sum is the same in any order.
#include "boundary.hpp"
#include "validate.hpp"

using namespace fvmt;

extern "C" FVMT_API int32_t fvmt_count_nonfinite(const void *x, int32_t dtype, int64_t n, int64_t *count, void *) {
  static constexpr char fn[] = "fvmt_count_nonfinite";
  return cpu::run_guarded(fn, [&]() -> int32_t {
    if (int32_t s = check_dtype(fn, dtype, true)) return s;
    if (n < 0)
      return fail(FVMT_ERR_INVALID_ARGUMENT, "%s: n must not be negative, got %lld", fn, static_cast<long long>(n));
    if (n > 0)
      if (int32_t s = check_pointer(fn, "x", x)) return s;
    if (int32_t s = check_pointer(fn, "count", count)) return s;
    int64_t total = 0;
    if (dtype == FVMT_DTYPE_F32) {
      const uint32_t *bits = static_cast<const uint32_t *>(x);
      constexpr uint32_t kExponent = 0x7f800000u;
#pragma omp parallel for reduction(+ : total) schedule(static)
      for (int64_t e = 0; e < n; ++e) total += (bits[e] & kExponent) == kExponent;
    } else {
      const uint16_t *bits = static_cast<const uint16_t *>(x);
      constexpr uint16_t kExponent = 0x7f80u;
#pragma omp parallel for reduction(+ : total) schedule(static)
      for (int64_t e = 0; e < n; ++e) total += (bits[e] & kExponent) == kExponent;
    }
    *count = total;
    return FVMT_OK;
  });
}
