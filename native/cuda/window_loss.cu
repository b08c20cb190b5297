// Corresponding-window loss between the reference and generated motion flows:
//     L = (1 / pairs) * sum_p w_p * sum_{t < N, c in {row, col}} (ref[p, t, c] - gen[p, t, c])^2
//     d_gen[p, t, c] += loss_grad * (-2 / pairs) * w_p * (ref - gen)
// ref, gen, d_gen: fp32 [pairs, N, 2]; w: fp32 [pairs].
//
// The forward is a two-stage fixed-order reduction (deterministic, no atomics):
// window_loss_partial_kernel gives each pair `chunks` blocks of 256 threads (each thread
// strides over its chunk, then a shared-memory tree), and writes w_p * chunk sum to the
// workspace; reduce::sum_partials_kernel adds the pairs * chunks partials in double. Both
// stages are bound by reading ref and gen once, coalesced. The backward is elementwise.
#include "entry.cuh"
#include "reduce.cuh"

namespace fvmt {
namespace {

constexpr int kBlock = reduce::kBlock;
constexpr int64_t kValuesPerChunk = 8 * kBlock;  // a chunk of about 8 values per thread
constexpr int kMaxChunks = 64;                   // per pair
constexpr int kMaxBackwardBlocks = 4096;         // the backward's grid-stride loop covers the rest

int chunks_per_pair(int32_t tokens_per_frame) {
  const int64_t chunks = (2 * static_cast<int64_t>(tokens_per_frame) + kValuesPerChunk - 1) / kValuesPerChunk;
  return static_cast<int>(chunks < kMaxChunks ? chunks : kMaxChunks);
}

__global__ void __launch_bounds__(kBlock)
    window_loss_partial_kernel(const float *__restrict__ ref, const float *__restrict__ gen,
                               const float *__restrict__ weights, int64_t values_per_pair, int chunks,
                               int64_t chunk_length, float *__restrict__ partials) {
  __shared__ float scratch[kBlock];
  const int pair = blockIdx.x / chunks, chunk = blockIdx.x % chunks;
  const int64_t pair_begin = static_cast<int64_t>(pair) * values_per_pair;
  const int64_t begin = pair_begin + chunk * chunk_length;
  const int64_t pair_end = pair_begin + values_per_pair;
  const int64_t end = begin + chunk_length < pair_end ? begin + chunk_length : pair_end;
  float sum = 0.0f;
  for (int64_t e = begin + threadIdx.x; e < end; e += kBlock) {
    const float diff = ref[e] - gen[e];
    sum = fmaf(diff, diff, sum);
  }
  const float total = reduce::block_sum(sum, scratch);
  if (threadIdx.x == 0) partials[blockIdx.x] = weights[pair] * total;
}

__global__ void __launch_bounds__(kBlock)
    window_loss_backward_kernel(const float *__restrict__ ref, const float *__restrict__ gen,
                                const float *__restrict__ weights, int64_t values_per_pair, int64_t values,
                                float factor, float *__restrict__ d_gen) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * kBlock;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * kBlock + threadIdx.x; e < values; e += stride)
    d_gen[e] += factor * weights[e / values_per_pair] * (ref[e] - gen[e]);
}

struct LossWorkspace {
  float *partials;  // [pairs, chunks]

  static LossWorkspace carve(WorkspaceLayout &layout, int32_t pair_count, int32_t tokens_per_frame) {
    return {layout.take<float>(static_cast<int64_t>(pair_count) * chunks_per_pair(tokens_per_frame))};
  }
};

int32_t check_loss_arguments(const char *fn, const float *delta_ref, const float *delta_gen,
                             const float *pair_weights, int32_t pair_count, int32_t tokens_per_frame) {
  if (int32_t s = check_positive(fn, "pair_count", pair_count)) return s;
  if (int32_t s = check_positive(fn, "tokens_per_frame", tokens_per_frame)) return s;
  if (int32_t s = check_pointer(fn, "delta_ref", delta_ref)) return s;
  if (int32_t s = check_pointer(fn, "delta_gen", delta_gen)) return s;
  return check_pointer(fn, "pair_weights", pair_weights);
}

}  // namespace
}  // namespace fvmt

