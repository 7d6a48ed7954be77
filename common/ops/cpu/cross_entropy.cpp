// Softmax cross-entropy over a (possibly padded) vocabulary, with ignored positions. Rows are independent, so
// they are spread over the worker pool; each thread widens its row into scratch of its own.
#include <algorithm>
#include <cmath>
#include <limits>

#include "common/error.hpp"
#include "common/ops/cpu/compute_values.hpp"
#include "common/ops/cpu/cpu_ops.hpp"

namespace ladder::ops::cpu {

namespace {

// Checked before any output is written, so a bad target never leaves half-written results behind.
void check_targets(const std::int32_t* targets, std::int64_t N, std::int64_t V) {
  for (std::int64_t n = 0; n < N; ++n) {
    LADDER_CHECK(targets[n] < V, "softmax_cross_entropy: target ", targets[n], " in row ", n,
                 " is outside the vocabulary [0, ", V, ") (negative targets mean 'ignore')");
  }
}

// Maximum and Σ exp(x - maximum) over the real (unpadded) columns of one row.
template <class Compute>
void softmax_statistics(const Compute* row, std::int64_t V, Compute& maximum, Compute& exp_sum) {
  maximum = -std::numeric_limits<Compute>::infinity();
  for (std::int64_t v = 0; v < V; ++v) maximum = std::max(maximum, row[v]);
  exp_sum = 0;
  for (std::int64_t v = 0; v < V; ++v) exp_sum += std::exp(row[v] - maximum);
}

// One row of V compute values per thread, for fp16/bf16 rows (float and double rows are read where they are).
// Made before the rows are handed out: the memory accountant is not thread-safe.
template <class S>
Scratch<ComputeType<S>> row_room_per_thread(std::int64_t V) {
  return Scratch<ComputeType<S>>(kIsReducedPrecision<S> ? worker_threads() * V : 0);
}

}  // namespace

template <class S>
void softmax_cross_entropy_forward(ComputeType<S>* losses, const S* logits, const std::int32_t* targets, std::int64_t N,
                                   std::int64_t Vp, std::int64_t V) {
  using Compute = ComputeType<S>;
  check_targets(targets, N, V);
  const auto rooms = row_room_per_thread<S>(V);
  parallel_rows(N, V, [&](std::int64_t n, int slot) {
    if (targets[n] < 0) {
      losses[n] = 0;
      return;
    }
    const Compute* row = compute_values_in(logits + n * Vp, rooms.data() + slot * V, V);
    Compute maximum;
    Compute exp_sum;
    softmax_statistics(row, V, maximum, exp_sum);
    // -log softmax[target] = log Σ exp(x - max) - (x[target] - max). The difference is formed first: it is
    // small and (nearly) exact, where max + log Σ would round at the magnitude of the logits.
    losses[n] = std::log(exp_sum) - (row[targets[n]] - maximum);
  });
}

template <class S>
void softmax_cross_entropy_backward(S* dlogits, const S* logits, const std::int32_t* targets, std::int64_t N,
                                    std::int64_t Vp, std::int64_t V, double dloss) {
  using Compute = ComputeType<S>;
  check_targets(targets, N, V);
  const auto row_dloss = static_cast<Compute>(dloss);
  const auto rooms = row_room_per_thread<S>(V);
  // row_dloss by value: through a reference it would be reloaded after every store to the gradient row.
  parallel_rows(N, V, [&, row_dloss](std::int64_t n, int slot) {
    // dlogits may be the logits themselves: each element is read just before it is overwritten, and the
    // row statistics are complete before the first write.
    S* drow = dlogits + n * Vp;
    const std::int32_t target = targets[n];
    if (target < 0) {
      std::fill(drow, drow + Vp, store<S>(Compute(0)));
      return;
    }
    Compute* room = rooms.data() + slot * V;
    const Compute* row = compute_values_in(logits + n * Vp, room, V);
    Compute maximum;
    Compute exp_sum;
    softmax_statistics(row, V, maximum, exp_sum);
    const Compute inverse_sum = Compute(1) / exp_sum;
    // The gradient goes where the row's compute values are: the storage itself for float and double, the
    // widened copy for fp16/bf16 (rounded into dlogits after).
    Compute* gradient;
    if constexpr (kIsReducedPrecision<S>) gradient = room;
    else gradient = drow;
    for (std::int64_t v = 0; v < V; ++v) {
      const Compute probability = std::exp(row[v] - maximum) * inverse_sum;
      const Compute indicator = v == target ? Compute(1) : Compute(0);
      gradient[v] = (probability - indicator) * row_dloss;
    }
    if constexpr (kIsReducedPrecision<S>) store_span(gradient, drow, V);
    std::fill(drow + V, drow + Vp, store<S>(Compute(0)));
  });
}

#define LADDER_INSTANTIATE_CROSS_ENTROPY(S)                                                                      \
  template void softmax_cross_entropy_forward<S>(ComputeType<S>*, const S*, const std::int32_t*, std::int64_t,   \
                                                 std::int64_t, std::int64_t);                                    \
  template void softmax_cross_entropy_backward<S>(S*, const S*, const std::int32_t*, std::int64_t, std::int64_t, \
                                                  std::int64_t, double);
LADDER_FOR_EACH_STORAGE_TYPE(LADDER_INSTANTIATE_CROSS_ENTROPY)

}  // namespace ladder::ops::cpu
