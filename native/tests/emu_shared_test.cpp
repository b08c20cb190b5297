// Dynamic shared memory (FVMT_DYNAMIC_SHARED): a block-wide reversal through it at 16 KiB,
// the 48 KiB default limit (cudaErrorInvalidValue, nothing runs), raising it with
// cudaFuncSetAttribute to 96 KiB, the 227 KiB ceiling of that attribute, the alignment of
// the buffer, and (emulation only) its poisoning before each block.
#include "emu_check.hpp"

using emu_test::DeviceArray;

namespace {

constexpr int kThreads = 256;

// out[block][i] = in[block][count - 1 - i] for count floats staged in dynamic shared memory.
__global__ void reverse_through_shared(const float *in, float *out, int count) {
  FVMT_DYNAMIC_SHARED(float, staged);
  const float *src = in + static_cast<size_t>(blockIdx.x) * count;
  for (int i = threadIdx.x; i < count; i += blockDim.x) staged[i] = src[i];
  __syncthreads();
  float *dst = out + static_cast<size_t>(blockIdx.x) * count;
  for (int i = threadIdx.x; i < count; i += blockDim.x) dst[i] = staged[count - 1 - i];
}

// What a block finds in dynamic shared memory before writing it, and its address alignment.
__global__ void inspect_shared(unsigned *first_words, unsigned long long *alignment) {
  FVMT_DYNAMIC_SHARED(unsigned, words);
  first_words[blockIdx.x * blockDim.x + threadIdx.x] = words[threadIdx.x];
  __syncthreads();
  words[threadIdx.x] = 0x12345678u;  // the next block on this worker must not see this
  if (threadIdx.x == 0) alignment[blockIdx.x] = reinterpret_cast<unsigned long long>(words) % 16;
}

// One launch of reverse_through_shared over `blocks` blocks of `count` floats.
cudaError_t reverse(int blocks, int count, std::vector<float> &result) {
  std::vector<float> input(static_cast<size_t>(blocks) * count);
  for (size_t i = 0; i < input.size(); ++i) input[i] = static_cast<float>(i) * 0.5f + 1.0f;
  DeviceArray<float> in(input), out(input.size());
  out.fill_bytes(0);
  FVMT_LAUNCH(blocks, kThreads, count * sizeof(float), 0, reverse_through_shared)(in.get(), out.get(), count);
  const cudaError_t error = cudaGetLastError();
  result = out.download();
  int wrong = 0;
  for (int b = 0; b < blocks && error == cudaSuccess; ++b)
    for (int i = 0; i < count; ++i)
      wrong += result[static_cast<size_t>(b) * count + i] != input[static_cast<size_t>(b) * count + count - 1 - i];
  CHECK(wrong == 0, "reverse of %d floats: %d wrong", count, wrong);
  return error;
}

bool all_zero(const std::vector<float> &values) {
  for (float v : values)
    if (v != 0.0f) return false;
  return true;
}

}  // namespace

int main() {
  std::vector<float> result;
  CHECK(reverse(6, 4096, result) == cudaSuccess, "16 KiB of dynamic shared memory must launch");

  const int kFloats96KiB = 96 * 1024 / 4;
  const cudaError_t too_big = reverse(2, kFloats96KiB, result);
  CHECK(too_big == cudaErrorInvalidValue, "96 KiB without the attribute: got %s", cudaGetErrorName(too_big));
  CHECK(emu_test::contains(cudaGetErrorString(too_big), "invalid argument"), "message: %s",
        cudaGetErrorString(too_big));
  CHECK(all_zero(result), "a refused launch must not run");

  CHECK(cudaFuncSetAttribute(reverse_through_shared, cudaFuncAttributeMaxDynamicSharedMemorySize,
                             kFloats96KiB * 4) == cudaSuccess,
        "raising the limit to 96 KiB");
  CHECK(reverse(3, kFloats96KiB, result) == cudaSuccess, "96 KiB after cudaFuncSetAttribute must launch");
  const cudaError_t beyond = reverse(1, kFloats96KiB + 1, result);
  CHECK(beyond == cudaErrorInvalidValue, "one float over the raised limit: got %s", cudaGetErrorName(beyond));

  const cudaError_t ceiling =
      cudaFuncSetAttribute(reverse_through_shared, cudaFuncAttributeMaxDynamicSharedMemorySize, 228 * 1024);
  CHECK(ceiling == cudaErrorInvalidValue, "228 KiB is over the ceiling: got %s", cudaGetErrorName(ceiling));
  CHECK_LAST_ERROR(cudaErrorInvalidValue, "the refused attribute is the last error");
  CHECK(cudaFuncSetAttribute(reverse_through_shared, cudaFuncAttributeMaxDynamicSharedMemorySize, 227 * 1024) ==
            cudaSuccess,
        "227 KiB is the ceiling");
  CHECK(reverse(1, 227 * 1024 / 4, result) == cudaSuccess, "227 KiB after cudaFuncSetAttribute must launch");
  CHECK(cudaFuncSetAttribute(reverse_through_shared, cudaFuncAttributePreferredSharedMemoryCarveout, 100) ==
            cudaSuccess,
        "a carveout of 100%%");
  CHECK(cudaFuncSetAttribute(reverse_through_shared, cudaFuncAttributePreferredSharedMemoryCarveout, 101) ==
            cudaErrorInvalidValue,
        "a carveout of 101%%");
  CHECK_LAST_ERROR(cudaErrorInvalidValue, "the refused carveout");

  constexpr int kBlocks = 8;
  DeviceArray<unsigned> first_words(kBlocks * kThreads);
  DeviceArray<unsigned long long> alignment(kBlocks);
  FVMT_LAUNCH(kBlocks, kThreads, kThreads * sizeof(unsigned), 0, inspect_shared)(first_words.get(), alignment.get());
  CHECK_LAST_ERROR(cudaSuccess, "inspect_shared");
  const std::vector<unsigned long long> misalignment = alignment.download();
  for (int b = 0; b < kBlocks; ++b) CHECK(misalignment[b] == 0, "block %d: shared memory not 16-byte aligned", b);
#if defined(FVMT_CUDA_EMULATION)
  const std::vector<unsigned> words = first_words.download();
  for (int i = 0; i < kBlocks * kThreads; ++i)
    CHECK(words[i] == 0xFFFFFFFFu, "thread %d found %08x, not the poison, before writing", i, words[i]);
#endif
  return emu_test::finish("emu_shared_test");
}
