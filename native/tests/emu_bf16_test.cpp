// bf16 conversions (round to nearest even with ties both ways, NaN, infinities, overflow,
// denormals) and the device math spellings (__float2int_*, rsqrtf, bit casts, __popc/__ffs/
// __clz, min/max overloads), all evaluated inside a kernel and compared with bit patterns
// worked out by hand from IEEE-754.
#include <cmath>

#include "emu_check.hpp"

using emu_test::DeviceArray;

namespace {

struct Bf16Case {
  unsigned input;         // float bits
  unsigned short output;  // expected bf16 bits
  const char *what;
};

const Bf16Case kBf16Cases[] = {
    {0x3F800000u, 0x3F80, "1.0 exact"},
    {0x3F808000u, 0x3F80, "tie below an even mantissa stays"},
    {0x3F818000u, 0x3F82, "tie above an odd mantissa rounds up to even"},
    {0x3F808001u, 0x3F81, "just above a tie rounds up"},
    {0x3F807FFFu, 0x3F80, "just below a tie rounds down"},
    {0xBF808000u, 0xBF80, "negative tie to even"},
    {0xBF818000u, 0xBF82, "negative tie rounds away to even"},
    {0x7F800000u, 0x7F80, "+inf"},
    {0xFF800000u, 0xFF80, "-inf"},
    {0x7F7FFFFFu, 0x7F80, "FLT_MAX overflows to +inf"},
    {0x7F7F7FFFu, 0x7F7F, "largest value below the overflow tie"},
    {0x7FC00000u, 0x7FFF, "quiet NaN -> canonical NaN"},
    {0x7F800001u, 0x7FFF, "signalling NaN with a low payload stays NaN, not inf"},
    {0xFFC12345u, 0x7FFF, "negative NaN -> canonical NaN"},
    {0x00010000u, 0x0001, "smallest bf16 denormal, exact"},
    {0x00018000u, 0x0002, "denormal tie rounds to even"},
    {0x00008000u, 0x0000, "denormal tie to zero (even)"},
    {0x00008001u, 0x0001, "denormal above a tie"},
    {0x00000001u, 0x0000, "smallest float denormal underflows to +0"},
    {0x80000001u, 0x8000, "negative tiny underflows to -0"},
    {0x007FFFFFu, 0x0080, "largest float denormal rounds up to the smallest normal"},
};
constexpr int kBf16Count = sizeof(kBf16Cases) / sizeof(kBf16Cases[0]);

__global__ void convert(const float *inputs, unsigned short *bits, float *back, int n) {
  const int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (i >= n) return;
  const __nv_bfloat16 h = __float2bfloat16(inputs[i]);
  bits[i] = __bfloat16_as_ushort(h);
  back[i] = __bfloat162float(h);
  // The _rn spelling and the constructor must agree with __float2bfloat16.
  if (__bfloat16_as_ushort(__float2bfloat16_rn(inputs[i])) != bits[i]) bits[i] ^= 0x5555;
}

__global__ void pairs(const float *inputs, float *out, int n) {
  const int i = static_cast<int>(threadIdx.x);
  if (2 * i + 1 >= n) return;
  const __nv_bfloat162 packed = __floats2bfloat162_rn(inputs[2 * i], inputs[2 * i + 1]);
  const float2 unpacked = __bfloat1622float2(packed);
  out[2 * i] = unpacked.x;
  out[2 * i + 1] = unpacked.y;
}

constexpr int kMathSlots = 32;

__global__ void math(float *f, int *k, double *d) {
  k[0] = __float2int_rn(2.5f);
  k[1] = __float2int_rn(3.5f);
  k[2] = __float2int_rn(-2.5f);
  k[3] = __float2int_rd(-1.5f);
  k[4] = __float2int_rz(-1.7f);
  k[5] = __float2int_rn(1e10f);
  k[6] = __float2int_rn(-1e10f);
  k[7] = __float2int_rn(nanf(""));
  k[8] = __popc(0xF0F0F0F1u);
  k[9] = __ffs(0);
  k[10] = __ffs(0x00010000);
  k[11] = __clz(1);
  k[12] = __clz(0);
  k[13] = __float_as_int(1.0f);
  k[14] = static_cast<int>(__float_as_uint(-2.0f));
  k[15] = min(3, -4);
  k[16] = max(3, -4);
  k[17] = static_cast<int>(min(3u, -1));  // mixed signedness compares as unsigned: -1 is huge
  k[18] = static_cast<int>(max(3u, -1));
  k[19] = static_cast<int>(min(7L, -8L));
  k[20] = static_cast<int>(max(7LL, -8LL));
  k[21] = static_cast<int>(min(5ull, 6ull));
  k[22] = isfinite(INFINITY) ? 1 : 0;
  k[23] = isnan(nanf("")) ? 1 : 0;
  k[24] = isinf(-INFINITY) ? 1 : 0;
  f[0] = rsqrtf(16.0f);
  f[1] = __fdividef(1.0f, 8.0f);
  f[2] = __frcp_rn(4.0f);
  f[3] = __fmaf_rn(2.0f, 3.0f, 0.5f);
  f[4] = __int2float_rn(16777217);  // 2^24 + 1 rounds to even: 2^24
  f[5] = __int_as_float(0x40490FDB);
  f[6] = __uint_as_float(0xBF800000u);
  f[7] = min(1.5f, -2.5f);
  f[8] = max(1.5f, -2.5f);
  f[9] = __expf(0.0f) + __logf(1.0f) + exp2f(3.0f);
  f[10] = fmaxf(nanf(""), 2.0f);
  f[11] = __ldg(f + 9);
  d[0] = min(2.0f, 3.0);
  d[1] = max(-1.0, 0.5f);
  d[2] = max(0.25, 0.5);
  const float2 two = make_float2(1.0f, 2.0f);
  const float4 four = make_float4(3.0f, 4.0f, 5.0f, 6.0f);
  f[12] = two.x + two.y + four.x + four.y + four.z + four.w;
}

}  // namespace

