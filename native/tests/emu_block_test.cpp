// Block-level emulation: the index built-ins over 1D/2D/3D blocks and grids, a block
// reduction through static __shared__ + __syncthreads for 1..1024 threads, a static
// __shared__ struct in a template kernel launched by a template-id with a comma, and
// __syncthreads_count/_and/_or.
#include "emu_check.hpp"

using emu_test::DeviceArray;

namespace {

struct ThreadRecord {
  unsigned thread[3], block[3], block_dim[3], grid_dim[3];
};

// Each thread writes what it sees at its global linear position.
__global__ void record_indices(ThreadRecord *records) {
  const unsigned block_linear = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
  const unsigned thread_linear = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
  ThreadRecord &r = records[block_linear * (blockDim.x * blockDim.y * blockDim.z) + thread_linear];
  r = {{threadIdx.x, threadIdx.y, threadIdx.z},
       {blockIdx.x, blockIdx.y, blockIdx.z},
       {blockDim.x, blockDim.y, blockDim.z},
       {gridDim.x, gridDim.y, gridDim.z}};
}

// sums[block] = sum of values[block * threads + t] over the block's threads, by a shared
// memory tree that works for any thread count (pairs t with t + stride while both exist).
template <typename V, int kMaxThreads>
__global__ void block_sum(const V *values, V *sums) {
  __shared__ V partial[kMaxThreads];
  const int threads = static_cast<int>(blockDim.x * blockDim.y * blockDim.z);
  const int t = static_cast<int>(threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z));
  const int block = static_cast<int>(blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z));
  partial[t] = values[block * threads + t];
  __syncthreads();
  int span = 1;
  while (span < threads) span *= 2;
  for (int stride = span / 2; stride > 0; stride /= 2) {
    if (t < stride && t + stride < threads) partial[t] += partial[t + stride];
    __syncthreads();
  }
  if (t == 0) sums[block] = partial[0];
}

struct Histogram {
  int bins[4];
  int total;
};

// A static __shared__ struct: bins counted by one thread per bin after a barrier.
template <int kThreads, int kBins>
__global__ void shared_struct_histogram(const int *values, int *bins_out) {
  __shared__ Histogram histogram;
  __shared__ int staged[kThreads];
  staged[threadIdx.x] = values[blockIdx.x * kThreads + threadIdx.x];
  __syncthreads();
  if (threadIdx.x < kBins) {
    int count = 0;
    for (int i = 0; i < kThreads; ++i) count += staged[i] % kBins == static_cast<int>(threadIdx.x);
    histogram.bins[threadIdx.x] = count;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    histogram.total = 0;
    for (int b = 0; b < kBins; ++b) histogram.total += histogram.bins[b];
  }
  __syncthreads();
  if (threadIdx.x < kBins) bins_out[blockIdx.x * (kBins + 1) + threadIdx.x] = histogram.bins[threadIdx.x];
  if (threadIdx.x == 0) bins_out[blockIdx.x * (kBins + 1) + kBins] = histogram.total;
}

// __syncthreads_count/_and/_or over predicates with known answers.
__global__ void barrier_votes(int *out) {
  const int t = static_cast<int>(threadIdx.x);
  const int n = static_cast<int>(blockDim.x);
  const int count = __syncthreads_count(t % 3 == 0);
  const int all_small = __syncthreads_and(t < n);
  const int all_not_five = __syncthreads_and(t != 5);
  const int any_last = __syncthreads_or(t == n - 1);
  const int any_beyond = __syncthreads_or(t >= n);
  int *row = out + 5 * (blockIdx.x * n + t);
  row[0] = count;
  row[1] = all_small;
  row[2] = all_not_five;
  row[3] = any_last;
  row[4] = any_beyond;
}

void check_indices(dim3 grid, dim3 block) {
  const size_t threads = size_t{block.x} * block.y * block.z;
  const size_t total = size_t{grid.x} * grid.y * grid.z * threads;
  DeviceArray<ThreadRecord> records(total);
  records.fill_bytes(0xFF);
  FVMT_LAUNCH(grid, block, 0, 0, record_indices)(records.get());
  CHECK_LAST_ERROR(cudaSuccess, "record_indices");
  const std::vector<ThreadRecord> got = records.download();
  int wrong = 0;
  for (size_t i = 0; i < total; ++i) {
    const size_t b = i / threads, t = i % threads;
    const unsigned expect_thread[3] = {static_cast<unsigned>(t % block.x), static_cast<unsigned>(t / block.x % block.y),
                                       static_cast<unsigned>(t / (size_t{block.x} * block.y))};
    const unsigned expect_block[3] = {static_cast<unsigned>(b % grid.x), static_cast<unsigned>(b / grid.x % grid.y),
                                      static_cast<unsigned>(b / (size_t{grid.x} * grid.y))};
    const ThreadRecord &r = got[i];
    for (int d = 0; d < 3; ++d) {
      const unsigned block_dim[3] = {block.x, block.y, block.z}, grid_dim[3] = {grid.x, grid.y, grid.z};
      if (r.thread[d] != expect_thread[d] || r.block[d] != expect_block[d] || r.block_dim[d] != block_dim[d] ||
          r.grid_dim[d] != grid_dim[d])
        ++wrong;
    }
  }
  CHECK(wrong == 0, "grid (%u,%u,%u) block (%u,%u,%u): %d wrong index components", grid.x, grid.y, grid.z, block.x,
        block.y, block.z, wrong);
}

