// cuda_emu.h: the CUDA vocabulary on CPU threads, so that g++ compiles unmodified
// native/cuda/*.cu (with FVMT_CUDA_EMULATION defined, through portable.cuh) into
// libfastvmt_cudaemu, and CI without a GPU runs every kernel, with concurrency bugs made
// visible rather than hidden.
//
// Execution model
//  - A launch is synchronous. Its blocks are handed out, in increasing linear index, to a
//    pool of OS workers: the calling thread plus hardware_concurrency() - 1 helpers
//    (FASTVMT_EMU_THREADS sets the total). A worker runs ONE block at a time.
//  - The CUDA threads of a block are cooperative fibers on that worker. Each has its own
//    mmap'ed stack of FASTVMT_EMU_STACK_KB (default 256 KiB, at least 16) with a
//    PROT_NONE guard page below it, so an overflow faults (SIGSEGV) instead of corrupting
//    a neighbour; stacks are pooled per worker and reused by every later block and
//    launch. A fiber runs until it reaches a sync point (__syncthreads*, __syncwarp, a
//    shuffle or a vote) or returns, then switches back to the worker's scheduler. The
//    switch is 16 instructions of hand-written x86-64 (callee-saved registers, stack
//    pointer, an indirect jump; no signal-mask syscall as in swapcontext).
//    Why fibers (measured on this project's 2-core EPYC): one OS thread per CUDA thread
//    with a std::barrier (the first sketch in DESIGN.md) costs ~11 us per thread per
//    barrier, 26 s for the 1,000-block goal below; a fiber costs 10-18 ns per thread per
//    __syncthreads and 17-30 ns per thread per shuffle, and 1,000 blocks x 256 threads
//    with 4 __syncthreads and a 5-step shuffle reduction each take 40-60 ms on one core
//    (emu_speed_test prints these).
//  - Phases: the scheduler resumes every runnable fiber once, in thread order; when none
//    can run, it completes the warp operations whose lanes have all arrived, else releases
//    __syncthreads once every thread of the block waits there, else reports a deadlock.
//    The order of a phase ALTERNATES between ascending and descending linear thread
//    index: from phase to phase, from block to neighbouring block and from launch to
//    launch (ascending when launch serial + block index + phase is even). A thread that
//    reads what another thread writes in the same phase (a missing barrier) therefore
//    reads stale data in every other block, whichever direction the bad read goes, and
//    in the other blocks on the next launch. Results stay deterministic for a given
//    launch sequence.
//  - Deadlocks are reported, never hung: when nothing can progress (threads wait in
//    __syncthreads while others have exited, a warp operation waits for a lane that is in
//    __syncthreads or in a different warp operation), the block is abandoned (its fibers
//    are never resumed; their stacks are reused, so destructors of objects on them do not
//    run) and the launch records cudaErrorIllegalInstruction with a sentence naming the
//    kernel, block and threads, which cudaGetErrorString returns. A warp operation whose
//    mask lacks the caller's lane does the same; a C++ exception escaping a kernel records
//    cudaErrorLaunchFailure. Every block of the grid runs; the error of the lowest
//    failing block is kept, so the report is deterministic. Nothing aborts the process.
//  - Memory: __shared__ is `static thread_local`: a worker runs one block at a time and
//    fibers never migrate, so the worker's copy IS the running block's shared memory (it
//    keeps the previous block's contents, as uninitialised CUDA shared memory would).
//    Dynamic shared memory (FVMT_DYNAMIC_SHARED) is a per-worker buffer of the launch's
//    shared_bytes, 128-byte aligned and filled with 0xFF bytes (NaN as float, -1 as int)
//    before every block, so reading what no thread wrote is visible; 256 more poisoned
//    bytes follow it, so a small overrun reads NaN rather than the heap. Device memory is
//    host memory; atomics go through std::atomic_ref and are exact across workers.
//  - threadIdx/blockIdx/blockDim/gridDim are thread_local variables that the scheduler
//    sets before resuming a fiber (threadIdx) or starting a block (the others).
//  - Warp operations: a lane deposits its operands in its fiber record and yields; the
//    scheduler completes a group when every non-exited lane of the mask waits in the same
//    kind of operation with the same mask (PTX's rule for shfl.sync / vote.sync), computes
//    every lane's result (shuffle source lanes by PTX's shfl.sync formula, with width
//    segments and the "own value when out of range" cases) and resumes them. A source
//    lane missing from the block (partial last warp), outside the mask or exited is
//    undefined on hardware; here it reads all-ones bits (NaN / -1). __activemask() is the
//    warp's lanes that exist and have not exited.
//
// Everything the emulation needs lives in namespace fvmt_emu; the CUDA names themselves
// (below it) are global, as in CUDA. What is NOT emulated: the list at the end of this
// comment.
//
// Supported CUDA names
//   qualifiers   __global__ __device__ __host__ __forceinline__ __noinline__
//                __launch_bounds__(...) __shared__ __align__(n) (__restrict__ is g++'s own)
//   built-ins    threadIdx blockIdx blockDim gridDim warpSize dim3 uint3
//   sync         __syncthreads __syncthreads_count/_and/_or __syncwarp
//                __threadfence __threadfence_block __threadfence_system
//   warp         __shfl_sync __shfl_up_sync __shfl_down_sync __shfl_xor_sync (int, unsigned,
//                long, unsigned long, long long, unsigned long long, float, double,
//                __nv_bfloat16, __nv_bfloat162), __ballot_sync __any_sync __all_sync
//                __activemask
//   atomics      atomicAdd (int, unsigned, unsigned long long, float, double), atomicSub
//                (int, unsigned), atomicMax/atomicMin (int, unsigned, long long, unsigned
//                long long), atomicExch (int, unsigned, unsigned long long, float),
//                atomicCAS (int, unsigned, unsigned long long), atomicAnd/Or/Xor (int,
//                unsigned, unsigned long long)
//   math         min max (int, unsigned, long, unsigned long, long long, unsigned long long,
//                float, double; mixed signedness and float/double as CUDA has them),
//                <cmath>'s expf exp2f logf log2f sqrtf fmaxf fminf fabsf floorf ceilf roundf
//                rintf fmaf isfinite isnan isinf INFINITY FLT_MAX..., plus __expf __logf
//                rsqrtf __fdividef __frcp_rn __fmaf_rn __float2int_rn/_rd/_rz __int2float_rn
//                __float_as_int __int_as_float __float_as_uint __uint_as_float __popc __ffs
//                __clz __ldg
//   bf16         __nv_bfloat16 (2 bytes; converts to/from float like CUDA's), __nv_bfloat16_raw,
//                __nv_bfloat162, __float2bfloat16(_rn) (round to nearest even, NaN ->
//                0x7FFF as CUDA's), __bfloat162float, __floats2bfloat162_rn,
//                __bfloat1622float2, __bfloat16_as_ushort __ushort_as_bfloat16
//   vectors      float2 float4 make_float2 make_float4
//   host         cudaError_t (cudaSuccess, cudaErrorInvalidValue, cudaErrorMemoryAllocation,
//                cudaErrorInvalidConfiguration, cudaErrorInvalidMemcpyDirection,
//                cudaErrorIllegalInstruction, cudaErrorLaunchFailure), cudaStream_t,
//                cudaGetLastError cudaPeekAtLastError cudaGetErrorString cudaGetErrorName
//                cudaMalloc cudaFree cudaMallocAsync cudaFreeAsync cudaMemcpy(Async)
//                cudaMemcpyKind cudaMemset(Async) cudaStreamSynchronize cudaDeviceSynchronize
//                cudaGetDeviceCount cudaFuncSetAttribute (cudaFuncAttributeMaxDynamicShared-
//                MemorySize, cudaFuncAttributePreferredSharedMemoryCarveout)
//   launch       FVMT_LAUNCH(grid, block, shared_bytes, stream, kernel)(args...)
//                FVMT_DYNAMIC_SHARED(type, name)
//   Launch checks as CUDA: block dims >= 1, x,y <= 1024, z <= 64, x*y*z <= 1024; grid
//   x <= 2^31-1, y,z <= 65535 (else cudaErrorInvalidConfiguration); dynamic shared memory
//   <= 48 KiB, or <= the cudaFuncAttributeMaxDynamicSharedMemorySize set for the kernel
//   (at most 227 KiB) (else cudaErrorInvalidValue). Errors are per host thread and never
//   sticky; cudaStreamSynchronize/cudaDeviceSynchronize return a pending kernel-execution
//   error (illegal instruction, launch failure) until cudaGetLastError clears it.
//
// Not emulated (a kernel must avoid these):
//  - spin-waiting on memory (another thread's or block's flag), grid-wide sync,
//    cooperative groups, dynamic parallelism: a fiber only yields at sync points, blocks
//    of a launch may run one after another, so such a wait never ends;
//  - `extern __shared__` (use FVMT_DYNAMIC_SHARED), __constant__, texture/surface memory,
//    __half, tensor-core (mma/wmma) instructions, warp __match/__reduce intrinsics,
//    atomicInc/Dec, clock64, streams as concurrency (launches run in call order);
//  - bf16 arithmetic operators (a bf16 + bf16 computes in float here); convert explicitly;
//  - non-inline __device__ functions or __device__ variables defined in a header included
//    by two .cu files: every .cu here is one translation unit of one library, so they
//    collide at link time (CUDA hides this); mark them inline/__forceinline__ or static;
//  - anything only nvcc refuses: calling host functions (std::vector, a __device__-less
//    helper) from device code or __device__ functions from the host compiles here, as
//    does writing to threadIdx; compile new kernels with nvcc too;
//  - static __shared__ variables are not reset between blocks (nor are they on a GPU);
//  - the fiber switch targets x86-64 Linux and does not save MXCSR / the x87 control word
//    (kernels must not change the floating-point environment) and does not run under CET
//    shadow stacks (not enabled by default on Linux).
#pragma once