using namespace fvmt;

extern "C" FVMT_API size_t fvmt_window_loss_workspace_bytes(int32_t pair_count, int32_t tokens_per_frame) {
  if (pair_count <= 0 || tokens_per_frame <= 0) return 0;
  WorkspaceLayout layout(nullptr);
  LossWorkspace::carve(layout, pair_count, tokens_per_frame);
  return layout.bytes();
}

extern "C" FVMT_API int32_t fvmt_window_loss_forward(const float *delta_ref, const float *delta_gen,
                                                     const float *pair_weights, int32_t pair_count,
                                                     int32_t tokens_per_frame, float *loss, void *workspace,
                                                     size_t workspace_bytes, void *stream) {
  static const char fn[] = "fvmt_window_loss_forward";
  return guarded(fn, [&]() -> int32_t {
    if (int32_t s = check_loss_arguments(fn, delta_ref, delta_gen, pair_weights, pair_count, tokens_per_frame))
      return s;
    if (int32_t s = check_pointer(fn, "loss", loss)) return s;
    if (int32_t s = check_workspace(fn, workspace, workspace_bytes,
                                    fvmt_window_loss_workspace_bytes(pair_count, tokens_per_frame)))
      return s;
    WorkspaceLayout layout(workspace);
    const LossWorkspace ws = LossWorkspace::carve(layout, pair_count, tokens_per_frame);
    const int chunks = chunks_per_pair(tokens_per_frame);
    const int64_t values_per_pair = 2 * static_cast<int64_t>(tokens_per_frame);
    const int64_t chunk_length = (values_per_pair + chunks - 1) / chunks;
    unsigned grid = 0;
    if (int32_t s = grid_size(fn, static_cast<int64_t>(pair_count) * chunks, &grid)) return s;
    FVMT_LAUNCH(grid, kBlock, 0, as_stream(stream), window_loss_partial_kernel)
    (delta_ref, delta_gen, pair_weights, values_per_pair, chunks, chunk_length, ws.partials);
    if (int32_t status = check_launch(fn, "window_loss_partial_kernel")) return status;
    FVMT_LAUNCH(1, kBlock, 0, as_stream(stream), reduce::sum_partials_kernel<double>)
    (ws.partials, static_cast<int64_t>(grid), 1.0 / pair_count, loss);
    return check_launch(fn, "sum_partials_kernel");
  });
}

extern "C" FVMT_API int32_t fvmt_window_loss_backward(const float *delta_ref, const float *delta_gen,
                                                      const float *pair_weights, int32_t pair_count,
                                                      int32_t tokens_per_frame, float loss_grad, float *d_delta_gen,
                                                      void *stream) {
  static const char fn[] = "fvmt_window_loss_backward";
  return guarded(fn, [&]() -> int32_t {
    if (int32_t s = check_loss_arguments(fn, delta_ref, delta_gen, pair_weights, pair_count, tokens_per_frame))
      return s;
    if (int32_t s = check_pointer(fn, "d_delta_gen", d_delta_gen)) return s;
    const int64_t values_per_pair = 2 * static_cast<int64_t>(tokens_per_frame);
    const int64_t values = values_per_pair * pair_count;
    const int64_t blocks = (values + kBlock - 1) / kBlock;
    const unsigned grid = static_cast<unsigned>(blocks < kMaxBackwardBlocks ? blocks : kMaxBackwardBlocks);
    const float factor = static_cast<float>(-2.0 * loss_grad / pair_count);
    FVMT_LAUNCH(grid, kBlock, 0, as_stream(stream), window_loss_backward_kernel)
    (delta_ref, delta_gen, pair_weights, values_per_pair, values, factor, d_delta_gen);
    return check_launch(fn, "window_loss_backward_kernel");
  });
}
