// Tracking loss, CPU.
//
// m(p, t) = mean of K_j over the lh x lw window of pair p = (i, j), tile t
// (origins from window_origins; lh = min(window, H), lw = min(window, W)).
// A couple is two pairs (i, j), (i, j + 1) of `pairs` with i != j, i != j + 1:
//   L_i = mean over the couples of i and the tiles t of || m(far, t) - m(near, t) ||_2
//   L   = mean of L_i over the frames i that have a couple (0 if none)
// Backward: with d = m(far) - m(near) and w = loss_grad / (frames * couples_i * tiles),
// every key of the far window gets += w d / (|d| lh lw), of the near one -= that
// (nothing when d = 0). A pair listed twice is refused: which of its windows a
// couple would use is undefined.
//
// Why it is fast: every window mean is a box sum, and the box sums of ALL
// window origins of a frame cost two sliding passes over the frame (rows, then
// columns), so a mean costs O(C) instead of O(lh lw C). The backward runs the
// same trick in reverse: the per-origin gradients are summed first, then spread
// over the frame with two sliding passes. Channels are independent, so work is
// split into fixed 64-channel slices (in double); the norm sums the slices'
// partial squares in slice order, so results do not depend on the thread count.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "boundary.hpp"
#include "validate.hpp"

using namespace fvmt;
using namespace fvmt::cpu;

namespace {

constexpr int kSlice = 64;  // channels per task

struct Couple {
  int i, j, near_pair, far_pair;
};

// Geometry, couples and scratch of one tracking-loss call.
struct Tracking {
  int frames, height, width, channels;
  int lh, lw, origins_h, origins_w, tiles;
  const float *k;
  const int32_t *pairs, *origins;
  std::vector<Couple> couples;      // sorted by (i, j)
  std::vector<int> couples_of;      // per frame i
  int frames_with_couples = 0;
  std::vector<int> slot_of_frame;   // key frames of couples -> box slot, else -1
  std::vector<int> frame_of_slot;