#if !defined(__x86_64__) || !defined(__linux__)
#error "cuda_emu.h: the fiber switch is written for x86-64 Linux"
#endif

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cfloat>
#include <climits>
#include <cmath>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <map>
#include <memory>  // before __noinline__ below: libstdc++'s shared_ptr uses that spelling
#include <mutex>
#include <new>
#include <string>
#include <system_error>
#include <thread>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <math.h>  // the global isfinite/isnan/isinf device code calls unqualified

// ---------------------------------------------------------------------------------------
// Qualifiers: device code is ordinary C++ here.
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
#define __shared__ static thread_local

// ---------------------------------------------------------------------------------------
// Built-in types and variables.
struct uint3 {
  unsigned x, y, z;
};

struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
  constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
  constexpr operator uint3() const { return {x, y, z}; }
};

struct alignas(8) float2 {
  float x, y;
};
struct alignas(16) float4 {
  float x, y, z, w;
};
inline float2 make_float2(float x, float y) { return {x, y}; }
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }

// Set by the scheduler: threadIdx before each fiber resumes, the others per block.
inline thread_local uint3 threadIdx;
inline thread_local uint3 blockIdx;
inline thread_local dim3 blockDim;
inline thread_local dim3 gridDim;
constexpr int warpSize = 32;

// ---------------------------------------------------------------------------------------
// Host runtime types (values as in CUDA's driver_types.h).
enum cudaError {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidMemcpyDirection = 21,
  cudaErrorIllegalInstruction = 715,
  cudaErrorLaunchFailure = 719,
};
typedef enum cudaError cudaError_t;

enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4,
};

enum cudaFuncAttribute {
  cudaFuncAttributeMaxDynamicSharedMemorySize = 8,
  cudaFuncAttributePreferredSharedMemoryCarveout = 9,
};

struct CUstream_st;
typedef struct CUstream_st *cudaStream_t;

// ---------------------------------------------------------------------------------------
// bf16: the upper half of an IEEE float.
struct __nv_bfloat16_raw {
  unsigned short x;
};

namespace fvmt_emu {
// Round to nearest even; NaN becomes the canonical 0x7FFF, as CUDA's conversion does.
inline unsigned short float_to_bf16_bits(float value) {
  const uint32_t bits = std::bit_cast<uint32_t>(value);
  if ((bits & 0x7FFFFFFFu) > 0x7F800000u) return 0x7FFF;
  const uint32_t rounding = 0x7FFFu + ((bits >> 16) & 1u);
  return static_cast<unsigned short>((bits + rounding) >> 16);
}
inline float bf16_bits_to_float(unsigned short bits) {
  return std::bit_cast<float>(static_cast<uint32_t>(bits) << 16);
}
}  // namespace fvmt_emu

struct __nv_bfloat16 {
  unsigned short __x;
  __nv_bfloat16() = default;
  __nv_bfloat16(float value) : __x(fvmt_emu::float_to_bf16_bits(value)) {}
  __nv_bfloat16(__nv_bfloat16_raw raw) : __x(raw.x) {}
  operator float() const { return fvmt_emu::bf16_bits_to_float(__x); }
  operator __nv_bfloat16_raw() const { return {__x}; }
};
static_assert(sizeof(__nv_bfloat16) == 2 && std::is_trivially_copyable_v<__nv_bfloat16>);

struct alignas(4) __nv_bfloat162 {
  __nv_bfloat16 x, y;
};

inline __nv_bfloat16 __float2bfloat16(float value) { return __nv_bfloat16(value); }
inline __nv_bfloat16 __float2bfloat16_rn(float value) { return __nv_bfloat16(value); }
inline float __bfloat162float(__nv_bfloat16 value) { return static_cast<float>(value); }
inline __nv_bfloat162 __floats2bfloat162_rn(float a, float b) { return {__nv_bfloat16(a), __nv_bfloat16(b)}; }
inline float2 __bfloat1622float2(__nv_bfloat162 value) {
  return {static_cast<float>(value.x), static_cast<float>(value.y)};
}
inline unsigned short __bfloat16_as_ushort(__nv_bfloat16 value) { return value.__x; }
inline __nv_bfloat16 __ushort_as_bfloat16(unsigned short bits) { return __nv_bfloat16_raw{bits}; }

// ---------------------------------------------------------------------------------------
// Math as CUDA device code spells it (the rest is <cmath>'s).
inline float __expf(float x) { return expf(x); }
inline float __logf(float x) { return logf(x); }
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }

namespace fvmt_emu {
// cvt.s32.f32 with a rounding already applied: saturates, NaN -> 0.
inline int saturate_to_int(float rounded) {
  if (std::isnan(rounded)) return 0;
  if (rounded >= 2147483648.0f) return INT_MAX;
  if (rounded < -2147483648.0f) return INT_MIN;
  return static_cast<int>(rounded);
}
}  // namespace fvmt_emu
inline int __float2int_rn(float x) { return fvmt_emu::saturate_to_int(nearbyintf(x)); }
inline int __float2int_rd(float x) { return fvmt_emu::saturate_to_int(floorf(x)); }
inline int __float2int_rz(float x) { return fvmt_emu::saturate_to_int(truncf(x)); }
inline float __int2float_rn(int x) { return static_cast<float>(x); }
inline int __float_as_int(float x) { return std::bit_cast<int>(x); }
inline float __int_as_float(int x) { return std::bit_cast<float>(x); }
inline unsigned __float_as_uint(float x) { return std::bit_cast<unsigned>(x); }
inline float __uint_as_float(unsigned x) { return std::bit_cast<float>(x); }
inline int __popc(unsigned x) { return std::popcount(x); }
inline int __ffs(int x) { return x == 0 ? 0 : std::countr_zero(static_cast<unsigned>(x)) + 1; }
inline int __clz(int x) { return std::countl_zero(static_cast<unsigned>(x)); }
template <typename T>
inline T __ldg(const T *address) {
  return *address;
}