int main() {
  std::vector<float> inputs(kBf16Count);
  for (int c = 0; c < kBf16Count; ++c) std::memcpy(&inputs[c], &kBf16Cases[c].input, 4);
  DeviceArray<float> device_inputs(inputs), back(kBf16Count);
  DeviceArray<unsigned short> bits(kBf16Count);
  FVMT_LAUNCH(1, 32, 0, 0, convert)(device_inputs.get(), bits.get(), back.get(), kBf16Count);
  CHECK_LAST_ERROR(cudaSuccess, "convert");
  const std::vector<unsigned short> got = bits.download();
  const std::vector<float> got_back = back.download();
  for (int c = 0; c < kBf16Count; ++c) {
    const Bf16Case &k = kBf16Cases[c];
    CHECK(got[c] == k.output, "%s: float %08x -> bf16 %04x, expected %04x", k.what, k.input, got[c], k.output);
    const unsigned back_bits = static_cast<unsigned>(emu_test::bits_of(got_back[c]));
    CHECK(back_bits == static_cast<unsigned>(k.output) << 16, "%s: bf16 %04x -> float %08x", k.what, k.output,
          back_bits);
    if (std::isnan(inputs[c])) CHECK(std::isnan(got_back[c]), "%s: NaN lost", k.what);
  }

  DeviceArray<float> paired(kBf16Count - 1);
  FVMT_LAUNCH(1, 32, 0, 0, pairs)(device_inputs.get(), paired.get(), kBf16Count - 1);
  CHECK_LAST_ERROR(cudaSuccess, "pairs");
  const std::vector<float> got_pairs = paired.download();
  for (int c = 0; c < kBf16Count - 1; ++c)
    CHECK(static_cast<unsigned>(emu_test::bits_of(got_pairs[c])) == static_cast<unsigned>(kBf16Cases[c].output) << 16,
          "bf162 %s: %08x", kBf16Cases[c].what, static_cast<unsigned>(emu_test::bits_of(got_pairs[c])));

  DeviceArray<float> f(kMathSlots);
  DeviceArray<int> k(kMathSlots);
  DeviceArray<double> d(kMathSlots);
  f.fill_bytes(0);
  FVMT_LAUNCH(1, 1, 0, 0, math)(f.get(), k.get(), d.get());
  CHECK_LAST_ERROR(cudaSuccess, "math");
  const std::vector<int> ki = k.download();
  const std::vector<float> fi = f.download();
  const std::vector<double> di = d.download();
  const int expected_k[] = {2, 4, -2, -2, -1, INT32_MAX, INT32_MIN, 0, 17, 0, 17, 31, 32, 0x3F800000,
                            static_cast<int>(0xC0000000u), -4, 3, 3, -1, -8, 7, 5, 0, 1, 1};
  for (int s = 0; s < static_cast<int>(sizeof expected_k / sizeof expected_k[0]); ++s)
    CHECK(ki[s] == expected_k[s], "int slot %d: got %d expected %d", s, ki[s], expected_k[s]);
  const float expected_f[] = {0.25f, 0.125f, 0.25f, 6.5f, 16777216.0f, 3.14159274f, -1.0f, -2.5f, 1.5f, 9.0f,
                              2.0f, 9.0f, 21.0f};
  for (int s = 0; s < static_cast<int>(sizeof expected_f / sizeof expected_f[0]); ++s)
    CHECK(fi[s] == expected_f[s], "float slot %d: got %.9g expected %.9g", s, fi[s], expected_f[s]);
  CHECK(di[0] == 2.0 && di[1] == 0.5 && di[2] == 0.5, "double min/max: %g %g %g", di[0], di[1], di[2]);
  return emu_test::finish("emu_bf16_test");
}
