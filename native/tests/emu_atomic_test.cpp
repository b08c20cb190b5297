// Atomics across many blocks (run by ctest with three workers, so across OS threads):
// every thread of 512 blocks x 256 threads updates the same few words. Float and double
// addends are exactly representable and so are all partial sums, so every order gives the
// same exact total.
#include <climits>

#include "emu_check.hpp"

using emu_test::DeviceArray;

namespace {

constexpr int kBlocks = 512, kThreads = 256, kTotal = kBlocks * kThreads;

struct Counters {
  int count;
  unsigned ucount;
  unsigned long long wide;
  float half_sum;
  double quarter_sum;
  int down;
  unsigned udown;
  int maximum, minimum;
  unsigned umaximum, uminimum;
  long long lmaximum, lminimum;
  unsigned long long wmaximum, wminimum;
  int cas_count;
  unsigned long long cas_wide;
  unsigned or_bits, and_bits, xor_bits;
  int iand, ior, ixor;
  unsigned long long wor, wand, wxor;
  int exchanged;
  float fexchanged;
  unsigned uexchanged;
  unsigned long long wexchanged;
};

__global__ void hammer(Counters *c, int *exchange_seen) {
  const int g = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  atomicAdd(&c->count, 1);
  atomicAdd(&c->ucount, 2u);
  atomicAdd(&c->wide, 1ull << 33);
  atomicAdd(&c->half_sum, 0.5f);
  atomicAdd(&c->quarter_sum, 0.25);
  atomicSub(&c->down, 3);
  atomicSub(&c->udown, 1u);
  const int spread = (g * 7919) % kTotal - kTotal / 2;  // a permutation of [-kTotal/2, kTotal/2)
  atomicMax(&c->maximum, spread);
  atomicMin(&c->minimum, spread);
  atomicMax(&c->umaximum, static_cast<unsigned>(g));
  atomicMin(&c->uminimum, static_cast<unsigned>(g) + 5u);
  atomicMax(&c->lmaximum, static_cast<long long>(spread) * 100000);
  atomicMin(&c->lminimum, static_cast<long long>(spread) * 100000);
  atomicMax(&c->wmaximum, static_cast<unsigned long long>(g) << 32);
  atomicMin(&c->wminimum, (static_cast<unsigned long long>(g) << 32) + 9);

  int seen = c->cas_count, assumed;  // an increment written as a CAS loop
  do {
    assumed = seen;
    seen = atomicCAS(&c->cas_count, assumed, assumed + 1);
  } while (seen != assumed);
  unsigned long long wide_seen = c->cas_wide, wide_assumed;
  do {
    wide_assumed = wide_seen;
    wide_seen = atomicCAS(&c->cas_wide, wide_assumed, wide_assumed + 3);
  } while (wide_seen != wide_assumed);

  atomicOr(&c->or_bits, 1u << (g % 32));
  atomicAnd(&c->and_bits, ~(1u << (g % 31)));
  atomicXor(&c->xor_bits, static_cast<unsigned>(g));
  atomicAnd(&c->iand, ~(1 << (g % 29)));
  atomicOr(&c->ior, 1 << (g % 30));
  atomicXor(&c->ixor, g * 3);
  atomicOr(&c->wor, 1ull << (g % 64));
  atomicAnd(&c->wand, ~(1ull << (g % 63)));
  atomicXor(&c->wxor, static_cast<unsigned long long>(g) << 20);

  // Each thread swaps its id in; the ids seen (plus the final one) are then all ids + the initial -1.
  exchange_seen[g] = atomicExch(&c->exchanged, g);
  atomicExch(&c->fexchanged, 1.5f);
  atomicExch(&c->uexchanged, 7u);
  atomicExch(&c->wexchanged, 1ull << 40);
}

}  // namespace