// min/max overloads of CUDA's math_functions.hpp: same types, signed/unsigned mixes
// (compared as unsigned) and float/double mixes (as double).
#define FVMT_EMU_MIN_MAX(R, A, B)                                           \
  inline R min(A a, B b) {                                                  \
    const R x = static_cast<R>(a), y = static_cast<R>(b);                   \
    return y < x ? y : x;                                                   \
  }                                                                         \
  inline R max(A a, B b) {                                                  \
    const R x = static_cast<R>(a), y = static_cast<R>(b);                   \
    return y > x ? y : x;                                                   \
  }
FVMT_EMU_MIN_MAX(int, int, int)
FVMT_EMU_MIN_MAX(unsigned, unsigned, unsigned)
FVMT_EMU_MIN_MAX(unsigned, int, unsigned)
FVMT_EMU_MIN_MAX(unsigned, unsigned, int)
FVMT_EMU_MIN_MAX(long, long, long)
FVMT_EMU_MIN_MAX(unsigned long, unsigned long, unsigned long)
FVMT_EMU_MIN_MAX(unsigned long, long, unsigned long)
FVMT_EMU_MIN_MAX(unsigned long, unsigned long, long)
FVMT_EMU_MIN_MAX(long long, long long, long long)
FVMT_EMU_MIN_MAX(unsigned long long, unsigned long long, unsigned long long)
FVMT_EMU_MIN_MAX(unsigned long long, long long, unsigned long long)
FVMT_EMU_MIN_MAX(unsigned long long, unsigned long long, long long)
#undef FVMT_EMU_MIN_MAX
inline float min(float a, float b) { return fminf(a, b); }
inline float max(float a, float b) { return fmaxf(a, b); }
inline double min(double a, double b) { return fmin(a, b); }
inline double max(double a, double b) { return fmax(a, b); }
inline double min(float a, double b) { return fmin(a, b); }
inline double max(float a, double b) { return fmax(a, b); }
inline double min(double a, float b) { return fmin(a, b); }
inline double max(double a, float b) { return fmax(a, b); }

// ---------------------------------------------------------------------------------------
// The emulation machinery.
namespace fvmt_emu {

constexpr int kWarpSize = 32;
constexpr unsigned kMaxBlockThreads = 1024;
constexpr size_t kDefaultSharedLimit = 48 * 1024;  // without cudaFuncSetAttribute
constexpr int kMaxSharedOptIn = 227 * 1024;        // sm_90's opt-in maximum per block
constexpr size_t kSharedAlignment = 128;
constexpr size_t kSharedSlack = 256;  // poisoned bytes past the end: a small overrun reads NaN
constexpr uint64_t kPoison = ~uint64_t{0};          // value of a lane that is not a source

// --- context switch -------------------------------------------------------------------
// fvmt_emu_resume(save, target) (scheduler -> fiber) and fvmt_emu_yield(save, target)
// (fiber -> scheduler): push the callee-saved registers, store the stack pointer in *save,
// load `target`, pop the registers saved there and jump to the return address saved there.
// Why a jump, and why two copies of the same code:
//  - `ret` would be predicted from the return stack buffer, which holds the caller of the
//    OTHER context: every switch would mispredict, and so would the returns after it;
//  - an indirect jump is predicted from its own history: the yield jump always lands in
//    the scheduler, the resume jump lands where the fibers stopped, which in a phase is
//    mostly one place. Measured (emu_speed_test, one worker): ~32 ns per thread per
//    __syncthreads with `ret`, 10-18 ns with the two jumps.
// A new fiber's stack is prepared so that its first resume jumps into
// fvmt_emu_fiber_start with r12 = the argument and r13 = the entry function. Emitted once
// per program (COMDAT group), hidden.
extern "C" void fvmt_emu_resume(void **save, void *target);
extern "C" void fvmt_emu_yield(void **save, void *target);
extern "C" void fvmt_emu_fiber_start();
asm(R"(
  .macro fvmt_emu_switch name
  .weak \name
  .hidden \name
  .type \name,@function
  .p2align 4
\name:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  popq %rcx
  jmpq *%rcx
  .size \name, .-\name
  .endm
  .pushsection .text.fvmt_emu_resume,"axG",@progbits,fvmt_emu_resume,comdat
  fvmt_emu_switch fvmt_emu_resume
  fvmt_emu_switch fvmt_emu_yield
  .weak fvmt_emu_fiber_start
  .hidden fvmt_emu_fiber_start
  .type fvmt_emu_fiber_start,@function
fvmt_emu_fiber_start:
  .cfi_startproc
  .cfi_undefined rip
  movq %r12, %rdi
  callq *%r13
  ud2
  .cfi_endproc
  .size fvmt_emu_fiber_start, .-fvmt_emu_fiber_start
  .purgem fvmt_emu_switch
  .popsection
)");

// --- settings ---------------------------------------------------------------------------
inline long env_positive(const char *name, long fallback) {
  const char *text = std::getenv(name);
  if (text == nullptr) return fallback;
  char *end = nullptr;
  const long value = std::strtol(text, &end, 10);
  return (end != text && *end == '\0' && value > 0) ? value : fallback;
}

inline size_t fiber_stack_bytes() {
  static const size_t bytes = [] {
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    const size_t wanted = static_cast<size_t>(env_positive("FASTVMT_EMU_STACK_KB", 256)) * 1024;
    return (std::max(wanted, size_t{16 * 1024}) + page - 1) / page * page;
  }();
  return bytes;
}

inline int worker_count() {
  static const int count = [] {
    const unsigned hardware = std::max(1u, std::thread::hardware_concurrency());
    return static_cast<int>(env_positive("FASTVMT_EMU_THREADS", static_cast<long>(hardware)));
  }();
  return count;
}

// --- errors (per host thread, as CUDA's last error) ------------------------------------
inline const char *error_text(cudaError_t code) {
  switch (code) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    case cudaErrorIllegalInstruction: return "an illegal instruction was encountered";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
  }
  return "unrecognized error code";
}

inline const char *error_name(cudaError_t code) {
  switch (code) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidMemcpyDirection: return "cudaErrorInvalidMemcpyDirection";
    case cudaErrorIllegalInstruction: return "cudaErrorIllegalInstruction";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
  }
  return "cudaErrorUnknown";
}

struct ErrorState {
  cudaError_t last = cudaSuccess;
  cudaError_t described = cudaSuccess;  // the code `description` belongs to
  std::string description;              // CUDA's sentence + what the emulation saw
};

inline ErrorState &error_state() {
  static thread_local ErrorState state;
  return state;
}

// Makes `code` the last error; cudaGetErrorString(code) then adds `detail`.
inline cudaError_t record_error(cudaError_t code, const std::string &detail) {
  ErrorState &state = error_state();
  state.last = code;
  state.described = code;
  state.description = std::string(error_text(code)) + " (fvmt_emu: " + detail + ")";
  return code;
}

inline bool is_execution_error(cudaError_t code) {
  return code == cudaErrorIllegalInstruction || code == cudaErrorLaunchFailure;
}

