// What every entry point of libfastvmt_cpu shares: the C boundary that turns a
// C++ exception into a status code, and scratch buffers.
//
// The cpu build allocates its own scratch (every *_workspace_bytes returns 0),
// always BEFORE an OpenMP region: nothing inside a parallel region allocates or
// throws, so an exception can only leave through run_guarded().
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <new>

#include "status.hpp"

namespace fvmt::cpu {

// Runs body() (which returns a status) and maps exceptions to status codes;
// std::bad_alloc is FVMT_ERR_OUT_OF_MEMORY, anything else a library bug.
template <typename Body>
int32_t run_guarded(const char *fn, Body &&body) noexcept {
  clear_error();
  try {
    return body();
  } catch (const std::bad_alloc &) {
    return fail(FVMT_ERR_OUT_OF_MEMORY, "%s: host memory allocation failed", fn);
  } catch (const std::exception &e) {
    return fail(FVMT_ERR_INTERNAL, "%s: %s", fn, e.what());
  } catch (...) {
    return fail(FVMT_ERR_INTERNAL, "%s: unknown exception", fn);
  }
}

// A zero-filled, 64-byte aligned array of T (cache-line aligned so that packed
// panels start on a line and aligned vector loads are legal).
template <typename T>
class AlignedArray {
 public:
  AlignedArray() = default;
  explicit AlignedArray(size_t count) { resize(count); }
  AlignedArray(const AlignedArray &) = delete;
  AlignedArray &operator=(const AlignedArray &) = delete;
  AlignedArray(AlignedArray &&other) noexcept : data_(other.data_), size_(other.size_) {
    other.data_ = nullptr;
    other.size_ = 0;
  }
  ~AlignedArray() { std::free(data_); }

  // Discards the contents; the new array is zero-filled.
  void resize(size_t count) {
    std::free(data_);
    data_ = nullptr;
    size_ = 0;
    const size_t bytes = ((count * sizeof(T) + 63) / 64) * 64;
    if (bytes == 0) return;
    data_ = static_cast<T *>(std::aligned_alloc(64, bytes));
    if (data_ == nullptr) throw std::bad_alloc();
    for (size_t n = 0; n < count; ++n) data_[n] = T();
    size_ = count;
  }

  T *data() { return data_; }
  const T *data() const { return data_; }
  size_t size() const { return size_; }
  T &operator[](size_t n) { return data_[n]; }
  const T &operator[](size_t n) const { return data_[n]; }

 private:
  T *data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace fvmt::cpu
