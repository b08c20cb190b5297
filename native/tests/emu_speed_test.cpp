// How fast the emulation runs (printed, never asserted; the results are checked):
//  - the speed goal: 1,000 blocks x 256 threads, each thread passing 4 __syncthreads and a
//    5-step warp-shuffle reduction;
//  - the cost of an empty launch, and the CPU time of one thread passing one
//    __syncthreads, and of one thread taking part in one __shfl_xor_sync.
#include <chrono>
#include <ctime>
#include <cstdlib>
#include <thread>

#include "emu_check.hpp"

using emu_test::DeviceArray;

namespace {

constexpr int kThreads = 256, kWarps = kThreads / 32;

// sums[block] = 2 * sum of the block's values: each thread adds its right neighbour's value
// (ring order) to its own, the warp sums by shuffles, thread 0 adds the warp sums.
__global__ void goal_kernel(const float *values, float *sums) {
  __shared__ float staged[kThreads];
  __shared__ float warp_sums[kWarps];
  __shared__ float total;
  const int t = static_cast<int>(threadIdx.x), lane = t % 32;
  float v = values[blockIdx.x * kThreads + t];
  staged[t] = v;
  __syncthreads();
  v += staged[(t + 1) % kThreads];
  __syncthreads();
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(0xFFFFFFFFu, v, offset);
  if (lane == 0) warp_sums[t / 32] = v;
  __syncthreads();
  if (t == 0) {
    float sum = 0.0f;
    for (int w = 0; w < kWarps; ++w) sum += warp_sums[w];
    total = sum;
  }
  __syncthreads();
  if (t == 0) sums[blockIdx.x] = total;
}

__global__ void empty_kernel() {}

template <int kRounds>
__global__ void barrier_kernel(int *out) {
  int rounds = 0;
  for (int r = 0; r < kRounds; ++r) rounds += __syncthreads_count(1) > 0;
  if (threadIdx.x == 0) out[blockIdx.x] = rounds;
}

template <int kRounds>
__global__ void shuffle_kernel(int *out) {
  int v = static_cast<int>(threadIdx.x % 32);
  for (int r = 0; r < kRounds; ++r) v = __shfl_xor_sync(0xFFFFFFFFu, v, 1 + r % 31);
  out[blockIdx.x * blockDim.x + threadIdx.x] = v;
}

// Wall time and the CPU time of every thread of the process, since construction: on a
// shared machine the CPU time is the steadier measure of what the emulation costs.
class Stopwatch {
 public:
  Stopwatch() : wall_(std::chrono::steady_clock::now()), cpu_(std::clock()) {}
  double wall() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_).count(); }
  double cpu() const { return static_cast<double>(std::clock() - cpu_) / CLOCKS_PER_SEC; }

 private:
  std::chrono::steady_clock::time_point wall_;
  std::clock_t cpu_;
};

}  // namespace

int main() {
  const char *workers = std::getenv("FASTVMT_EMU_THREADS");
  std::printf("emu_speed_test: %u hardware threads, FASTVMT_EMU_THREADS=%s\n", std::thread::hardware_concurrency(),
              workers == nullptr ? "(unset)" : workers);

  constexpr int kBlocks = 1000;
  std::vector<float> values(kBlocks * kThreads);
  for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(i % 97);
  DeviceArray<float> device_values(values), sums(kBlocks);
  FVMT_LAUNCH(kBlocks, kThreads, 0, 0, goal_kernel)(device_values.get(), sums.get());  // warm-up: stacks
  CHECK_LAST_ERROR(cudaSuccess, "goal_kernel warm-up");
  constexpr int kRepeats = 3;
  double best_wall = 1e30, best_cpu = 1e30;
  for (int r = 0; r < kRepeats; ++r) {
    const Stopwatch watch;
    FVMT_LAUNCH(kBlocks, kThreads, 0, 0, goal_kernel)(device_values.get(), sums.get());
    best_wall = std::min(best_wall, watch.wall());
    best_cpu = std::min(best_cpu, watch.cpu());
    CHECK_LAST_ERROR(cudaSuccess, "goal_kernel");
  }
  const std::vector<float> got = sums.download();
  for (int b = 0; b < kBlocks; ++b) {
    float expected = 0.0f;
    for (int t = 0; t < kThreads; ++t) expected += 2.0f * values[b * kThreads + t];
    CHECK(got[b] == expected, "goal_kernel block %d: %g vs %g", b, got[b], expected);
  }
  std::printf("  speed goal, 1000 blocks x 256 threads, 4 __syncthreads + 5 shuffles: %.1f ms wall, "
              "%.1f ms CPU (best of %d)\n",
              best_wall * 1e3, best_cpu * 1e3, kRepeats);

  constexpr int kEmptyLaunches = 2000;
  Stopwatch watch;
  for (int i = 0; i < kEmptyLaunches; ++i) FVMT_LAUNCH(1, 1, 0, 0, empty_kernel)();
  const double empty = watch.wall() / kEmptyLaunches;
  CHECK_LAST_ERROR(cudaSuccess, "empty_kernel");
  watch = Stopwatch();
  for (int i = 0; i < kEmptyLaunches / 10; ++i) FVMT_LAUNCH(64, 32, 0, 0, empty_kernel)();
  const double empty64 = watch.wall() / (kEmptyLaunches / 10);
  CHECK_LAST_ERROR(cudaSuccess, "empty_kernel x 64");
  std::printf("  empty launch (wall): %.2f us (1 block x 1 thread), %.2f us (64 blocks x 32 threads)\n", empty * 1e6,
              empty64 * 1e6);

  constexpr int kRounds = 200, kSyncBlocks = 64;
  const double thread_rounds = double(kSyncBlocks) * kThreads * kRounds;
  DeviceArray<int> rounds(kSyncBlocks * kThreads);
  watch = Stopwatch();
  FVMT_LAUNCH(kSyncBlocks, kThreads, 0, 0, barrier_kernel<kRounds>)(rounds.get());
  const double barrier = watch.cpu() / thread_rounds;
  CHECK_LAST_ERROR(cudaSuccess, "barrier_kernel");
  const std::vector<int> barrier_rounds = rounds.download();
  for (int b = 0; b < kSyncBlocks; ++b) CHECK(barrier_rounds[b] == kRounds, "barrier_kernel block %d", b);

  watch = Stopwatch();
  FVMT_LAUNCH(kSyncBlocks, kThreads, 0, 0, shuffle_kernel<kRounds>)(rounds.get());
  const double shuffle = watch.cpu() / thread_rounds;
  CHECK_LAST_ERROR(cudaSuccess, "shuffle_kernel");
  const std::vector<int> shuffled = rounds.download();
  for (int i = 0; i < kSyncBlocks * kThreads; ++i) {
    int lane = i % 32;
    for (int r = 0; r < kRounds; ++r) lane ^= 1 + r % 31;
    CHECK(shuffled[i] == lane, "shuffle_kernel thread %d: %d vs %d", i, shuffled[i], lane);
  }
  std::printf("  CPU time per thread and sync point: __syncthreads %.1f ns, "
              "__shfl_xor_sync %.1f ns\n",
              barrier * 1e9, shuffle * 1e9);
  return emu_test::finish("emu_speed_test");
}