// --- fibers -------------------------------------------------------------------------------
// One mmap'ed stack with a PROT_NONE guard page at its low end (stacks grow down).
class FiberStack {
 public:
  FiberStack() {
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    mapped_bytes_ = fiber_stack_bytes() + page;
    void *base = mmap(nullptr, mapped_bytes_, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (base == MAP_FAILED) throw std::bad_alloc();
    if (mprotect(base, page, PROT_NONE) != 0) {
      munmap(base, mapped_bytes_);
      throw std::bad_alloc();
    }
    base_ = static_cast<char *>(base);
  }
  FiberStack(FiberStack &&other) noexcept
      : base_(std::exchange(other.base_, nullptr)), mapped_bytes_(other.mapped_bytes_) {}
  FiberStack(const FiberStack &) = delete;
  FiberStack &operator=(const FiberStack &) = delete;
  FiberStack &operator=(FiberStack &&) = delete;
  ~FiberStack() {
    if (base_ != nullptr) munmap(base_, mapped_bytes_);
  }
  char *top() const { return base_ + mapped_bytes_; }

 private:
  char *base_ = nullptr;
  size_t mapped_bytes_ = 0;
};

enum class State : uint8_t { kRunnable, kAtBarrier, kAtWarpOp, kExited, kFailed };
enum class WarpOp : uint8_t { kSync, kShuffleIndex, kShuffleUp, kShuffleDown, kShuffleXor, kBallot, kAny, kAll };

inline const char *warp_op_name(WarpOp op) {
  switch (op) {
    case WarpOp::kSync: return "__syncwarp";
    case WarpOp::kShuffleIndex: return "__shfl_sync";
    case WarpOp::kShuffleUp: return "__shfl_up_sync";
    case WarpOp::kShuffleDown: return "__shfl_down_sync";
    case WarpOp::kShuffleXor: return "__shfl_xor_sync";
    case WarpOp::kBallot: return "__ballot_sync";
    case WarpOp::kAny: return "__any_sync";
    case WarpOp::kAll: return "__all_sync";
  }
  return "a warp operation";
}

// One CUDA thread: its saved stack pointer, its place in the block, and the operands and
// result of the sync point it waits at.
struct Fiber {
  void *sp = nullptr;
  uint3 thread_index{};
  int warp = 0, lane = 0;
  State state = State::kRunnable;
  WarpOp op = WarpOp::kSync;
  unsigned mask = 0;
  int operand = 0;  // srcLane, delta or laneMask of a shuffle
  int width = kWarpSize;
  uint64_t value = 0;   // shuffle value, vote or barrier predicate
  uint64_t result = 0;  // shuffle/vote result, or the barrier's count of true predicates
};

// What a launch hands its workers.
struct Job {
  dim3 grid, block;
  size_t shared_bytes = 0;
  void (*run_thread)(const void *closure) = nullptr;  // calls the kernel with its arguments
  const void *closure = nullptr;
  const char *kernel_name = "";
  uint64_t serial = 0;
  uint64_t block_count = 0;
  std::atomic<uint64_t> next_block{0};

  std::mutex failure_mutex;
  uint64_t failed_block = UINT64_MAX;  // lowest failing block: its error is reported
  cudaError_t failure = cudaSuccess;
  std::string failure_detail;

  void fail(uint64_t block_index, cudaError_t code, std::string detail) {
    std::lock_guard<std::mutex> lock(failure_mutex);
    if (block_index < failed_block) {
      failed_block = block_index;
      failure = code;
      failure_detail = std::move(detail);
    }
  }
};

// Where the running block's threads are, kept up to date by each fiber as it stops, so the
// scheduler learns what can proceed without rescanning the block.
struct BlockState {
  int threads = 0;
  int at_barrier = 0, in_warp_ops = 0, exited = 0;
  std::vector<unsigned> waiting;  // per warp: lanes waiting in a warp operation
  std::vector<unsigned> present;  // per warp: lanes that exist and have not exited
};

// Per OS worker: its fibers and their stacks, the running block's state, the dynamic
// shared memory, and the scheduler's saved stack pointer.
struct Worker {
  std::vector<FiberStack> stacks;
  std::vector<Fiber> fibers;
  BlockState block;
  void *scheduler_sp = nullptr;
  const Job *job = nullptr;
  std::string fiber_failure;  // set by a fiber that fails its block
  cudaError_t fiber_failure_code = cudaSuccess;
  struct Free {
    void operator()(std::byte *memory) const { std::free(memory); }
  };
  std::unique_ptr<std::byte, Free> shared;
  size_t shared_capacity = 0;
};

inline thread_local Worker *current_worker = nullptr;
inline thread_local Fiber *current_fiber = nullptr;
inline thread_local void *dynamic_shared = nullptr;

inline void *dynamic_shared_memory() { return dynamic_shared; }

inline std::string format_index(uint3 v) {
  char text[40];
  std::snprintf(text, sizeof text, "(%u,%u,%u)", v.x, v.y, v.z);
  return text;
}

inline std::string hex_mask(unsigned mask) {
  char text[16];
  std::snprintf(text, sizeof text, "0x%08x", mask);
  return text;
}

// The running fiber gives control back to its scheduler.
inline void yield(Fiber &self) { fvmt_emu_yield(&self.sp, current_worker->scheduler_sp); }

// The running fiber abandons its block with `code` and never resumes.
[[noreturn]] __attribute__((noinline, cold)) inline void fail_block(cudaError_t code, std::string detail) {
  Fiber &self = *current_fiber;
  current_worker->fiber_failure = std::move(detail);
  current_worker->fiber_failure_code = code;
  self.state = State::kFailed;
  yield(self);
  __builtin_unreachable();
}

// Entry of every fiber: runs the kernel for this thread, then parks for good.
inline void fiber_main(Fiber *self) {
  Worker &worker = *current_worker;
  try {
    worker.job->run_thread(worker.job->closure);
    self->state = State::kExited;
    worker.block.present[self->warp] &= ~(1u << self->lane);
    ++worker.block.exited;
  } catch (const std::exception &error) {
    worker.fiber_failure = std::string("a C++ exception escaped the kernel: ") + error.what();
    worker.fiber_failure_code = cudaErrorLaunchFailure;
    self->state = State::kFailed;
  } catch (...) {
    worker.fiber_failure = "a C++ exception escaped the kernel";
    worker.fiber_failure_code = cudaErrorLaunchFailure;
    self->state = State::kFailed;
  }
  yield(*self);
  __builtin_unreachable();
}

// A fresh frame on `stack` whose first resume enters fiber_main(fiber).
inline void *initial_frame(const FiberStack &stack, Fiber *fiber) {
  // After the 7 pops of a switch (registers, then the jump target), rsp must be 16-byte
  // aligned for fvmt_emu_fiber_start's call to meet the ABI: the frame starts 8 bytes off.
  void **frame = reinterpret_cast<void **>(stack.top() - 72);
  frame[0] = nullptr;                                             // r15
  frame[1] = nullptr;                                             // r14
  frame[2] = reinterpret_cast<void *>(&fiber_main);               // r13: entry
  frame[3] = fiber;                                               // r12: argument
  frame[4] = nullptr;                                             // rbx
  frame[5] = nullptr;                                             // rbp
  frame[6] = reinterpret_cast<void *>(&fvmt_emu_fiber_start);     // jump target
  return frame;
}

// --- sync points, called by the running fiber ------------------------------------------
// __syncthreads*: returns how many threads of the block passed a non-zero predicate.
inline int block_barrier(int predicate) {
  Fiber &self = *current_fiber;
  self.value = predicate != 0;
  self.state = State::kAtBarrier;
  ++current_worker->block.at_barrier;
  yield(self);
  return static_cast<int>(self.result);
}

[[noreturn]] __attribute__((noinline, cold)) inline void fail_foreign_mask(const Fiber &self, WarpOp op,
                                                                            unsigned mask) {
  fail_block(cudaErrorIllegalInstruction, "thread " + format_index(self.thread_index) + " calls " + warp_op_name(op) +
                                              " with mask " + hex_mask(mask) +
                                              ", which does not include its own lane " + std::to_string(self.lane));
}

// A warp operation: deposits the operands, waits for the group, returns this lane's result.
inline uint64_t warp_exchange(WarpOp op, unsigned mask, uint64_t value, int operand, int width) {
  Fiber &self = *current_fiber;
  if (((mask >> self.lane) & 1u) == 0) fail_foreign_mask(self, op, mask);
  self.op = op;
  self.mask = mask;
  self.value = value;
  self.operand = operand;
  self.width = width;
  self.state = State::kAtWarpOp;
  BlockState &block = current_worker->block;
  block.waiting[self.warp] |= 1u << self.lane;
  ++block.in_warp_ops;
  yield(self);
  return self.result;
}

template <typename T>
inline uint64_t to_bits(T value) {
  static_assert(sizeof(T) == 2 || sizeof(T) == 4 || sizeof(T) == 8);
  if constexpr (sizeof(T) == 2) return std::bit_cast<uint16_t>(value);
  else if constexpr (sizeof(T) == 4) return std::bit_cast<uint32_t>(value);
  else return std::bit_cast<uint64_t>(value);
}

template <typename T>
inline T from_bits(uint64_t bits) {
  if constexpr (sizeof(T) == 2) return std::bit_cast<T>(static_cast<uint16_t>(bits));
  else if constexpr (sizeof(T) == 4) return std::bit_cast<T>(static_cast<uint32_t>(bits));
  else return std::bit_cast<T>(bits);
}

template <typename T>
inline T shuffle(WarpOp op, unsigned mask, T value, int operand, int width) {
  return from_bits<T>(warp_exchange(op, mask, to_bits(value), operand, width));
}

// The source lane of a shuffle, by PTX's shfl.sync: segments of `width` lanes; a source
// outside the lane's segment (up, down) or in a later segment (xor) means "own value".
inline int shuffle_source(WarpOp op, int lane, int operand, int width) {
  const int segment_mask = (kWarpSize - width) & 31;  // c[12:8]
  const int b = operand & 31;
  const int first = lane & segment_mask;                   // minLane
  const int last = first | (31 & ~segment_mask);           // maxLane of down/bfly/idx
  switch (op) {
    case WarpOp::kShuffleIndex: return first | (b & ~segment_mask);
    case WarpOp::kShuffleUp: return lane - b >= first ? lane - b : lane;
    case WarpOp::kShuffleDown: return lane + b <= last ? lane + b : lane;
    case WarpOp::kShuffleXor: return (lane ^ b) <= last ? lane ^ b : lane;
    default: return lane;
  }
}

// --- the block scheduler -----------------------------------------------------------------
class BlockScheduler {
 public:
  explicit BlockScheduler(Worker &worker)
      : worker_(worker), block_(worker.block), fibers_(worker.fibers.data()), threads_(worker.block.threads) {}

