// The emulation catches real kernel bugs. Each buggy kernel below is a correct one with a
// single defect; the correct twin gives exact results, the buggy one gives results that
// differ in the precise, predictable way the emulation's scheduling implies:
//  - a block reduction missing its first __syncthreads, or the one inside its loop: the
//    blocks whose first phase runs in ascending thread order read partner slots before
//    they are written, so exactly every other block is wrong, and the next launch (which
//    reverses every block's order) gets exactly the other half wrong;
//  - a warp exchange missing its __syncwarp: in every block one lane of each pair (even
//    or odd, alternating by block) reads its partner's slot before the partner wrote it;
//  - an off-by-one read past the data staged in dynamic shared memory: the last thread
//    reads the poison (NaN) and only it is wrong.
// These expectations hold for the emulation only; on a GPU the bugs are timing-dependent.
#include <cmath>

#include "emu_check.hpp"

using emu_test::DeviceArray;

namespace {

constexpr int kThreads = 256, kBlocks = 8;

enum class Defect { kNone, kNoFirstBarrier, kNoLoopBarrier };

template <Defect kDefect>
__global__ void block_sum(const int *values, int *sums) {
  __shared__ int partial[kThreads];
  const int t = static_cast<int>(threadIdx.x);
  partial[t] = values[blockIdx.x * kThreads + t];
  if (kDefect != Defect::kNoFirstBarrier) __syncthreads();
  for (int stride = kThreads / 2; stride > 0; stride /= 2) {
    if (t < stride) partial[t] += partial[t + stride];
    if (kDefect != Defect::kNoLoopBarrier) __syncthreads();
  }
  if (t == 0) sums[blockIdx.x] = partial[0];
}

template <bool kSynced>
__global__ void swap_pairs(const int *values, int *out) {
  __shared__ int slot[64];
  const int t = static_cast<int>(threadIdx.x);
  slot[t] = values[blockIdx.x * 64 + t];
  if (kSynced) __syncwarp();
  out[blockIdx.x * 64 + t] = slot[t ^ 1];
}

// out[i] = in[i + 1] - in[i]; the defect computes it for the last element too, reading
// one float past what was staged.
template <bool kOffByOne>
__global__ void differences(const float *in, float *out, int count) {
  FVMT_DYNAMIC_SHARED(float, staged);
  const int t = static_cast<int>(threadIdx.x);
  staged[t] = in[t];
  __syncthreads();
  if (t < count - 1 || kOffByOne) out[t] = staged[t + 1] - staged[t];
}

// Values of launch `launch`: distinct per launch and block, so stale shared memory never
// happens to hold the right numbers.
std::vector<int> launch_values(int launch) {
  std::vector<int> values(kBlocks * kThreads);
  for (int i = 0; i < kBlocks * kThreads; ++i) values[i] = 100000 * launch + 7 * i + 1;
  return values;
}

// Which blocks of one block_sum<kDefect> launch got a wrong sum.
template <Defect kDefect>
std::vector<bool> wrong_blocks(int launch) {
  const std::vector<int> values = launch_values(launch);
  DeviceArray<int> device_values(values), sums(kBlocks);
  FVMT_LAUNCH(kBlocks, kThreads, 0, 0, block_sum<kDefect>)(device_values.get(), sums.get());
  CHECK_LAST_ERROR(cudaSuccess, "block_sum");
  const std::vector<int> got = sums.download();
  std::vector<bool> wrong(kBlocks);
  for (int b = 0; b < kBlocks; ++b) {
    int expected = 0;
    for (int t = 0; t < kThreads; ++t) expected += values[b * kThreads + t];
    wrong[b] = got[b] != expected;
  }
  return wrong;
}

// Exactly the blocks of one parity are wrong; returns that parity (0 even, 1 odd), -1 if not so.
int wrong_parity(const std::vector<bool> &wrong) {
  const int parity = wrong[0] ? 0 : 1;
  for (int b = 0; b < kBlocks; ++b)
    if (wrong[b] != (b % 2 == parity)) return -1;
  return parity;
}

template <Defect kDefect>
void check_missing_barrier(const char *name, int launch) {
  const int first = wrong_parity(wrong_blocks<kDefect>(launch));
  const int second = wrong_parity(wrong_blocks<kDefect>(launch + 1));
  CHECK(first >= 0, "%s: the wrong blocks are not exactly one parity class", name);
  CHECK(second >= 0 && second != first, "%s: the next launch did not get exactly the other blocks wrong", name);
}

}  // namespace

