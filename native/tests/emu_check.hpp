// What every emu_*.cpp test shares: CHECK (counts a failure, prints where and why, goes
// on), finish() (exit status), and DeviceArray, device memory filled and read back through
// the CUDA runtime so that each test is a plain CUDA program (nvcc -x cu compiles it too).
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "portable.cuh"

namespace emu_test {

inline int failures = 0;

#define CHECK(condition, ...)                                                                   \
  do {                                                                                          \
    if (!(condition)) {                                                                         \
      ++::emu_test::failures;                                                                   \
      std::fprintf(stderr, "%s:%d: CHECK(%s) failed: ", __FILE__, __LINE__, #condition);       \
      std::fprintf(stderr, __VA_ARGS__);                                                        \
      std::fputc('\n', stderr);                                                                 \
    }                                                                                           \
  } while (0)

// CHECKs that the last CUDA error is `expected`, then that reading it cleared it.
#define CHECK_LAST_ERROR(expected, what)                                                         \
  do {                                                                                           \
    const cudaError_t got_ = cudaGetLastError();                                                 \
    CHECK(got_ == (expected), "%s: got %s (%s), expected %s", what, cudaGetErrorName(got_),     \
          cudaGetErrorString(got_), cudaGetErrorName(expected));                                 \
    CHECK(cudaGetLastError() == cudaSuccess, "%s: cudaGetLastError did not clear the error", what); \
  } while (0)

inline int finish(const char *test) {
  if (failures != 0) {
    std::fprintf(stderr, "%s: %d check(s) FAILED\n", test, failures);
    return 1;
  }
  std::printf("%s: all checks passed\n", test);
  return 0;
}

inline bool contains(const char *text, const char *part) { return std::strstr(text, part) != nullptr; }

template <typename T>
inline uint64_t bits_of(T value) {
  uint64_t bits = 0;
  std::memcpy(&bits, &value, sizeof value);
  return bits;
}

// n elements of device memory.
template <typename T>
class DeviceArray {
 public:
  explicit DeviceArray(size_t n) : n_(n) {
    if (cudaMalloc(&data_, n * sizeof(T)) != cudaSuccess) {
      std::fprintf(stderr, "cudaMalloc of %zu bytes failed\n", n * sizeof(T));
      std::exit(2);
    }
  }
  explicit DeviceArray(const std::vector<T> &values) : DeviceArray(values.size()) { upload(values); }
  DeviceArray(const DeviceArray &) = delete;
  DeviceArray &operator=(const DeviceArray &) = delete;
  ~DeviceArray() { cudaFree(data_); }

  void upload(const std::vector<T> &values) {
    cudaMemcpy(data_, values.data(), values.size() * sizeof(T), cudaMemcpyHostToDevice);
  }
  void fill_bytes(int byte) { cudaMemset(data_, byte, n_ * sizeof(T)); }
  std::vector<T> download() const {
    std::vector<T> values(n_);
    cudaMemcpy(values.data(), data_, n_ * sizeof(T), cudaMemcpyDeviceToHost);
    return values;
  }
  T *get() const { return data_; }

 private:
  T *data_ = nullptr;
  size_t n_;
};

}  // namespace emu_test
