#include "status.hpp"

#include <cstdarg>
#include <cstdio>

namespace fvmt {
namespace {
thread_local char last_error[512] = "";
}

int32_t fail(int32_t status, const char *format, ...) {
  va_list args;
  va_start(args, format);
  std::vsnprintf(last_error, sizeof last_error, format, args);
  va_end(args);
  return status;
}

void clear_error() { last_error[0] = '\0'; }

}  // namespace fvmt

extern "C" const char *fvmt_last_error(void) { return fvmt::last_error; }

extern "C" const char *fvmt_status_message(int32_t status) {
  switch (status) {
    case FVMT_OK: return "ok";
    case FVMT_ERR_INVALID_ARGUMENT: return "invalid argument";
    case FVMT_ERR_UNSUPPORTED: return "not supported by this build";
    case FVMT_ERR_OUT_OF_MEMORY: return "out of memory";
    case FVMT_ERR_WORKSPACE_TOO_SMALL: return "workspace too small";
    case FVMT_ERR_DEVICE: return "CUDA device error";
    case FVMT_ERR_INTERNAL: return "internal error";
    default: return "unknown status";
  }
}

extern "C" int32_t fvmt_abi_version(void) { return FVMT_ABI_VERSION; }