int main() {
  for (int launch = 0; launch < 3; ++launch) {
    const std::vector<bool> wrong = wrong_blocks<Defect::kNone>(launch);
    for (int b = 0; b < kBlocks; ++b) CHECK(!wrong[b], "correct block_sum, launch %d: block %d wrong", launch, b);
  }
  check_missing_barrier<Defect::kNoFirstBarrier>("block_sum without its first __syncthreads", 10);
  check_missing_barrier<Defect::kNoLoopBarrier>("block_sum without the __syncthreads in its loop", 20);

  std::vector<int> values(kBlocks * 64);
  for (int i = 0; i < kBlocks * 64; ++i) values[i] = 5 * i + 3;
  DeviceArray<int> device_values(values), out(kBlocks * 64);
  FVMT_LAUNCH(kBlocks, 64, 0, 0, swap_pairs<true>)(device_values.get(), out.get());
  CHECK_LAST_ERROR(cudaSuccess, "swap_pairs<true>");
  std::vector<int> got = out.download();
  for (int i = 0; i < kBlocks * 64; ++i) CHECK(got[i] == values[i ^ 1], "swap_pairs with __syncwarp: %d", i);
  FVMT_LAUNCH(kBlocks, 64, 0, 0, swap_pairs<false>)(device_values.get(), out.get());
  CHECK_LAST_ERROR(cudaSuccess, "swap_pairs<false>");
  got = out.download();
  for (int b = 0; b < kBlocks; ++b) {
    int wrong_even = 0, wrong_odd = 0;
    for (int t = 0; t < 64; ++t) (t % 2 == 0 ? wrong_even : wrong_odd) += got[b * 64 + t] != values[(b * 64 + t) ^ 1];
    CHECK((wrong_even == 32 && wrong_odd == 0) || (wrong_even == 0 && wrong_odd == 32),
          "swap_pairs without __syncwarp, block %d: %d even and %d odd lanes wrong (expected 32 of one kind)", b,
          wrong_even, wrong_odd);
  }

  std::vector<float> samples(kThreads);
  for (int i = 0; i < kThreads; ++i) samples[i] = static_cast<float>(i * i);
  DeviceArray<float> device_samples(samples), deltas(kThreads);
  for (const bool off_by_one : {false, true}) {
    deltas.fill_bytes(0);
    if (off_by_one)
      FVMT_LAUNCH(1, kThreads, kThreads * sizeof(float), 0, differences<true>)(device_samples.get(), deltas.get(),
                                                                              kThreads);
    else
      FVMT_LAUNCH(1, kThreads, kThreads * sizeof(float), 0, differences<false>)(device_samples.get(), deltas.get(),
                                                                               kThreads);
    CHECK_LAST_ERROR(cudaSuccess, "differences");
    const std::vector<float> d = deltas.download();
    for (int i = 0; i < kThreads - 1; ++i)
      CHECK(d[i] == static_cast<float>(2 * i + 1), "differences (off by one: %d) [%d] = %g", off_by_one, i, d[i]);
    if (off_by_one)
      CHECK(std::isnan(d[kThreads - 1]), "the read past the staged data gave %g, not the NaN poison",
            d[kThreads - 1]);
    else
      CHECK(d[kThreads - 1] == 0.0f, "the guarded kernel wrote its last element: %g", d[kThreads - 1]);
  }
  return emu_test::finish("emu_bug_test");
}
