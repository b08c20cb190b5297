// Patchify / unpatchify, CPU (fastvmt.h, "DiT ops"; Wan2.1 uses 1 x 2 x 2
// patches): a permutation between
//   latent [channels, frames, height, width]  and
//   tokens [(frames/pt) (height/ph) (width/pw), channels pt ph pw],
// token (fi * (height/ph) + ri) * (width/pw) + ci holding latent[ch, fi pt + a,
// ri ph + b, ci pw + e] at feature
//   CHANNEL_FIRST  ((ch * pt + a) * ph + b) * pw + e   (Conv3d weight order)
//   CHANNEL_LAST   ((a * ph + b) * pw + e) * channels + ch   (Wan's unpatchify)
// unpatchify is the inverse map (and the gradient of patchify); both WRITE.
//
// Why it is fast: one band of tokens (a patch row, fixed fi and ri) per task;
// within it the loops run over (ch, a, b) and then along the latent row, so the
// latent is streamed contiguously and the scattered side stays inside the band
// (a few KiB, in L1). No index is divided per element. Every element is written
// exactly once by one thread, so no synchronisation is needed.
#include "boundary.hpp"
#include "dit_checks.hpp"

using namespace fvmt;

namespace {

template <bool kToTokens>
int32_t permute(const char *fn, const float *in, const Patches &p, float *out) {
  return cpu::run_guarded(fn, [&]() -> int32_t {
    if (int32_t s = check_patches(fn, p, kToTokens, in, out)) return s;
    const int32_t grid_f = p.frames / p.pt, grid_h = p.height / p.ph, grid_w = p.width / p.pw;
    const int64_t features = static_cast<int64_t>(p.channels) * p.pt * p.ph * p.pw;
    const bool channel_first = p.layout == FVMT_PATCH_CHANNEL_FIRST;
    // Feature strides of (ch, a, b, e) in the chosen layout.
    const int64_t e_stride = channel_first ? 1 : p.channels;
    const int64_t b_stride = e_stride * p.pw;
    const int64_t a_stride = b_stride * p.ph;
    const int64_t ch_stride = channel_first ? a_stride * p.pt : 1;
#pragma omp parallel for collapse(2) schedule(static)
    for (int32_t fi = 0; fi < grid_f; ++fi)
      for (int32_t ri = 0; ri < grid_h; ++ri) {
        const int64_t band = (static_cast<int64_t>(fi) * grid_h + ri) * grid_w * features;
        for (int32_t ch = 0; ch < p.channels; ++ch)
          for (int32_t a = 0; a < p.pt; ++a)
            for (int32_t b = 0; b < p.ph; ++b) {
              const int64_t latent_row =
                  ((static_cast<int64_t>(ch) * p.frames + fi * p.pt + a) * p.height + ri * p.ph + b) * p.width;
              const int64_t feature = ch * ch_stride + a * a_stride + b * b_stride;
              for (int32_t ci = 0; ci < grid_w; ++ci)
                for (int32_t e = 0; e < p.pw; ++e) {
                  const int64_t token_at = band + ci * features + feature + e * e_stride;
                  const int64_t latent_at = latent_row + static_cast<int64_t>(ci) * p.pw + e;
                  if constexpr (kToTokens)
                    out[token_at] = in[latent_at];
                  else
                    out[latent_at] = in[token_at];
                }
            }
      }
    return FVMT_OK;
  });
}

}  // namespace

extern "C" FVMT_API int32_t fvmt_patchify(const float *latent, int32_t channels, int32_t frames, int32_t height,
                                          int32_t width, int32_t pt, int32_t ph, int32_t pw, int32_t layout,
                                          float *tokens, void *) {
  return permute<true>("fvmt_patchify", latent, {channels, frames, height, width, pt, ph, pw, layout}, tokens);
}

extern "C" FVMT_API int32_t fvmt_unpatchify(const float *tokens, int32_t channels, int32_t frames, int32_t height,
                                            int32_t width, int32_t pt, int32_t ph, int32_t pw, int32_t layout,
                                            float *latent, void *) {
  return permute<false>("fvmt_unpatchify", tokens, {channels, frames, height, width, pt, ph, pw, layout}, latent);
}
