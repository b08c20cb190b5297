// Status codes and the thread-local "last error" sentence shared by every build.
// A failing entry point calls fail(status, "argument x: what was expected") and
// returns its result; fvmt_last_error() hands the sentence to Java.
#pragma once

#include <cstdint>

#include "fastvmt.h"

namespace fvmt {

// Records the formatted message for fvmt_last_error() and returns `status`.
int32_t fail(int32_t status, const char *format, ...) __attribute__((format(printf, 2, 3)));

// Called at the start of every entry point so a stale message never leaks.
void clear_error();

}  // namespace fvmt