  int slices() const { return (channels + kSlice - 1) / kSlice; }
  int origin_count() const { return origins_h * origins_w; }
  // Index of the window origin of (pair, tile) in [0, origin_count()).
  int origin(int pair, int tile) const {
    const int32_t *o = origins + 2 * (static_cast<int64_t>(pair) * tiles + tile);
    return o[0] * origins_w + o[1];
  }
  double area() const { return static_cast<double>(lh) * lw; }
};

int32_t find_couples(const char *fn, Tracking &tr, int32_t pair_count) {
  std::vector<std::pair<int64_t, int>> index(pair_count);
  for (int p = 0; p < pair_count; ++p)
    index[p] = {int64_t{tr.pairs[2 * p]} * tr.frames + tr.pairs[2 * p + 1], p};
  std::sort(index.begin(), index.end());
  for (int p = 1; p < pair_count; ++p)
    if (index[p].first == index[p - 1].first)
      return fail(FVMT_ERR_INVALID_ARGUMENT,
                  "%s: pairs[%d] and pairs[%d] are both (%d, %d); the tracking loss needs each pair once", fn,
                  std::min(index[p - 1].second, index[p].second), std::max(index[p - 1].second, index[p].second),
                  tr.pairs[2 * index[p].second], tr.pairs[2 * index[p].second + 1]);
  auto find = [&](int i, int j) {
    const auto it = std::lower_bound(index.begin(), index.end(), std::pair<int64_t, int>{int64_t{i} * tr.frames + j, -1});
    return it != index.end() && it->first == int64_t{i} * tr.frames + j ? it->second : -1;
  };
  for (int p = 0; p < pair_count; ++p) {
    const int i = tr.pairs[2 * p], j = tr.pairs[2 * p + 1];
    if (i == j || j + 1 >= tr.frames || i == j + 1) continue;
    const int far = find(i, j + 1);
    if (far >= 0) tr.couples.push_back({i, j, p, far});
  }
  std::sort(tr.couples.begin(), tr.couples.end(),
            [](const Couple &a, const Couple &b) { return a.i != b.i ? a.i < b.i : a.j < b.j; });
  tr.couples_of.assign(tr.frames, 0);
  tr.slot_of_frame.assign(tr.frames, -1);
  for (const Couple &c : tr.couples) {
    tr.frames_with_couples += tr.couples_of[c.i]++ == 0;
    for (int f : {c.j, c.j + 1})
      if (tr.slot_of_frame[f] < 0) {
        tr.slot_of_frame[f] = static_cast<int>(tr.frame_of_slot.size());
        tr.frame_of_slot.push_back(f);
      }
  }
  return FVMT_OK;
}

// box[o][ch] = sum of K_f over the window at origin o, channels [c0, c0 + len)
// of one slice; row_sums is scratch of H x origins_w x kSlice.
void box_sums(const Tracking &tr, int frame, int c0, int len, double *row_sums, double *box) {
  const float *kf = tr.k + static_cast<int64_t>(frame) * tr.height * tr.width * tr.channels + c0;
  auto key = [&](int r, int c) { return kf + (static_cast<int64_t>(r) * tr.width + c) * tr.channels; };
  for (int r = 0; r < tr.height; ++r) {
    double run[kSlice] = {};
    for (int b = 0; b < tr.lw; ++b)
      for (int ch = 0; ch < len; ++ch) run[ch] += key(r, b)[ch];
    for (int oc = 0; oc < tr.origins_w; ++oc) {
      if (oc > 0)
        for (int ch = 0; ch < len; ++ch) run[ch] += static_cast<double>(key(r, oc + tr.lw - 1)[ch]) - key(r, oc - 1)[ch];
      std::copy(run, run + len, row_sums + (static_cast<size_t>(r) * tr.origins_w + oc) * kSlice);
    }
  }
  for (int oc = 0; oc < tr.origins_w; ++oc) {
    auto row = [&](int r) { return row_sums + (static_cast<size_t>(r) * tr.origins_w + oc) * kSlice; };
    double run[kSlice] = {};
    for (int a = 0; a < tr.lh; ++a)
      for (int ch = 0; ch < len; ++ch) run[ch] += row(a)[ch];
    for (int orow = 0; orow < tr.origins_h; ++orow) {
      if (orow > 0)
        for (int ch = 0; ch < len; ++ch) run[ch] += row(orow + tr.lh - 1)[ch] - row(orow - 1)[ch];
      std::copy(run, run + len, box + (static_cast<size_t>(orow) * tr.origins_w + oc) * kSlice);
    }
  }
}

// Per-thread scratch of one slice: row sums, box sums of every slot, and (for
// the backward) per-origin gradients of every slot and a column-spread buffer.
struct SliceScratch {
  AlignedArray<double> row_sums, boxes, origin_grads, spread;
  SliceScratch(const Tracking &tr, bool backward) {
    const size_t slot_floats = static_cast<size_t>(tr.origin_count()) * kSlice;
    row_sums.resize(static_cast<size_t>(tr.height) * tr.origins_w * kSlice);
    boxes.resize(tr.frame_of_slot.size() * slot_floats);
    if (backward) {
      origin_grads.resize(tr.frame_of_slot.size() * slot_floats);
      spread.resize(static_cast<size_t>(tr.origins_h) * tr.width * kSlice);
    }
  }
  double *box(const Tracking &tr, int frame, int origin) {
    return boxes.data() + (static_cast<size_t>(tr.slot_of_frame[frame]) * tr.origin_count() + origin) * kSlice;
  }
  double *grad(const Tracking &tr, int frame, int origin) {
    return origin_grads.data() + (static_cast<size_t>(tr.slot_of_frame[frame]) * tr.origin_count() + origin) * kSlice;
  }
};

void slice_box_sums(const Tracking &tr, int c0, int len, SliceScratch &s) {
  for (size_t slot = 0; slot < tr.frame_of_slot.size(); ++slot)
    box_sums(tr, tr.frame_of_slot[slot], c0, len, s.row_sums.data(),
             s.boxes.data() + slot * tr.origin_count() * kSlice);
}

// |d|(couple, tile) = |m(far) - m(near)|: slices add their partial squares, summed in slice order.
std::vector<double> difference_norms(const Tracking &tr, int threads, std::vector<SliceScratch> &scratch) {
  const size_t terms = tr.couples.size() * tr.tiles;
  std::vector<double> partial(static_cast<size_t>(tr.slices()) * terms);
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
  for (int slice = 0; slice < tr.slices(); ++slice) {
    SliceScratch &s = scratch[omp_get_thread_num()];
    const int c0 = slice * kSlice, len = std::min(kSlice, tr.channels - c0);
    slice_box_sums(tr, c0, len, s);
    double *out = partial.data() + slice * terms;
    for (size_t c = 0; c < tr.couples.size(); ++c) {
      const Couple &couple = tr.couples[c];
      for (int t = 0; t < tr.tiles; ++t) {
        const double *near = s.box(tr, couple.j, tr.origin(couple.near_pair, t));
        const double *far = s.box(tr, couple.j + 1, tr.origin(couple.far_pair, t));
        double squares = 0.0;
        for (int ch = 0; ch < len; ++ch) squares += (far[ch] - near[ch]) * (far[ch] - near[ch]);
        out[c * tr.tiles + t] = squares;
      }
    }
  }
  std::vector<double> norms(terms, 0.0);
  for (int slice = 0; slice < tr.slices(); ++slice)
    for (size_t n = 0; n < terms; ++n) norms[n] += partial[slice * terms + n];
  for (double &n : norms) n = std::sqrt(n) / tr.area();
  return norms;
}

// dk_f[r][c] += (1 / area) sum of grads[o] over the origins o whose window holds (r, c).
void spread_over_windows(const Tracking &tr, int frame, int c0, int len, const double *grads, double *spread,
                         float *dk) {
  for (int orow = 0; orow < tr.origins_h; ++orow) {
    double run[kSlice] = {};
    for (int c = 0; c < tr.width; ++c) {
      if (c < tr.origins_w) {
        const double *g = grads + (static_cast<size_t>(orow) * tr.origins_w + c) * kSlice;
        for (int ch = 0; ch < len; ++ch) run[ch] += g[ch];
      }
      if (c >= tr.lw) {
        const double *g = grads + (static_cast<size_t>(orow) * tr.origins_w + c - tr.lw) * kSlice;
        for (int ch = 0; ch < len; ++ch) run[ch] -= g[ch];
      }
      std::copy(run, run + len, spread + (static_cast<size_t>(orow) * tr.width + c) * kSlice);
    }
  }
  const double inv_area = 1.0 / tr.area();
  float *dkf = dk + static_cast<int64_t>(frame) * tr.height * tr.width * tr.channels + c0;
  for (int c = 0; c < tr.width; ++c) {
    double run[kSlice] = {};
    for (int r = 0; r < tr.height; ++r) {
      if (r < tr.origins_h) {
        const double *g = spread + (static_cast<size_t>(r) * tr.width + c) * kSlice;
        for (int ch = 0; ch < len; ++ch) run[ch] += g[ch];
      }
      if (r >= tr.lh) {
        const double *g = spread + (static_cast<size_t>(r - tr.lh) * tr.width + c) * kSlice;
        for (int ch = 0; ch < len; ++ch) run[ch] -= g[ch];
      }
      float *out = dkf + (static_cast<int64_t>(r) * tr.width + c) * tr.channels;
      for (int ch = 0; ch < len; ++ch) out[ch] += static_cast<float>(run[ch] * inv_area);
    }
  }
}

int32_t check_tracking_arguments(const char *fn, Tracking &tr, const void *k, int32_t dtype, int32_t frames,
                                 int32_t height, int32_t width, int32_t channels, int32_t tile_h, int32_t tile_w,
                                 int32_t window, const int32_t *pairs, int32_t pair_count,
                                 const int32_t *window_origins) {
  if (int32_t s = check_dtype(fn, dtype, false)) return s;
  if (int32_t s = check_geometry(fn, frames, height, width, channels)) return s;
  if (int32_t s = check_window(fn, height, width, tile_h, tile_w, window)) return s;
  if (int32_t s = check_pointer(fn, "k", k)) return s;
  if (int32_t s = check_pairs(fn, pairs, pair_count, frames)) return s;
  if (int32_t s = check_window_origins(fn, window_origins, pair_count, height, width, tile_h, tile_w, window))
    return s;
  tr.frames = frames, tr.height = height, tr.width = width, tr.channels = channels;
  tr.lh = std::min(window, height), tr.lw = std::min(window, width);
  tr.origins_h = height - tr.lh + 1, tr.origins_w = width - tr.lw + 1;
  tr.tiles = static_cast<int>(tiles_along(height, tile_h) * tiles_along(width, tile_w));
  tr.k = static_cast<const float *>(k), tr.pairs = pairs, tr.origins = window_origins;
  return find_couples(fn, tr, pair_count);
}

std::vector<SliceScratch> make_scratch(const Tracking &tr, int threads, bool backward) {
  std::vector<SliceScratch> scratch;
  scratch.reserve(threads);
  for (int t = 0; t < threads; ++t) scratch.emplace_back(tr, backward);
  return scratch;
}

}  // namespace