  // Runs the block to its end; false (with `code` and `detail`) when it had to be abandoned.
  bool run(bool ascending_first, cudaError_t &code, std::string &detail) {
    for (bool ascending = ascending_first;; ascending = !ascending) {
      if (!run_phase(ascending)) {
        code = worker_.fiber_failure_code;
        detail = worker_.fiber_failure;
        return false;
      }
      switch (resolve(detail)) {
        case Outcome::kContinue: break;
        case Outcome::kFinished: return true;
        case Outcome::kDeadlock: code = cudaErrorIllegalInstruction; return false;
      }
    }
  }

 private:
  enum class Outcome { kContinue, kFinished, kDeadlock };

  // Resumes each runnable fiber once; false when one of them failed the block.
  bool run_phase(bool ascending) {
    for (int k = 0; k < threads_; ++k) {
      Fiber &fiber = fibers_[ascending ? k : threads_ - 1 - k];
      if (fiber.state != State::kRunnable) continue;
      current_fiber = &fiber;
      threadIdx = fiber.thread_index;
      fvmt_emu_resume(&worker_.scheduler_sp, fiber.sp);
      if (fiber.state == State::kFailed) return false;
    }
    return true;
  }

  // Nothing runs: complete warp groups, else release the block barrier, else deadlock.
  Outcome resolve(std::string &detail) {
    if (block_.exited == threads_) return Outcome::kFinished;
    if (block_.at_barrier == threads_) {
      int count = 0;
      for (int t = 0; t < threads_; ++t) count += static_cast<int>(fibers_[t].value);
      for (int t = 0; t < threads_; ++t) {
        fibers_[t].result = static_cast<uint64_t>(count);
        fibers_[t].state = State::kRunnable;
      }
      block_.at_barrier = 0;
      return Outcome::kContinue;
    }
    if (block_.in_warp_ops > 0) {
      if (complete_warp_groups()) return Outcome::kContinue;
      detail = describe_warp_deadlock();
      return Outcome::kDeadlock;
    }
    const Fiber &waiting = first_in(State::kAtBarrier), &gone = first_in(State::kExited);
    detail = std::to_string(block_.at_barrier) + " of " + std::to_string(threads_) + " threads (e.g. " +
             format_index(waiting.thread_index) + ") wait in __syncthreads() but " + std::to_string(block_.exited) +
             " (e.g. " + format_index(gone.thread_index) + ") have exited";
    return Outcome::kDeadlock;
  }

  const Fiber &first_in(State state) const {
    int t = 0;
    while (fibers_[t].state != state) ++t;
    return fibers_[t];
  }

  // The lanes a warp operation of `lane` (in warp `w`) waits for: the present lanes of its mask.
  unsigned group_of(int w, const Fiber &lane) const { return lane.mask & block_.present[w]; }

  bool group_ready(int w, const Fiber &lane, unsigned group) const {
    if ((group & ~block_.waiting[w]) != 0) return false;
    const Fiber *lanes = fibers_ + w * kWarpSize;
    for (unsigned rest = group; rest != 0; rest &= rest - 1) {
      const Fiber &other = lanes[std::countr_zero(rest)];
      if (other.op != lane.op || other.mask != lane.mask) return false;
    }
    return true;
  }

  bool complete_warp_groups() {
    bool progressed = false;
    const int warps = static_cast<int>(block_.waiting.size());
    for (int w = 0; w < warps; ++w) {
      for (unsigned pending = block_.waiting[w]; pending != 0;) {
        const Fiber &lane = fibers_[w * kWarpSize + std::countr_zero(pending)];
        const unsigned group = group_of(w, lane);
        pending &= ~(group | (1u << lane.lane));
        if (!group_ready(w, lane, group)) continue;
        complete(fibers_ + w * kWarpSize, lane.op, group);
        block_.waiting[w] &= ~group;
        block_.in_warp_ops -= std::popcount(group);
        progressed = true;
      }
    }
    return progressed;
  }

  static void complete(Fiber *lanes, WarpOp op, unsigned group) {
    unsigned votes = 0;
    for (unsigned rest = group; rest != 0; rest &= rest - 1) {
      const int l = std::countr_zero(rest);
      if (lanes[l].value != 0) votes |= 1u << l;
    }
    for (unsigned rest = group; rest != 0; rest &= rest - 1) {
      const int l = std::countr_zero(rest);
      Fiber &lane = lanes[l];
      switch (op) {
        case WarpOp::kSync: break;
        case WarpOp::kBallot: lane.result = votes; break;
        case WarpOp::kAny: lane.result = votes != 0; break;
        case WarpOp::kAll: lane.result = votes == group; break;
        default: {
          const int source = shuffle_source(op, l, lane.operand, lane.width);
          lane.result = ((group >> source) & 1u) != 0 ? lanes[source].value : kPoison;
        }
      }
      lane.state = State::kRunnable;
    }
  }

