// Fixed-order reductions for the losses (window_loss.cu, tracking_loss.cu).
//  - block_sum: a shared-memory tree whose pairing depends only on thread indices, so a
//    sum is bit-identical from run to run (no atomics).
//  - sum_partials_kernel: the second stage of a two-stage reduction. Stage one writes one
//    partial per block to the workspace; one block of kBlock threads then adds them in a
//    fixed order (strided per thread, then block_sum), in double, and writes
//    factor * sum as the fp32 loss.
#pragma once

#include <cstdint>

#include "portable.cuh"

namespace fvmt::reduce {

constexpr int kBlock = 256;

// The sum of `value` over the block's kBlock threads; every thread gets it. `scratch` holds
// kBlock values; the block must not be using it.
template <typename V>
__device__ V block_sum(V value, V *scratch) {
  scratch[threadIdx.x] = value;
  __syncthreads();
  for (int stride = kBlock / 2; stride > 0; stride /= 2) {
    if (static_cast<int>(threadIdx.x) < stride) scratch[threadIdx.x] += scratch[threadIdx.x + stride];
    __syncthreads();
  }
  const V total = scratch[0];
  __syncthreads();
  return total;
}

// *result = factor * sum(partials[0, count)), accumulated in Sum (double), launched as one
// block of kBlock threads. A template, so that every .cu file including this header may
// instantiate it.
template <typename Sum>
__global__ void __launch_bounds__(kBlock)
    sum_partials_kernel(const float *__restrict__ partials, int64_t count, Sum factor, float *__restrict__ result) {
  __shared__ Sum scratch[kBlock];
  Sum sum = 0;
  for (int64_t e = threadIdx.x; e < count; e += kBlock) sum += partials[e];
  const Sum total = block_sum(sum, scratch);
  if (threadIdx.x == 0) *result = static_cast<float>(total * factor);
}

}  // namespace fvmt::reduce