extern "C" FVMT_API size_t fvmt_tracking_loss_workspace_bytes(int32_t, int32_t, int32_t, int32_t, int32_t, int32_t,
                                                              int32_t) {
  return 0;
}

extern "C" FVMT_API int32_t fvmt_tracking_loss_forward(const void *k, int32_t dtype, int32_t frames, int32_t height,
                                                       int32_t width, int32_t channels, int32_t tile_h,
                                                       int32_t tile_w, int32_t window, const int32_t *pairs,
                                                       int32_t pair_count, const int32_t *window_origins,
                                                       float *loss, void *workspace, size_t workspace_bytes, void *) {
  static constexpr char fn[] = "fvmt_tracking_loss_forward";
  return run_guarded(fn, [&]() -> int32_t {
    Tracking tr;
    if (int32_t s = check_tracking_arguments(fn, tr, k, dtype, frames, height, width, channels, tile_h, tile_w,
                                             window, pairs, pair_count, window_origins))
      return s;
    if (int32_t s = check_pointer(fn, "loss", loss)) return s;
    if (int32_t s = check_workspace(fn, workspace, workspace_bytes, 0)) return s;
    if (tr.couples.empty()) {
      *loss = 0.0f;
      return FVMT_OK;
    }
    const int threads = omp_get_max_threads();
    std::vector<SliceScratch> scratch = make_scratch(tr, threads, false);
    const std::vector<double> norms = difference_norms(tr, threads, scratch);
    double total = 0.0, frame_sum = 0.0;
    for (size_t c = 0; c < tr.couples.size(); ++c) {
      for (int t = 0; t < tr.tiles; ++t) frame_sum += norms[c * tr.tiles + t];
      const int i = tr.couples[c].i;
      if (c + 1 == tr.couples.size() || tr.couples[c + 1].i != i) {
        total += frame_sum / (static_cast<double>(tr.couples_of[i]) * tr.tiles);
        frame_sum = 0.0;
      }
    }
    *loss = static_cast<float>(total / tr.frames_with_couples);
    return FVMT_OK;
  });
}