  // Names one waiting lane and the lane of its group that keeps it waiting.
  std::string describe_warp_deadlock() const {
    const int warps = static_cast<int>(block_.waiting.size());
    for (int w = 0; w < warps; ++w) {
      if (block_.waiting[w] == 0) continue;
      const Fiber *lanes = fibers_ + w * kWarpSize;
      const Fiber &lane = lanes[std::countr_zero(block_.waiting[w])];
      const std::string text = "thread " + format_index(lane.thread_index) + " waits in " + warp_op_name(lane.op) +
                               "(mask " + hex_mask(lane.mask) + ")";
      for (unsigned rest = group_of(w, lane); rest != 0; rest &= rest - 1) {
        const Fiber &other = lanes[std::countr_zero(rest)];
        if (other.state == State::kAtBarrier)
          return text + " but its lane " + std::to_string(other.lane) + " waits in __syncthreads()";
        if (other.op != lane.op || other.mask != lane.mask)
          return text + " but its lane " + std::to_string(other.lane) + " waits in " + warp_op_name(other.op) +
                 "(mask " + hex_mask(other.mask) + ")";
      }
    }
    return "warp operations wait on each other";
  }

  Worker &worker_;
  BlockState &block_;
  Fiber *fibers_;
  int threads_;
};

// Makes room for `threads` fibers and `shared_bytes` of dynamic shared memory.
inline void prepare_worker(Worker &worker, int threads, size_t shared_bytes) {
  while (static_cast<int>(worker.stacks.size()) < threads) worker.stacks.emplace_back();
  if (static_cast<int>(worker.fibers.size()) < threads) worker.fibers.resize(static_cast<size_t>(threads));
  if (shared_bytes + kSharedSlack > worker.shared_capacity) {
    const size_t bytes = (shared_bytes + kSharedSlack + kSharedAlignment - 1) / kSharedAlignment * kSharedAlignment;
    void *memory = std::aligned_alloc(kSharedAlignment, bytes);
    if (memory == nullptr) throw std::bad_alloc();
    worker.shared.reset(static_cast<std::byte *>(memory));
    worker.shared_capacity = bytes;
  }
}

inline void run_block(Worker &worker, Job &job, uint64_t block_index) {
  const dim3 g = job.grid, b = job.block;
  blockIdx = {static_cast<unsigned>(block_index % g.x), static_cast<unsigned>(block_index / g.x % g.y),
              static_cast<unsigned>(block_index / (static_cast<uint64_t>(g.x) * g.y))};
  blockDim = b;
  gridDim = g;
  const int threads = static_cast<int>(b.x * b.y * b.z);
  for (int t = 0; t < threads; ++t) {
    Fiber &fiber = worker.fibers[t];
    fiber.thread_index = {t % b.x, t / b.x % b.y, t / (b.x * b.y)};
    fiber.warp = t / kWarpSize;
    fiber.lane = t % kWarpSize;
    fiber.state = State::kRunnable;
    fiber.sp = initial_frame(worker.stacks[t], &fiber);
  }
  BlockState &block = worker.block;
  const int warps = (threads + kWarpSize - 1) / kWarpSize;
  block.threads = threads;
  block.at_barrier = block.in_warp_ops = block.exited = 0;
  block.waiting.assign(static_cast<size_t>(warps), 0u);
  block.present.assign(static_cast<size_t>(warps), ~0u);
  if (threads % kWarpSize != 0) block.present.back() = (1u << (threads % kWarpSize)) - 1;
  if (job.shared_bytes > 0) std::memset(worker.shared.get(), 0xFF, job.shared_bytes + kSharedSlack);
  dynamic_shared = job.shared_bytes > 0 ? worker.shared.get() : nullptr;

  cudaError_t code = cudaSuccess;
  std::string detail;
  BlockScheduler scheduler(worker);
  const bool ascending_first = ((job.serial + block_index) & 1u) == 0;
  if (!scheduler.run(ascending_first, code, detail))
    job.fail(block_index, code,
             std::string("kernel ") + job.kernel_name + ", block " + format_index(blockIdx) + ": " + detail);
  current_fiber = nullptr;
}

// A worker's share of a launch: blocks in increasing index until none is left.
inline void run_blocks(Job &job) {
  static thread_local Worker worker;
  current_worker = &worker;
  worker.job = &job;
  try {
    prepare_worker(worker, static_cast<int>(job.block.x * job.block.y * job.block.z), job.shared_bytes);
    for (uint64_t b; (b = job.next_block.fetch_add(1)) < job.block_count;) run_block(worker, job, b);
  } catch (const std::bad_alloc &) {
    job.fail(0, cudaErrorMemoryAllocation, "no memory for fiber stacks or shared memory");
  } catch (const std::exception &error) {
    job.fail(0, cudaErrorLaunchFailure, error.what());
  }
}

// The calling thread plus worker_count() - 1 helpers; one launch at a time.
class WorkerPool {
 public:
  static WorkerPool &instance() {
    static WorkerPool *pool = new WorkerPool(worker_count() - 1);  // never destroyed: helpers outlive exit
    return *pool;
  }

  void run(Job &job) {
    std::lock_guard<std::mutex> one_launch(launch_mutex_);
    const int helpers = static_cast<int>(std::min<uint64_t>(static_cast<uint64_t>(helpers_), job.block_count - 1));
    {
      std::lock_guard<std::mutex> lock(mutex_);
      job_ = &job;
      wanted_ = helpers;
      busy_ = helpers;
      ++generation_;
    }
    if (helpers > 0) wake_.notify_all();
    run_blocks(job);
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [&] { return busy_ == 0; });
    job_ = nullptr;
  }

 private:
  // A helper that cannot be started leaves the work to the others (at least the caller).
  explicit WorkerPool(int helpers) {
    try {
      for (int h = 0; h < helpers; ++h, ++helpers_) std::thread([this, h] { helper_loop(h); }).detach();
    } catch (const std::system_error &) {
    }
  }

  void helper_loop(int index) {
    uint64_t seen = 0;
    for (;;) {
      Job *job;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return generation_ != seen; });
        seen = generation_;
        if (index >= wanted_) continue;
        job = job_;
      }
      run_blocks(*job);
      std::lock_guard<std::mutex> lock(mutex_);
      if (--busy_ == 0) done_.notify_one();
    }
  }

  int helpers_ = 0;
  std::mutex launch_mutex_, mutex_;
  std::condition_variable wake_, done_;
  Job *job_ = nullptr;
  uint64_t generation_ = 0;
  int wanted_ = 0, busy_ = 0;
};

// cudaFuncSetAttribute's MaxDynamicSharedMemorySize, per kernel.
class KernelAttributes {
 public:
  static KernelAttributes &instance() {
    static KernelAttributes attributes;
    return attributes;
  }
  void set_shared_limit(const void *kernel, size_t bytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    shared_limit_[kernel] = bytes;
  }
  size_t shared_limit(const void *kernel) {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto found = shared_limit_.find(kernel);
    return found == shared_limit_.end() ? kDefaultSharedLimit : found->second;
  }

 private:
  std::mutex mutex_;
  std::map<const void *, size_t> shared_limit_;
};

inline std::atomic<uint64_t> &launch_serial() {
  static std::atomic<uint64_t> serial{0};
  return serial;
}

inline std::string format_dim(dim3 d) { return format_index(static_cast<uint3>(d)); }

