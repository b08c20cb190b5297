// Scalar formulas of the DiT ops (fastvmt.h, "DiT ops") that the cpu loops and the cuda
// kernels evaluate alike: written once, compiled for the host by g++ and for host and device
// by nvcc, so both builds round the same expressions the same way.
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define FVMT_HOST_DEVICE __host__ __device__
#else
#define FVMT_HOST_DEVICE
#endif

namespace fvmt {

// GELU, tanh approximation: u = sqrt(2/pi) (x + 0.044715 x^3).
inline constexpr float kSqrt2OverPi = 0.7978845608028654f;
inline constexpr float kGeluCubic = 0.044715f;

// 3D RoPE: the head_dim / 2 channel pairs of a head split into n_f frame, n_r row and
// n_c column frequencies, n_r = n_c = (head_dim / 2) / 3 (22 / 21 / 21 at head_dim 128).
struct RopePairs {
  int32_t frame, row, col;
};

FVMT_HOST_DEVICE inline RopePairs rope_pairs(int32_t head_dim) {
  const int32_t half = head_dim / 2, row = half / 3;
  return {half - 2 * row, row, row};
}

// Pair k of an axis with `pairs` pairs turns by position * theta^(-2k / (2 pairs)), in double.
FVMT_HOST_DEVICE inline double rope_angle(int32_t position, int32_t k, int32_t pairs, double theta) {
  return position * pow(theta, -2.0 * k / (2.0 * pairs));
}

// Sinusoidal timestep embedding: w_m = 10000^(-m / half), in double.
FVMT_HOST_DEVICE inline double timestep_frequency(int32_t m, int32_t half) {
  return pow(10000.0, -static_cast<double>(m) / half);
}

}  // namespace fvmt
