// Patchify / unpatchify, CUDA (fastvmt.h, "DiT ops"; Wan2.1 uses 1 x 2 x 2 patches): a
// permutation between
//   latent [channels, frames, height, width]  and
//   tokens [(frames/pt) (height/ph) (width/pw), channels pt ph pw],
// token (fi * (height/ph) + ri) * (width/pw) + ci holding latent[ch, fi pt + a, ri ph + b,
// ci pw + e] at feature
//   CHANNEL_FIRST  ((ch * pt + a) * ph + b) * pw + e   (Conv3d weight order)
//   CHANNEL_LAST   ((a * ph + b) * pw + e) * channels + ch   (Wan's unpatchify)
// unpatchify is the inverse map (and the gradient of patchify); both WRITE.
//
// permute_kernel: a grid-stride loop over the OUTPUT in its own order (token order for
// patchify, latent order for unpatchify), so the writes are coalesced and the reads gather
// through L2 (a patch row of the input is a few KiB). Each output element is written exactly
// once, by one thread. Indices are int32 when the tensor has fewer than 2^31 elements (Wan's
// latent has 2.1 M), so the index arithmetic avoids 64-bit division. The whole op moves a few
// MiB once per DiT call.
#include "entry.cuh"
#include "dit_checks.hpp"

namespace fvmt {
namespace {

constexpr int kBlock = 256;
constexpr int64_t kMaxBlocks = 4096;

// Token-array and latent-array offsets of one element, from its output-order index.
template <typename Index, bool kToTokens>
__device__ __forceinline__ void locate(const Patches &p, Index e, Index &token_at, Index &latent_at) {
  const Index grid_h = p.height / p.ph, grid_w = p.width / p.pw;
  const Index features = static_cast<Index>(p.channels) * p.pt * p.ph * p.pw;
  Index ch, a, b, x, fi, ri, ci;
  if constexpr (kToTokens) {
    const Index token = e / features, feature = e - token * features;
    ci = token % grid_w;
    ri = (token / grid_w) % grid_h;
    fi = token / (grid_w * grid_h);
    Index rest;
    if (p.layout == FVMT_PATCH_CHANNEL_FIRST) {
      x = feature % p.pw;
      rest = feature / p.pw;
      b = rest % p.ph;
      rest /= p.ph;
      a = rest % p.pt;
      ch = rest / p.pt;
    } else {
      ch = feature % p.channels;
      rest = feature / p.channels;
      x = rest % p.pw;
      rest /= p.pw;
      b = rest % p.ph;
      a = rest / p.ph;
    }
    token_at = e;
  } else {
    const Index w = e % p.width;
    Index rest = e / p.width;
    const Index h = rest % p.height;
    rest /= p.height;
    const Index f = rest % p.frames;
    ch = rest / p.frames;
    ci = w / p.pw, x = w - ci * p.pw;
    ri = h / p.ph, b = h - ri * p.ph;
    fi = f / p.pt, a = f - fi * p.pt;
    const Index token = (fi * grid_h + ri) * grid_w + ci;
    const Index feature = p.layout == FVMT_PATCH_CHANNEL_FIRST ? ((ch * p.pt + a) * p.ph + b) * p.pw + x
                                                               : ((a * p.ph + b) * p.pw + x) * p.channels + ch;
    token_at = token * features + feature;
    latent_at = e;
    return;
  }
  latent_at = ((ch * p.frames + fi * p.pt + a) * p.height + ri * p.ph + b) * p.width + ci * p.pw + x;
}

template <typename Index, bool kToTokens>
__global__ void __launch_bounds__(kBlock)
    permute_kernel(const float *__restrict__ in, Patches p, Index total, float *__restrict__ out) {
  const Index stride = static_cast<Index>(gridDim.x) * kBlock;
  for (Index e = static_cast<Index>(blockIdx.x) * kBlock + threadIdx.x; e < total; e += stride) {
    Index token_at, latent_at;
    locate<Index, kToTokens>(p, e, token_at, latent_at);
    if constexpr (kToTokens)
      out[token_at] = in[latent_at];
    else
      out[latent_at] = in[token_at];
  }
}

template <bool kToTokens>
int32_t permute(const char *fn, const float *in, const Patches &p, float *out, void *stream) {
  return guarded(fn, [&]() -> int32_t {
    if (int32_t s = check_patches(fn, p, kToTokens, in, out)) return s;
    const int64_t total = static_cast<int64_t>(p.channels) * p.frames * p.height * p.width;
    const unsigned grid = stride_grid(total, kBlock, kMaxBlocks);
    // int32 indices need total plus one grid stride to stay below 2^31.
    if (total + static_cast<int64_t>(grid) * kBlock < 2147483647LL) {
      FVMT_LAUNCH(grid, kBlock, 0, as_stream(stream), permute_kernel<int32_t, kToTokens>)
      (in, p, static_cast<int32_t>(total), out);
    } else {
      FVMT_LAUNCH(grid, kBlock, 0, as_stream(stream), permute_kernel<int64_t, kToTokens>)(in, p, total, out);
    }
    return check_launch(fn, "permute_kernel");
  });
}

}  // namespace
}  // namespace fvmt

using namespace fvmt;

extern "C" FVMT_API int32_t fvmt_patchify(const float *latent, int32_t channels, int32_t frames, int32_t height,
                                          int32_t width, int32_t pt, int32_t ph, int32_t pw, int32_t layout,
                                          float *tokens, void *stream) {
  return permute<true>("fvmt_patchify", latent, {channels, frames, height, width, pt, ph, pw, layout}, tokens,
                       stream);
}

extern "C" FVMT_API int32_t fvmt_unpatchify(const float *tokens, int32_t channels, int32_t frames, int32_t height,
                                            int32_t width, int32_t pt, int32_t ph, int32_t pw, int32_t layout,
                                            float *latent, void *stream) {
  return permute<false>("fvmt_unpatchify", tokens, {channels, frames, height, width, pt, ph, pw, layout}, latent,
                        stream);
}