// Checks the configuration as CUDA does, then runs every block; errors go to the last error.
inline void launch(dim3 grid, dim3 block, size_t shared_bytes, const void *kernel_key, const char *kernel_name,
                   void (*run_thread)(const void *), const void *closure) {
  const uint64_t threads = uint64_t{block.x} * block.y * block.z;
  if (block.x == 0 || block.y == 0 || block.z == 0 || block.x > 1024 || block.y > 1024 || block.z > 64 ||
      threads > kMaxBlockThreads) {
    record_error(cudaErrorInvalidConfiguration, std::string("kernel ") + kernel_name + ": block " +
                                                    format_dim(block) + " is not 1..1024 x 1..1024 x 1..64 "
                                                    "with at most 1024 threads");
    return;
  }
  if (grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.x > 2147483647u || grid.y > 65535 || grid.z > 65535) {
    record_error(cudaErrorInvalidConfiguration, std::string("kernel ") + kernel_name + ": grid " +
                                                    format_dim(grid) + " is not 1..2^31-1 x 1..65535 x 1..65535");
    return;
  }
  const size_t limit = KernelAttributes::instance().shared_limit(kernel_key);
  if (shared_bytes > limit) {
    record_error(cudaErrorInvalidValue, std::string("kernel ") + kernel_name + ": " + std::to_string(shared_bytes) +
                                            " bytes of dynamic shared memory exceed its limit of " +
                                            std::to_string(limit) +
                                            " (raise it with cudaFuncAttributeMaxDynamicSharedMemorySize)");
    return;
  }
  Job job;
  job.grid = grid;
  job.block = block;
  job.shared_bytes = shared_bytes;
  job.run_thread = run_thread;
  job.closure = closure;
  job.kernel_name = kernel_name;
  job.serial = launch_serial().fetch_add(1);
  job.block_count = uint64_t{grid.x} * grid.y * grid.z;
  WorkerPool::instance().run(job);
  if (job.failure != cudaSuccess) record_error(job.failure, job.failure_detail);
}

// FVMT_LAUNCH(...)(args...): converts the arguments to the kernel's parameter types once,
// as a CUDA launch does, and gives each CUDA thread its own copy of them.
template <typename... Params>
class KernelLaunch {
 public:
  KernelLaunch(dim3 grid, dim3 block, size_t shared_bytes, void (*kernel)(Params...), const char *name)
      : grid_(grid), block_(block), shared_bytes_(shared_bytes), kernel_(kernel), name_(name) {}

  template <typename... Args>
  void operator()(Args &&...args) const {
    static_assert(sizeof...(Args) == sizeof...(Params), "kernel launched with the wrong number of arguments");
    using Values = std::tuple<std::decay_t<Params>...>;
    struct Closure {
      void (*kernel)(Params...);
      Values values;
    };
    const Closure closure{kernel_, Values(std::forward<Args>(args)...)};
    launch(grid_, block_, shared_bytes_, reinterpret_cast<const void *>(kernel_), name_,
           [](const void *erased) {
             const Closure &c = *static_cast<const Closure *>(erased);
             std::apply(c.kernel, c.values);
           },
           &closure);
  }

 private:
  dim3 grid_, block_;
  size_t shared_bytes_;
  void (*kernel_)(Params...);
  const char *name_;
};

template <typename... Params>
KernelLaunch<Params...> make_launch(dim3 grid, dim3 block, size_t shared_bytes, cudaStream_t,
                                    void (*kernel)(Params...), const char *name) {
  return KernelLaunch<Params...>(grid, block, shared_bytes, kernel, name);
}

// std::atomic_ref on device memory (host memory here): exact across workers.
template <typename T>
inline std::atomic_ref<T> atomic_at(T *address) {
  return std::atomic_ref<T>(*address);
}

template <typename T, typename Pick>
inline T atomic_update(T *address, T value, Pick pick) {
  std::atomic_ref<T> target(*address);
  T old = target.load();
  while (!target.compare_exchange_weak(old, pick(old, value))) {
  }
  return old;
}

}  // namespace fvmt_emu

#define FVMT_LAUNCH(grid, block, shared_bytes, stream, ...) \
  ::fvmt_emu::make_launch((grid), (block), (shared_bytes), (stream), (__VA_ARGS__), #__VA_ARGS__)
#define FVMT_DYNAMIC_SHARED(type, name) type *const name = static_cast<type *>(::fvmt_emu::dynamic_shared_memory())

// ---------------------------------------------------------------------------------------
// Block and warp synchronisation.
inline void __syncthreads() { fvmt_emu::block_barrier(0); }
inline int __syncthreads_count(int predicate) { return fvmt_emu::block_barrier(predicate); }
inline int __syncthreads_and(int predicate) {
  return fvmt_emu::block_barrier(predicate) == static_cast<int>(blockDim.x * blockDim.y * blockDim.z);
}
inline int __syncthreads_or(int predicate) { return fvmt_emu::block_barrier(predicate) > 0; }

inline void __syncwarp(unsigned mask = 0xFFFFFFFFu) {
  fvmt_emu::warp_exchange(fvmt_emu::WarpOp::kSync, mask, 0, 0, warpSize);
}
inline unsigned __ballot_sync(unsigned mask, int predicate) {
  return static_cast<unsigned>(fvmt_emu::warp_exchange(fvmt_emu::WarpOp::kBallot, mask, predicate != 0, 0, warpSize));
}
inline int __any_sync(unsigned mask, int predicate) {
  return static_cast<int>(fvmt_emu::warp_exchange(fvmt_emu::WarpOp::kAny, mask, predicate != 0, 0, warpSize));
}
inline int __all_sync(unsigned mask, int predicate) {
  return static_cast<int>(fvmt_emu::warp_exchange(fvmt_emu::WarpOp::kAll, mask, predicate != 0, 0, warpSize));
}

// The lanes of this warp that exist and have not exited (not a sync point).
inline unsigned __activemask() { return fvmt_emu::current_worker->block.present[fvmt_emu::current_fiber->warp]; }

#define FVMT_EMU_SHUFFLES(T)                                                                       \
  inline T __shfl_sync(unsigned mask, T var, int src_lane, int width = warpSize) {                \
    return fvmt_emu::shuffle(fvmt_emu::WarpOp::kShuffleIndex, mask, var, src_lane, width);        \
  }                                                                                                \
  inline T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = warpSize) {           \
    return fvmt_emu::shuffle(fvmt_emu::WarpOp::kShuffleUp, mask, var, static_cast<int>(delta), width); \
  }                                                                                                \
  inline T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = warpSize) {         \
    return fvmt_emu::shuffle(fvmt_emu::WarpOp::kShuffleDown, mask, var, static_cast<int>(delta), width); \
  }                                                                                                \
  inline T __shfl_xor_sync(unsigned mask, T var, int lane_mask, int width = warpSize) {           \
    return fvmt_emu::shuffle(fvmt_emu::WarpOp::kShuffleXor, mask, var, lane_mask, width);         \
  }
FVMT_EMU_SHUFFLES(int)
FVMT_EMU_SHUFFLES(unsigned)
FVMT_EMU_SHUFFLES(long)
FVMT_EMU_SHUFFLES(unsigned long)
FVMT_EMU_SHUFFLES(long long)
FVMT_EMU_SHUFFLES(unsigned long long)
FVMT_EMU_SHUFFLES(float)
FVMT_EMU_SHUFFLES(double)
FVMT_EMU_SHUFFLES(__nv_bfloat16)
FVMT_EMU_SHUFFLES(__nv_bfloat162)
#undef FVMT_EMU_SHUFFLES

inline void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline void __threadfence_block() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline void __threadfence_system() { std::atomic_thread_fence(std::memory_order_seq_cst); }

// ---------------------------------------------------------------------------------------
// Atomics.
#define FVMT_EMU_ATOMIC_ARITHMETIC(T)                                                            \
  inline T atomicAdd(T *address, T value) { return fvmt_emu::atomic_at(address).fetch_add(value); } \
  inline T atomicExch(T *address, T value) { return fvmt_emu::atomic_at(address).exchange(value); }
