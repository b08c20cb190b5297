// Warp-level emulation: shuffles (index, up, down, xor; with width < 32), reductions and
// scans built from them, ballot/any/all, __activemask, __syncwarp, sub-warp masks in
// divergent code, and 64-bit / float / bf16 shuffles. Blocks are 10 x 7 = 70 threads: two
// full warps and a partial last warp of 6 lanes, and a 2-D shape so that the lane is
// proven to come from the linear thread index. The expected values follow the CUDA
// Programming Guide's wording of each intrinsic, computed here independently of the
// emulator; where the guide says "undefined" (a source lane that does not exist) the
// emulation's documented all-ones poison is expected.
#include "emu_check.hpp"

using emu_test::DeviceArray;

namespace {

constexpr int kBlockX = 10, kBlockY = 7, kThreads = kBlockX * kBlockY, kBlocks = 2;
constexpr int kSlots = 23;
constexpr int kPoison = -1;  // all-ones bits

__host__ __device__ __forceinline__ int value_of(int block, int linear) { return 1000 * block + 3 * linear + 1; }

__global__ void warp_ops(int *out, double *doubles, unsigned long long *wides, float *floats, float *bf16s,
                         long *longs) {
  __shared__ int exchange[kThreads];
  const int t = static_cast<int>(threadIdx.x + blockDim.x * threadIdx.y);
  const int lane = t % warpSize;
  const int v = value_of(static_cast<int>(blockIdx.x), t);
  int *slot = out + (blockIdx.x * kThreads + t) * kSlots;

  const unsigned active = __ballot_sync(0xFFFFFFFFu, 1);
  const int lanes = __popc(active);
  slot[0] = lane;
  slot[1] = static_cast<int>(active);
  slot[2] = __shfl_xor_sync(active, v, 16);

  int butterfly = v;  // meaningful in full warps
  for (int offset = 16; offset > 0; offset /= 2) butterfly += __shfl_xor_sync(active, butterfly, offset);
  slot[3] = lanes == warpSize ? butterfly : 0;

  int down = v;  // guarded: works in the partial warp too
  for (int offset = 16; offset > 0; offset /= 2) {
    const int other = __shfl_down_sync(active, down, offset);
    if (lane + offset < lanes) down += other;
  }
  slot[4] = down;

  int scan = v;
  for (int offset = 1; offset < warpSize; offset *= 2) {
    const int other = __shfl_up_sync(active, scan, offset);
    if (lane >= offset) scan += other;
  }
  slot[5] = scan;

  slot[6] = __shfl_sync(active, v, 3);
  slot[7] = __shfl_sync(active, v, 5, 8);
  slot[8] = __shfl_sync(active, v, 37);

  int eighth = v;  // sums over segments of 8 lanes, full warps
  for (int offset = 4; offset > 0; offset /= 2) eighth += __shfl_xor_sync(active, eighth, offset, 8);
  slot[9] = lanes == warpSize ? eighth : 0;

  slot[10] = __shfl_down_sync(active, v, 3, 8);
  slot[11] = __shfl_up_sync(active, v, 3, 16);
  slot[12] = __shfl_xor_sync(active, v, 16, 16);

  slot[13] = static_cast<int>(__ballot_sync(active, lane % 3 == 0));
  slot[14] = __any_sync(active, lane == 5);
  slot[15] = __all_sync(active, v > 0);
  slot[16] = __all_sync(active, lane < 5);
  slot[17] = __any_sync(active, lane == 31);
  slot[18] = __popc(__ballot_sync(active, lane % 3 == 0));
  slot[19] = __ffs(static_cast<int>(__ballot_sync(active, lane >= 4)));

  // Divergent halves, each with its own mask and leader.
  if (lane < 16)
    slot[20] = __shfl_sync(0x0000FFFFu, v, 0);
  else
    slot[20] = __shfl_sync(0xFFFF0000u, v, 16);

  exchange[t] = v;
  __syncwarp();
  slot[21] = exchange[t ^ 1];
  slot[22] = static_cast<int>(__activemask());

  const int g = static_cast<int>(blockIdx.x) * kThreads + t;
  doubles[g] = __shfl_xor_sync(active, v + 0.25, 1);
  wides[g] = __shfl_down_sync(active, (static_cast<unsigned long long>(v) << 33) | static_cast<unsigned>(v), 1);
  floats[g] = __shfl_up_sync(active, 0.5f * static_cast<float>(v), 2);
  bf16s[g] = __bfloat162float(__shfl_sync(active, __float2bfloat16(static_cast<float>(v)), 0));
  longs[g] = __shfl_xor_sync(active, -5L * v, 2);
}

// Source lanes by the Programming Guide; -1 when the thread's own value is returned.
int source_down(int lane, int delta, int width) { return lane % width + delta < width ? lane + delta : -1; }
int source_up(int lane, int delta, int width) { return lane % width >= delta ? lane - delta : -1; }
int source_xor(int lane, int mask, int width) { return (lane ^ mask) / width > lane / width ? -1 : lane ^ mask; }
int source_index(int lane, int source, int width) { return lane / width * width + source % width; }

struct Warp {
  int block, base, lanes;
  int value(int lane) const { return value_of(block, base + lane); }
  // The value a shuffle returns for a source lane (-1: own), poison if it does not exist.
  int shuffled(int lane, int source) const {
    if (source < 0) return value(lane);
    return source < lanes ? value(source) : kPoison;
  }
};

}  // namespace

