// Library identity and the CPU feature check of libfastvmt_cpu.
//
// Every other file of this library is compiled for x86-64-v3 (AVX2 + FMA) and
// may contain instructions an older CPU cannot execute. This file is what a
// caller runs first, so it holds only integer code, compiled for the baseline
// x86-64 ISA (the pragma below), and no file of the library has a non-trivial
// global constructor: loading the library and calling fvmt_runtime_check() is
// safe on any x86-64 CPU, and answers FVMT_ERR_UNSUPPORTED instead of SIGILL.
#pragma GCC target("arch=x86-64")

#include "fastvmt.h"
#include "status.hpp"

extern "C" FVMT_API const char *fvmt_build_name(void) { return "cpu"; }

extern "C" FVMT_API int32_t fvmt_supports_dtype(int32_t dtype) { return dtype == FVMT_DTYPE_F32 ? 1 : 0; }

extern "C" FVMT_API int32_t fvmt_runtime_check(void) {
  fvmt::clear_error();
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma"))
    return fvmt::fail(FVMT_ERR_UNSUPPORTED,
                      "fvmt_runtime_check: libfastvmt_cpu needs a CPU with AVX2 and FMA (x86-64-v3), "
                      "and this one lacks them");
  return FVMT_OK;
}
