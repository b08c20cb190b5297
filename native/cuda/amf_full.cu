// Full attention motion flow (DiTFlow's AMF): every token of frame i attends to every token
// of frame j, for each pair (i, j) of the list; see full_attention.cuh for the math and
// the kernels.
//   forward:  full_softmax_kernel writes delta [pairs, H, W, 2].
//   backward: full_softmax_kernel recomputes the softmax statistics [pairs, N, 3] into the
//             workspace, then the dQ and dK owner kernels add the gradients (deterministic).
#include "full_attention.cuh"

namespace fvmt {
namespace {

struct FullWorkspace {
  float *stats;  // [pairs, N, 3]

  static FullWorkspace carve(WorkspaceLayout &layout, int32_t height, int32_t width, int32_t pair_count) {
    return {layout.take<float>(static_cast<int64_t>(pair_count) * height * width * amf::kStatsPerQuery)};
  }
};

template <typename T>
int32_t launch_full_forward(const char *fn, const void *q, const void *k, int32_t frames, int32_t height,
                            int32_t width, int32_t channels, int32_t heads, float temperature, const int32_t *pairs,
                            int32_t pair_count, float *delta, cudaStream_t stream) {
  const float scale2 = static_cast<float>(amf::score_scale(channels, heads, temperature) * amf::kLog2e);
  return amf::launch_full_softmax<T, amf::PairSet::kAll>(fn, false, static_cast<const T *>(q),
                                                         static_cast<const T *>(k), frames, height, width, channels,
                                                         scale2, pairs, pair_count, delta, stream);
}

template <typename T>
int32_t launch_full_backward(const char *fn, const void *q_in, const void *k_in, int32_t frames, int32_t height,
                             int32_t width, int32_t channels, int32_t heads, float temperature,
                             const int32_t *pairs, int32_t pair_count, const float *d_delta, float *dq, float *dk,
                             const FullWorkspace &ws, cudaStream_t stream) {
  const T *q = static_cast<const T *>(q_in), *k = static_cast<const T *>(k_in);
  const double score_scale = amf::score_scale(channels, heads, temperature);
  const float scale = static_cast<float>(score_scale);
  const float scale2 = static_cast<float>(score_scale * amf::kLog2e);
  if (int32_t s = amf::launch_full_softmax<T, amf::PairSet::kAll>(fn, true, q, k, frames, height, width, channels,
                                                                  scale2, pairs, pair_count, ws.stats, stream))
    return s;
  return amf::launch_full_gradients<T, amf::PairSet::kAll>(fn, q, k, frames, height, width, channels, scale, scale2,
                                                           pairs, pair_count, ws.stats, d_delta, dq, dk, stream);
}

}  // namespace
}  // namespace fvmt

using namespace fvmt;

extern "C" FVMT_API size_t fvmt_amf_full_workspace_bytes(int32_t frames, int32_t height, int32_t width,
                                                         int32_t channels, int32_t pair_count) {
  if (frames <= 0 || height <= 0 || width <= 0 || channels <= 0 || pair_count <= 0) return 0;
  WorkspaceLayout layout(nullptr);
  FullWorkspace::carve(layout, height, width, pair_count);
  return layout.bytes();
}

extern "C" FVMT_API int32_t fvmt_amf_full_forward(const void *q, const void *k, int32_t dtype, int32_t frames,
                                                  int32_t height, int32_t width, int32_t channels, int32_t heads,
                                                  float temperature, const int32_t *pairs, int32_t pair_count,
                                                  float *delta, void *workspace, size_t workspace_bytes,
                                                  void *stream) {
  static const char fn[] = "fvmt_amf_full_forward";
  return guarded(fn, [&]() -> int32_t {
    if (int32_t s = check_amf_arguments(fn, q, k, dtype, frames, height, width, channels, heads, temperature,
                                         pairs, pair_count))
      return s;
    if (int32_t s = check_pointer(fn, "delta", delta)) return s;
    if (int32_t s = check_workspace(fn, workspace, workspace_bytes,
                                    fvmt_amf_full_workspace_bytes(frames, height, width, channels, pair_count)))
      return s;
    return dtype == FVMT_DTYPE_BF16
               ? launch_full_forward<__nv_bfloat16>(fn, q, k, frames, height, width, channels, heads, temperature,
                                                    pairs, pair_count, delta, as_stream(stream))
               : launch_full_forward<float>(fn, q, k, frames, height, width, channels, heads, temperature, pairs,
                                            pair_count, delta, as_stream(stream));
  });
}

extern "C" FVMT_API int32_t fvmt_amf_full_backward(const void *q, const void *k, int32_t dtype, int32_t frames,
                                                   int32_t height, int32_t width, int32_t channels, int32_t heads,
                                                   float temperature, const int32_t *pairs, int32_t pair_count,
                                                   const float *d_delta, float *dq, float *dk, void *workspace,
                                                   size_t workspace_bytes, void *stream) {
  static const char fn[] = "fvmt_amf_full_backward";
  return guarded(fn, [&]() -> int32_t {
    if (int32_t s = check_amf_arguments(fn, q, k, dtype, frames, height, width, channels, heads, temperature,
                                         pairs, pair_count))
      return s;
    const int64_t elements = static_cast<int64_t>(frames) * height * width * channels;
    if (int32_t s = check_gradient_outputs(fn, d_delta, dq, dk, elements)) return s;
    if (int32_t s = check_workspace(fn, workspace, workspace_bytes,
                                    fvmt_amf_full_workspace_bytes(frames, height, width, channels, pair_count)))
      return s;
    WorkspaceLayout layout(workspace);
    const FullWorkspace ws = FullWorkspace::carve(layout, height, width, pair_count);
    return dtype == FVMT_DTYPE_BF16
               ? launch_full_backward<__nv_bfloat16>(fn, q, k, frames, height, width, channels, heads, temperature,
                                                     pairs, pair_count, d_delta, dq, dk, ws, as_stream(stream))
               : launch_full_backward<float>(fn, q, k, frames, height, width, channels, heads, temperature, pairs,
                                             pair_count, d_delta, dq, dk, ws, as_stream(stream));
  });
}