int main() {
  Counters initial{};
  initial.maximum = INT_MIN;
  initial.minimum = INT_MAX;
  initial.uminimum = UINT_MAX;
  initial.lmaximum = LLONG_MIN;
  initial.lminimum = LLONG_MAX;
  initial.wminimum = ULLONG_MAX;
  initial.and_bits = 0xFFFFFFFFu;
  initial.iand = -1;
  initial.wand = ~0ull;
  initial.exchanged = -1;
  initial.udown = kTotal;
  DeviceArray<Counters> counters(std::vector<Counters>{initial});
  DeviceArray<int> seen(kTotal);
  FVMT_LAUNCH(kBlocks, kThreads, 0, 0, hammer)(counters.get(), seen.get());
  CHECK_LAST_ERROR(cudaSuccess, "hammer");
  const Counters c = counters.download()[0];

  unsigned xor_expected = 0;
  int ixor_expected = 0;
  unsigned long long wxor_expected = 0;
  for (int g = 0; g < kTotal; ++g) {
    xor_expected ^= static_cast<unsigned>(g);
    ixor_expected ^= g * 3;
    wxor_expected ^= static_cast<unsigned long long>(g) << 20;
  }
  CHECK(c.count == kTotal, "int add: %d", c.count);
  CHECK(c.ucount == 2u * kTotal, "unsigned add: %u", c.ucount);
  CHECK(c.wide == static_cast<unsigned long long>(kTotal) << 33, "u64 add: %llu", c.wide);
  CHECK(c.half_sum == 0.5f * kTotal, "float add: %.9g", c.half_sum);
  CHECK(c.quarter_sum == 0.25 * kTotal, "double add: %.17g", c.quarter_sum);
  CHECK(c.down == -3 * kTotal, "int sub: %d", c.down);
  CHECK(c.udown == 0u, "unsigned sub: %u", c.udown);
  CHECK(c.maximum == kTotal / 2 - 1 && c.minimum == -kTotal / 2, "int max/min: %d %d", c.maximum, c.minimum);
  CHECK(c.umaximum == kTotal - 1u && c.uminimum == 5u, "unsigned max/min: %u %u", c.umaximum, c.uminimum);
  CHECK(c.lmaximum == (kTotal / 2 - 1) * 100000LL && c.lminimum == -(kTotal / 2) * 100000LL, "ll max/min: %lld %lld",
        c.lmaximum, c.lminimum);
  CHECK(c.wmaximum == static_cast<unsigned long long>(kTotal - 1) << 32 && c.wminimum == 9ull,
        "u64 max/min: %llx %llx", c.wmaximum, c.wminimum);
  CHECK(c.cas_count == kTotal, "int CAS loop: %d", c.cas_count);
  CHECK(c.cas_wide == 3ull * kTotal, "u64 CAS loop: %llu", c.cas_wide);
  CHECK(c.or_bits == 0xFFFFFFFFu && c.and_bits == 0x80000000u && c.xor_bits == xor_expected,
        "unsigned or/and/xor: %08x %08x %08x", c.or_bits, c.and_bits, c.xor_bits);
  CHECK(c.iand == static_cast<int>(0xE0000000u) && c.ior == 0x3FFFFFFF && c.ixor == ixor_expected,
        "int and/or/xor: %08x %08x %08x", c.iand, c.ior, c.ixor);
  CHECK(c.wor == ~0ull && c.wand == 1ull << 63 && c.wxor == wxor_expected, "u64 or/and/xor: %llx %llx %llx", c.wor,
        c.wand, c.wxor);
  CHECK(c.fexchanged == 1.5f && c.uexchanged == 7u && c.wexchanged == 1ull << 40, "exchanges: %g %u %llx",
        c.fexchanged, c.uexchanged, c.wexchanged);

  // atomicExch chains: the returned ids and the final value are each id once, plus the initial -1.
  std::vector<int> ids = seen.download();
  ids.push_back(c.exchanged);
  std::vector<int> occurrences(kTotal + 1, 0);
  for (int id : ids) ++occurrences[id + 1];
  int wrong = 0;
  for (int count : occurrences) wrong += count != 1;
  CHECK(wrong == 0, "atomicExch: %d ids not seen exactly once", wrong);
  return emu_test::finish("emu_atomic_test");
}