extern "C" FVMT_API int32_t fvmt_tracking_loss_backward(const void *k, int32_t dtype, int32_t frames,
                                                        int32_t height, int32_t width, int32_t channels,
                                                        int32_t tile_h, int32_t tile_w, int32_t window,
                                                        const int32_t *pairs, int32_t pair_count,
                                                        const int32_t *window_origins, float loss_grad, float *dk,
                                                        void *workspace, size_t workspace_bytes, void *) {
  static constexpr char fn[] = "fvmt_tracking_loss_backward";
  return run_guarded(fn, [&]() -> int32_t {
    Tracking tr;
    if (int32_t s = check_tracking_arguments(fn, tr, k, dtype, frames, height, width, channels, tile_h, tile_w,
                                             window, pairs, pair_count, window_origins))
      return s;
    if (int32_t s = check_pointer(fn, "dk", dk)) return s;
    if (int32_t s = check_workspace(fn, workspace, workspace_bytes, 0)) return s;
    if (tr.couples.empty()) return FVMT_OK;
    const int threads = omp_get_max_threads();
    std::vector<SliceScratch> scratch = make_scratch(tr, threads, true);
    const std::vector<double> norms = difference_norms(tr, threads, scratch);
    const size_t slot_floats = static_cast<size_t>(tr.origin_count()) * kSlice;
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
    for (int slice = 0; slice < tr.slices(); ++slice) {
      SliceScratch &s = scratch[omp_get_thread_num()];
      const int c0 = slice * kSlice, len = std::min(kSlice, tr.channels - c0);
      slice_box_sums(tr, c0, len, s);
      std::fill(s.origin_grads.data(), s.origin_grads.data() + tr.frame_of_slot.size() * slot_floats, 0.0);
      for (size_t c = 0; c < tr.couples.size(); ++c) {
        const Couple &couple = tr.couples[c];
        const double weight = static_cast<double>(loss_grad) /
                              (static_cast<double>(tr.frames_with_couples) * tr.couples_of[couple.i] * tr.tiles);
        for (int t = 0; t < tr.tiles; ++t) {
          const double norm = norms[c * tr.tiles + t];
          if (norm == 0.0) continue;
          const int near_origin = tr.origin(couple.near_pair, t), far_origin = tr.origin(couple.far_pair, t);
          const double *near = s.box(tr, couple.j, near_origin), *far = s.box(tr, couple.j + 1, far_origin);
          double *near_grad = s.grad(tr, couple.j, near_origin), *far_grad = s.grad(tr, couple.j + 1, far_origin);
          const double factor = weight / (norm * tr.area());  // d = (far - near) / area
          for (int ch = 0; ch < len; ++ch) {
            const double g = factor * (far[ch] - near[ch]);
            far_grad[ch] += g;
            near_grad[ch] -= g;
          }
        }
      }
      for (size_t slot = 0; slot < tr.frame_of_slot.size(); ++slot)
        spread_over_windows(tr, tr.frame_of_slot[slot], c0, len, s.origin_grads.data() + slot * slot_floats,
                            s.spread.data(), dk);
    }
    return FVMT_OK;
  });
}