FVMT_EMU_ATOMIC_ARITHMETIC(int)
FVMT_EMU_ATOMIC_ARITHMETIC(unsigned)
FVMT_EMU_ATOMIC_ARITHMETIC(unsigned long long)
FVMT_EMU_ATOMIC_ARITHMETIC(float)
#undef FVMT_EMU_ATOMIC_ARITHMETIC
inline double atomicAdd(double *address, double value) { return fvmt_emu::atomic_at(address).fetch_add(value); }
inline int atomicSub(int *address, int value) { return fvmt_emu::atomic_at(address).fetch_sub(value); }
inline unsigned atomicSub(unsigned *address, unsigned value) { return fvmt_emu::atomic_at(address).fetch_sub(value); }

#define FVMT_EMU_ATOMIC_ORDER(T)                                                                          \
  inline T atomicMin(T *address, T value) {                                                               \
    return fvmt_emu::atomic_update(address, value, [](T a, T b) { return b < a ? b : a; });               \
  }                                                                                                        \
  inline T atomicMax(T *address, T value) {                                                               \
    return fvmt_emu::atomic_update(address, value, [](T a, T b) { return b > a ? b : a; });               \
  }
FVMT_EMU_ATOMIC_ORDER(int)
FVMT_EMU_ATOMIC_ORDER(unsigned)
FVMT_EMU_ATOMIC_ORDER(long long)
FVMT_EMU_ATOMIC_ORDER(unsigned long long)
#undef FVMT_EMU_ATOMIC_ORDER

#define FVMT_EMU_ATOMIC_BITS(T)                                                                          \
  inline T atomicCAS(T *address, T compare, T value) {                                                   \
    fvmt_emu::atomic_at(address).compare_exchange_strong(compare, value);                                \
    return compare;                                                                                       \
  }                                                                                                       \
  inline T atomicAnd(T *address, T value) { return fvmt_emu::atomic_at(address).fetch_and(value); }     \
  inline T atomicOr(T *address, T value) { return fvmt_emu::atomic_at(address).fetch_or(value); }       \
  inline T atomicXor(T *address, T value) { return fvmt_emu::atomic_at(address).fetch_xor(value); }
FVMT_EMU_ATOMIC_BITS(int)
FVMT_EMU_ATOMIC_BITS(unsigned)
FVMT_EMU_ATOMIC_BITS(unsigned long long)
#undef FVMT_EMU_ATOMIC_BITS

// ---------------------------------------------------------------------------------------
// Host runtime on host memory.
inline cudaError_t cudaGetLastError() {
  fvmt_emu::ErrorState &state = fvmt_emu::error_state();
  return std::exchange(state.last, cudaSuccess);
}
inline cudaError_t cudaPeekAtLastError() { return fvmt_emu::error_state().last; }

// CUDA's sentence; for the error this thread recorded last, with what the emulation saw.
inline const char *cudaGetErrorString(cudaError_t code) {
  const fvmt_emu::ErrorState &state = fvmt_emu::error_state();
  return code != cudaSuccess && code == state.described ? state.description.c_str() : fvmt_emu::error_text(code);
}
inline const char *cudaGetErrorName(cudaError_t code) { return fvmt_emu::error_name(code); }

inline cudaError_t cudaDeviceSynchronize() {
  const cudaError_t pending = fvmt_emu::error_state().last;
  return fvmt_emu::is_execution_error(pending) ? pending : cudaSuccess;
}
inline cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaDeviceSynchronize(); }

inline cudaError_t cudaGetDeviceCount(int *count) {
  if (count == nullptr) return fvmt_emu::record_error(cudaErrorInvalidValue, "cudaGetDeviceCount: count is NULL");
  *count = 1;
  return cudaSuccess;
}

inline cudaError_t cudaMalloc(void **pointer, size_t bytes) {
  if (pointer == nullptr) return fvmt_emu::record_error(cudaErrorInvalidValue, "cudaMalloc: pointer is NULL");
  *pointer = nullptr;
  if (bytes == 0) return cudaSuccess;
  *pointer = std::aligned_alloc(256, (bytes + 255) / 256 * 256);  // cudaMalloc's alignment
  if (*pointer == nullptr)
    return fvmt_emu::record_error(cudaErrorMemoryAllocation, "cudaMalloc of " + std::to_string(bytes) + " bytes");
  return cudaSuccess;
}
template <typename T>
inline cudaError_t cudaMalloc(T **pointer, size_t bytes) {
  return cudaMalloc(reinterpret_cast<void **>(pointer), bytes);
}
inline cudaError_t cudaFree(void *pointer) {
  std::free(pointer);
  return cudaSuccess;
}
inline cudaError_t cudaMallocAsync(void **pointer, size_t bytes, cudaStream_t) { return cudaMalloc(pointer, bytes); }
template <typename T>
inline cudaError_t cudaMallocAsync(T **pointer, size_t bytes, cudaStream_t stream) {
  return cudaMallocAsync(reinterpret_cast<void **>(pointer), bytes, stream);
}
inline cudaError_t cudaFreeAsync(void *pointer, cudaStream_t) { return cudaFree(pointer); }

inline cudaError_t cudaMemcpy(void *destination, const void *source, size_t bytes, cudaMemcpyKind kind) {
  if (kind < cudaMemcpyHostToHost || kind > cudaMemcpyDefault)
    return fvmt_emu::record_error(cudaErrorInvalidMemcpyDirection, "cudaMemcpy: kind " + std::to_string(kind));
  if (bytes == 0) return cudaSuccess;
  if (destination == nullptr || source == nullptr)
    return fvmt_emu::record_error(cudaErrorInvalidValue, "cudaMemcpy: NULL pointer");
  std::memmove(destination, source, bytes);
  return cudaSuccess;
}
inline cudaError_t cudaMemcpyAsync(void *destination, const void *source, size_t bytes, cudaMemcpyKind kind,
                                   cudaStream_t = nullptr) {
  return cudaMemcpy(destination, source, bytes, kind);
}

inline cudaError_t cudaMemset(void *pointer, int value, size_t bytes) {
  if (bytes == 0) return cudaSuccess;
  if (pointer == nullptr) return fvmt_emu::record_error(cudaErrorInvalidValue, "cudaMemset: NULL pointer");
  std::memset(pointer, value, bytes);
  return cudaSuccess;
}
inline cudaError_t cudaMemsetAsync(void *pointer, int value, size_t bytes, cudaStream_t = nullptr) {
  return cudaMemset(pointer, value, bytes);
}

template <typename T>
inline cudaError_t cudaFuncSetAttribute(T *kernel, cudaFuncAttribute attribute, int value) {
  static_assert(std::is_function_v<T>, "cudaFuncSetAttribute takes a kernel");
  switch (attribute) {
    case cudaFuncAttributeMaxDynamicSharedMemorySize:
      if (value < 0 || value > fvmt_emu::kMaxSharedOptIn)
        return fvmt_emu::record_error(cudaErrorInvalidValue,
                                      "cudaFuncAttributeMaxDynamicSharedMemorySize " + std::to_string(value) +
                                          " is not in [0, " + std::to_string(fvmt_emu::kMaxSharedOptIn) + "]");
      fvmt_emu::KernelAttributes::instance().set_shared_limit(reinterpret_cast<const void *>(kernel),
                                                              static_cast<size_t>(value));
      return cudaSuccess;
    case cudaFuncAttributePreferredSharedMemoryCarveout:  // a hint: checked, without effect here
      if (value < -1 || value > 100)
        return fvmt_emu::record_error(cudaErrorInvalidValue, "cudaFuncAttributePreferredSharedMemoryCarveout " +
                                                                 std::to_string(value) + " is not in [-1, 100]");
      return cudaSuccess;
  }
  return fvmt_emu::record_error(cudaErrorInvalidValue, "cudaFuncSetAttribute: attribute " + std::to_string(attribute));
}
