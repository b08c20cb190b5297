// Errors behave like CUDA's: invalid launch configurations do not run and set
// cudaErrorInvalidConfiguration; the last error is per thread, peeked or read-and-cleared;
// the host runtime refuses bad arguments. Emulation reports: deadlocks (__syncthreads in a
// branch, warp operations that can never meet, a mask without the caller's lane) and C++
// exceptions escaping a kernel end the launch with an error and a sentence naming the
// kernel, block and threads, instead of hanging or aborting; later launches work; a fiber
// stack overflow faults on the guard page (in a child process).
#include <stdexcept>

#if defined(FVMT_CUDA_EMULATION)
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#endif

#include "emu_check.hpp"

using emu_test::contains;
using emu_test::DeviceArray;

namespace {

__global__ void count_threads(int *counter) { atomicAdd(counter, 1); }

__global__ void deadlock_in_branch(int *reached) {
  reached[blockIdx.x * blockDim.x + threadIdx.x] = 1;
  if (threadIdx.x < 16) __syncthreads();
}

__global__ void syncwarp_meets_syncthreads() {
  if (threadIdx.x < 16)
    __syncwarp();
  else
    __syncthreads();
}

__global__ void shuffle_meets_ballot(int *out) {
  if (threadIdx.x < 16)
    out[threadIdx.x] = __shfl_sync(0xFFFFFFFFu, static_cast<int>(threadIdx.x), 0);
  else
    out[threadIdx.x] = static_cast<int>(__ballot_sync(0xFFFFFFFFu, 1));
}

__global__ void mask_without_own_lane(int *out) { out[threadIdx.x] = __shfl_sync(0x1u, 7, 0); }

// The first half of the warp exits; the rest shuffle with a full mask (PTX: only non-exited
// lanes take part), reading an exited lane (undefined: poison here) and a live one.
__global__ void shuffle_after_exits(int *from_exited, int *from_live) {
  const int lane = static_cast<int>(threadIdx.x);
  if (lane < 16) return;
  from_exited[lane] = __shfl_sync(0xFFFFFFFFu, 10 * lane, 3);
  from_live[lane] = __shfl_sync(0xFFFFFFFFu, 10 * lane, 20);
}

#if defined(FVMT_CUDA_EMULATION)
__global__ void throws_in_thread_three() {
  if (threadIdx.x == 3) throw std::runtime_error("boom from thread three");
  __syncthreads();
}

// About 1 KiB of stack per level.
int descend(int levels) {
  volatile char frame[1024];
  frame[0] = static_cast<char>(levels);
  return levels == 0 ? frame[0] : descend(levels - 1) + frame[0];
}

__global__ void recurse(int levels, int *out) { *out = descend(levels); }

// Runs `recurse` with `levels` in a child process; returns its wait status.
int recurse_in_child(int levels) {
  const pid_t child = fork();
  if (child == 0) {
    int out = 0;
    FVMT_LAUNCH(1, 1, 0, 0, recurse)(levels, &out);  // one block: no helper threads needed
    _exit(cudaGetLastError() == cudaSuccess ? 0 : 3);
  }
  int status = 0;
  waitpid(child, &status, 0);
  return status;
}
#endif

void check_refused(dim3 grid, dim3 block, const char *what) {
  DeviceArray<int> counter(1);
  counter.fill_bytes(0);
  FVMT_LAUNCH(grid, block, 0, 0, count_threads)(counter.get());
  CHECK(cudaPeekAtLastError() == cudaErrorInvalidConfiguration, "%s: peek got %s", what,
        cudaGetErrorName(cudaPeekAtLastError()));
  CHECK_LAST_ERROR(cudaErrorInvalidConfiguration, what);
  CHECK(counter.download()[0] == 0, "%s: the refused kernel ran", what);
}

void check_launch_configurations() {
  check_refused(dim3(1), dim3(1025), "block of 1025 threads");
  check_refused(dim3(1), dim3(0), "block.x = 0");
  check_refused(dim3(1), dim3(1, 0), "block.y = 0");
  check_refused(dim3(1), dim3(1, 1, 65), "block.z = 65");
  check_refused(dim3(1), dim3(32, 32, 2), "32 x 32 x 2 = 2048 threads");
  check_refused(dim3(1), dim3(1, 1025), "block.y = 1025");
  check_refused(dim3(0), dim3(32), "grid.x = 0");
  check_refused(dim3(1, 65536), dim3(32), "grid.y = 65536");
  check_refused(dim3(1, 1, 0), dim3(32), "grid.z = 0");
  check_refused(dim3(static_cast<unsigned>(-1)), dim3(32), "grid.x = -1");

  DeviceArray<int> counter(1);
  counter.fill_bytes(0);
  FVMT_LAUNCH(dim3(2, 3, 4), dim3(8, 8, 16), 0, 0, count_threads)(counter.get());
  CHECK_LAST_ERROR(cudaSuccess, "the largest block and a 3-D grid");
  CHECK(counter.download()[0] == 24 * 1024, "3-D launch counted %d threads", counter.download()[0]);
}

void check_deadlock_reports() {
  constexpr int kBlocks = 3, kThreads = 64;
  DeviceArray<int> reached(kBlocks * kThreads);
  reached.fill_bytes(0);
  FVMT_LAUNCH(kBlocks, kThreads, 0, 0, deadlock_in_branch)(reached.get());
  const cudaError_t pending = cudaDeviceSynchronize();
  CHECK(pending == cudaErrorIllegalInstruction, "the sync call reports the kernel's error: %s",
        cudaGetErrorName(pending));
  const cudaError_t error = cudaGetLastError();
  CHECK(error == cudaErrorIllegalInstruction, "__syncthreads in a branch: got %s", cudaGetErrorName(error));
  const char *message = cudaGetErrorString(error);
  CHECK(contains(message, "illegal instruction") && contains(message, "deadlock_in_branch") &&
            contains(message, "block (0,0,0)") && contains(message, "16 of 64 threads") &&
            contains(message, "__syncthreads()") && contains(message, "48"),
        "the deadlock sentence: %s", message);
  CHECK(cudaDeviceSynchronize() == cudaSuccess, "cudaGetLastError cleared the pending error");
  const std::vector<int> flags = reached.download();
  int reached_count = 0;
  for (int f : flags) reached_count += f;
  CHECK(reached_count == kBlocks * kThreads, "every block ran up to its deadlock: %d threads", reached_count);

  FVMT_LAUNCH(1, 32, 0, 0, syncwarp_meets_syncthreads)();
  CHECK(cudaGetLastError() == cudaErrorIllegalInstruction, "__syncwarp against __syncthreads");
  message = cudaGetErrorString(cudaErrorIllegalInstruction);
  CHECK(contains(message, "waits in __syncwarp(mask 0xffffffff)") && contains(message, "waits in __syncthreads()"),
        "the warp deadlock sentence: %s", message);

  DeviceArray<int> out(32);
  FVMT_LAUNCH(1, 32, 0, 0, shuffle_meets_ballot)(out.get());
  CHECK(cudaGetLastError() == cudaErrorIllegalInstruction, "__shfl_sync against __ballot_sync");
  message = cudaGetErrorString(cudaErrorIllegalInstruction);
  CHECK(contains(message, "waits in __shfl_sync(mask 0xffffffff)") &&
            contains(message, "waits in __ballot_sync(mask 0xffffffff)"),
        "the mismatch sentence: %s", message);

  FVMT_LAUNCH(1, 32, 0, 0, mask_without_own_lane)(out.get());
  CHECK(cudaGetLastError() == cudaErrorIllegalInstruction, "a mask without the caller");
  message = cudaGetErrorString(cudaErrorIllegalInstruction);
  CHECK(contains(message, "with mask 0x00000001, which does not include its own lane"), "the mask sentence: %s",
        message);

#if defined(FVMT_CUDA_EMULATION)
  FVMT_LAUNCH(2, 32, 0, 0, throws_in_thread_three)();
  CHECK(cudaGetLastError() == cudaErrorLaunchFailure, "an exception escaping a kernel");
  message = cudaGetErrorString(cudaErrorLaunchFailure);
  CHECK(contains(message, "boom from thread three") && contains(message, "block (0,0,0)"), "the exception sentence: %s",
        message);
#endif
}

void check_exited_lanes() {
  DeviceArray<int> from_exited(32), from_live(32);
  from_exited.fill_bytes(0);
  from_live.fill_bytes(0);
  FVMT_LAUNCH(1, 32, 0, 0, shuffle_after_exits)(from_exited.get(), from_live.get());
  CHECK_LAST_ERROR(cudaSuccess, "a full-mask shuffle after half the warp exited");
  const std::vector<int> exited = from_exited.download(), live = from_live.download();
  for (int lane = 16; lane < 32; ++lane) {
    CHECK(live[lane] == 200, "lane %d read %d from live lane 20", lane, live[lane]);
#if defined(FVMT_CUDA_EMULATION)
    CHECK(exited[lane] == -1, "lane %d read %d from exited lane 3, not the poison", lane, exited[lane]);
#endif
  }
}

#if defined(FVMT_CUDA_EMULATION)
// A fiber that overflows its 256 KiB stack hits the guard page and dies loudly (SIGSEGV);
// 64 levels (64 KiB) run fine.
void check_stack_guard() {
  const int shallow = recurse_in_child(64);
  CHECK(WIFEXITED(shallow) && WEXITSTATUS(shallow) == 0, "64 KiB of recursion: wait status %d", shallow);
  const int deep = recurse_in_child(1024);
  CHECK(WIFSIGNALED(deep) && WTERMSIG(deep) == SIGSEGV, "1 MiB of recursion must fault: wait status %d", deep);
}
#endif

void check_runtime() {
  int devices = 0;
  CHECK(cudaGetDeviceCount(&devices) == cudaSuccess && devices >= 1, "cudaGetDeviceCount: %d", devices);

  void *nothing = &devices;
  CHECK(cudaMalloc(&nothing, 0) == cudaSuccess, "cudaMalloc of 0 bytes");
  CHECK(cudaFree(nothing) == cudaSuccess && cudaFree(nullptr) == cudaSuccess, "cudaFree");

  float *a = nullptr, *b = nullptr;
  cudaStream_t stream = nullptr;
  CHECK(cudaMallocAsync(&a, 64 * sizeof(float), stream) == cudaSuccess && a != nullptr, "cudaMallocAsync");
  CHECK(cudaMalloc(&b, 64 * sizeof(float)) == cudaSuccess && b != nullptr, "cudaMalloc");
  CHECK(reinterpret_cast<uintptr_t>(a) % 256 == 0 && reinterpret_cast<uintptr_t>(b) % 256 == 0,
        "allocations are 256-byte aligned");
  std::vector<float> host(64), back(64, -1.0f);
  for (int i = 0; i < 64; ++i) host[i] = static_cast<float>(i) + 0.5f;
  CHECK(cudaMemsetAsync(b, 0, 64 * sizeof(float), stream) == cudaSuccess, "cudaMemsetAsync");
  CHECK(cudaMemcpyAsync(a, host.data(), 64 * sizeof(float), cudaMemcpyHostToDevice, stream) == cudaSuccess,
        "cudaMemcpyAsync H2D");
  CHECK(cudaMemcpy(b, a, 32 * sizeof(float), cudaMemcpyDeviceToDevice) == cudaSuccess, "cudaMemcpy D2D");
  CHECK(cudaStreamSynchronize(stream) == cudaSuccess, "cudaStreamSynchronize");
  CHECK(cudaMemcpy(back.data(), b, 64 * sizeof(float), cudaMemcpyDeviceToHost) == cudaSuccess, "cudaMemcpy D2H");
  for (int i = 0; i < 64; ++i) CHECK(back[i] == (i < 32 ? host[i] : 0.0f), "copied element %d: %g", i, back[i]);

  CHECK(cudaMemcpy(nullptr, b, 4, cudaMemcpyDeviceToDevice) == cudaErrorInvalidValue, "cudaMemcpy to NULL");
  CHECK_LAST_ERROR(cudaErrorInvalidValue, "cudaMemcpy to NULL");
  CHECK(cudaMemcpy(a, b, 4, static_cast<cudaMemcpyKind>(7)) == cudaErrorInvalidMemcpyDirection, "memcpy kind 7");
  CHECK_LAST_ERROR(cudaErrorInvalidMemcpyDirection, "memcpy kind 7");
  CHECK(cudaMemset(nullptr, 0, 4) == cudaErrorInvalidValue, "cudaMemset of NULL");
  CHECK_LAST_ERROR(cudaErrorInvalidValue, "cudaMemset of NULL");
  CHECK(cudaFreeAsync(a, stream) == cudaSuccess && cudaFree(b) == cudaSuccess, "frees");

  CHECK(contains(cudaGetErrorString(cudaSuccess), "no error"), "%s", cudaGetErrorString(cudaSuccess));
  const cudaError_t codes[] = {cudaSuccess,
                               cudaErrorInvalidValue,
                               cudaErrorMemoryAllocation,
                               cudaErrorInvalidConfiguration,
                               cudaErrorInvalidMemcpyDirection,
                               cudaErrorIllegalInstruction,
                               cudaErrorLaunchFailure};
  const char *names[] = {"cudaSuccess",
                         "cudaErrorInvalidValue",
                         "cudaErrorMemoryAllocation",
                         "cudaErrorInvalidConfiguration",
                         "cudaErrorInvalidMemcpyDirection",
                         "cudaErrorIllegalInstruction",
                         "cudaErrorLaunchFailure"};
  const int numbers[] = {0, 1, 2, 9, 21, 715, 719};
  for (int i = 0; i < 7; ++i) {
    CHECK(std::strcmp(cudaGetErrorName(codes[i]), names[i]) == 0, "name of %d: %s", numbers[i],
          cudaGetErrorName(codes[i]));
    CHECK(static_cast<int>(codes[i]) == numbers[i], "%s is %d", names[i], static_cast<int>(codes[i]));
  }
}

}  // namespace

int main() {
  check_launch_configurations();
  check_deadlock_reports();
  check_exited_lanes();
#if defined(FVMT_CUDA_EMULATION)
  check_stack_guard();
#endif
  check_runtime();

  // After every failure above, launches still work.
  DeviceArray<int> counter(1);
  counter.fill_bytes(0);
  FVMT_LAUNCH(7, 96, 0, 0, count_threads)(counter.get());
  CHECK_LAST_ERROR(cudaSuccess, "a launch after the failures");
  CHECK(counter.download()[0] == 7 * 96, "the launch after the failures counted %d", counter.download()[0]);
  return emu_test::finish("emu_error_test");
}