template <typename V>
void check_block_sum(dim3 grid, dim3 block) {
  const int threads = static_cast<int>(block.x * block.y * block.z);
  const int blocks = static_cast<int>(grid.x * grid.y * grid.z);
  std::vector<V> values(static_cast<size_t>(blocks) * threads);
  std::vector<V> expected(blocks, V(0));
  for (int b = 0; b < blocks; ++b)
    for (int t = 0; t < threads; ++t) {
      const V v = static_cast<V>(1000 * b + 3 * t + 1);  // integers: every order sums exactly
      values[static_cast<size_t>(b) * threads + t] = v;
      expected[b] += v;
    }
  DeviceArray<V> device_values(values), sums(blocks);
  FVMT_LAUNCH(grid, block, 0, 0, block_sum<V, 1024>)(device_values.get(), sums.get());
  CHECK_LAST_ERROR(cudaSuccess, "block_sum");
  const std::vector<V> got = sums.download();
  for (int b = 0; b < blocks; ++b)
    CHECK(got[b] == expected[b], "block_sum grid (%u,%u,%u) block (%u,%u,%u): block %d got %.17g expected %.17g",
          grid.x, grid.y, grid.z, block.x, block.y, block.z, b, static_cast<double>(got[b]),
          static_cast<double>(expected[b]));
}

void check_shared_struct() {
  constexpr int kThreads = 96, kBins = 4, kBlocks = 5;
  std::vector<int> values(kThreads * kBlocks);
  for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<int>((i * 7 + i / kThreads) % 13);
  DeviceArray<int> device_values(values), bins(kBlocks * (kBins + 1));
  FVMT_LAUNCH(kBlocks, kThreads, 0, 0, shared_struct_histogram<kThreads, kBins>)(device_values.get(), bins.get());
  CHECK_LAST_ERROR(cudaSuccess, "shared_struct_histogram");
  const std::vector<int> got = bins.download();
  for (int b = 0; b < kBlocks; ++b) {
    int expected[kBins] = {};
    for (int t = 0; t < kThreads; ++t) ++expected[values[b * kThreads + t] % kBins];
    for (int k = 0; k < kBins; ++k)
      CHECK(got[b * (kBins + 1) + k] == expected[k], "histogram block %d bin %d: %d vs %d", b, k,
            got[b * (kBins + 1) + k], expected[k]);
    CHECK(got[b * (kBins + 1) + kBins] == kThreads, "histogram block %d total %d", b, got[b * (kBins + 1) + kBins]);
  }
}

void check_barrier_votes(int threads) {
  constexpr int kBlocks = 3;
  DeviceArray<int> out(static_cast<size_t>(5) * kBlocks * threads);
  FVMT_LAUNCH(kBlocks, threads, 0, 0, barrier_votes)(out.get());
  CHECK_LAST_ERROR(cudaSuccess, "barrier_votes");
  const std::vector<int> got = out.download();
  const int multiples_of_three = (threads + 2) / 3;
  for (int i = 0; i < kBlocks * threads; ++i) {
    const int *row = &got[5 * static_cast<size_t>(i)];
    CHECK(row[0] == multiples_of_three && row[1] == 1 && row[2] == (threads <= 5 ? 1 : 0) && row[3] == 1 &&
              row[4] == 0,
          "%d threads, thread %d: count %d and %d and %d or %d or %d", threads, i, row[0], row[1], row[2], row[3],
          row[4]);
  }
}

}  // namespace

int main() {
  check_indices(dim3(1), dim3(1));
  check_indices(dim3(3), dim3(33));
  check_indices(dim3(2), dim3(1024));
  check_indices(dim3(3, 2), dim3(8, 4));
  check_indices(dim3(2, 3, 4), dim3(4, 3, 5));
  check_indices(dim3(1, 1, 3), dim3(1, 2, 64));

  check_block_sum<int>(dim3(4), dim3(1));
  check_block_sum<int>(dim3(5), dim3(33));
  check_block_sum<int>(dim3(3), dim3(1024));
  check_block_sum<int>(dim3(2, 3), dim3(16, 16));
  check_block_sum<float>(dim3(2, 2, 2), dim3(5, 7, 3));
  check_block_sum<double>(dim3(7, 1, 2), dim3(32, 1, 32));

  check_shared_struct();

  check_barrier_votes(1);
  check_barrier_votes(5);
  check_barrier_votes(33);
  check_barrier_votes(1024);
  return emu_test::finish("emu_block_test");
}