int main() {
  const int total = kBlocks * kThreads;
  DeviceArray<int> out(static_cast<size_t>(total) * kSlots);
  DeviceArray<double> doubles(total);
  DeviceArray<unsigned long long> wides(total);
  DeviceArray<float> floats(total), bf16s(total);
  DeviceArray<long> longs(total);
  FVMT_LAUNCH(kBlocks, dim3(kBlockX, kBlockY), 0, 0, warp_ops)
  (out.get(), doubles.get(), wides.get(), floats.get(), bf16s.get(), longs.get());
  CHECK_LAST_ERROR(cudaSuccess, "warp_ops");
  const std::vector<int> got = out.download();
  const std::vector<double> got_doubles = doubles.download();
  const std::vector<unsigned long long> got_wides = wides.download();
  const std::vector<float> got_floats = floats.download(), got_bf16s = bf16s.download();
  const std::vector<long> got_longs = longs.download();

  for (int block = 0; block < kBlocks; ++block) {
    for (int base = 0; base < kThreads; base += 32) {
      const Warp w{block, base, std::min(32, kThreads - base)};
      const bool full = w.lanes == 32;
      const unsigned present = full ? 0xFFFFFFFFu : (1u << w.lanes) - 1;
      int warp_sum = 0, thirds = 0;
      unsigned third_bits = 0;
      for (int l = 0; l < w.lanes; ++l) {
        warp_sum += w.value(l);
        if (l % 3 == 0) third_bits |= 1u << l, ++thirds;
      }
      std::vector<int> down(w.lanes);  // the guarded down-reduction, step by step
      for (int l = 0; l < w.lanes; ++l) down[l] = w.value(l);
      for (int offset = 16; offset > 0; offset /= 2) {
        std::vector<int> next = down;
        for (int l = 0; l < w.lanes; ++l)
          if (l + offset < w.lanes) next[l] += down[l + offset];
        down = next;
      }
      int prefix = 0;
      for (int l = 0; l < w.lanes; ++l) {
        const int t = base + l, g = block * kThreads + t;
        const int *slot = &got[static_cast<size_t>(g) * kSlots];
        prefix += w.value(l);
        int segment8 = 0;
        for (int k = l / 8 * 8; k < l / 8 * 8 + 8; ++k) segment8 += full ? w.value(k) : 0;
        const int expected[kSlots] = {
            l,
            static_cast<int>(present),
            w.shuffled(l, source_xor(l, 16, 32)),
            full ? warp_sum : 0,
            down[l],
            prefix,
            w.shuffled(l, source_index(l, 3, 32)),
            w.shuffled(l, source_index(l, 5, 8)),
            w.shuffled(l, source_index(l, 37, 32)),
            segment8,
            w.shuffled(l, source_down(l, 3, 8)),
            w.shuffled(l, source_up(l, 3, 16)),
            w.shuffled(l, source_xor(l, 16, 16)),
            static_cast<int>(third_bits),
            1,
            1,
            0,
            full ? 1 : 0,
            thirds,
            5,
            w.value(l < 16 ? 0 : 16),
            w.value(l ^ 1),
            static_cast<int>(present),
        };
        for (int k = 0; k < kSlots; ++k)
          CHECK(slot[k] == expected[k], "block %d thread %d (lane %d of a %d-lane warp) slot %d: got %d expected %d",
                block, t, l, w.lanes, k, slot[k], expected[k]);

        CHECK(got_doubles[g] == w.value(l ^ 1) + 0.25, "double xor: thread %d got %.17g", t, got_doubles[g]);
        const int down1 = l + 1 < 32 ? l + 1 : -1;
        const unsigned long long wide_expected =
            down1 >= w.lanes ? ~0ull
                             : (static_cast<unsigned long long>(w.value(down1 < 0 ? l : down1)) << 33) |
                                   static_cast<unsigned>(w.value(down1 < 0 ? l : down1));
        CHECK(got_wides[g] == wide_expected, "u64 down: thread %d got %llx expected %llx", t, got_wides[g],
              wide_expected);
        CHECK(got_floats[g] == 0.5f * static_cast<float>(w.value(l >= 2 ? l - 2 : l)), "float up: thread %d got %g", t,
              got_floats[g]);
        CHECK(got_bf16s[g] == __bfloat162float(__float2bfloat16(static_cast<float>(w.value(0)))),
              "bf16 broadcast: thread %d got %g", t, got_bf16s[g]);
        CHECK(got_longs[g] == ((l ^ 2) < w.lanes ? -5L * w.value(l ^ 2) : -1L), "long xor: thread %d got %ld", t,
              got_longs[g]);
      }
    }
  }
  return emu_test::finish("emu_warp_test");
}
