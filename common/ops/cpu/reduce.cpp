// Reductions over whole spans: the sum of squares behind the global gradient norm.
#include <algorithm>
#include <array>

#include "common/ops/cpu/compute_values.hpp"
#include "common/ops/cpu/cpu_ops.hpp"

namespace ladder::ops::cpu {

template <class S>
double sum_of_squares(const S* values, std::int64_t count, double start) {
  // Double accumulation: millions of fp32 squares summed in fp32 would lose the small ones entirely. One thread,
  // strictly in element order after `start`, so the sum is the same at any thread count and sums over consecutive
  // pieces chain into exactly the sum over their concatenation; fp16/bf16 are widened a chunk at a time.
  // The widened chunk sits in a plain array and the total in a local: with a ComputeView (whose destructor may
  // run on an exception) the compiler kept the total in memory, a store and a load on every addition.
  double total = start;
  std::array<ComputeType<S>, kIsReducedPrecision<S> ? kChunkSize : 1> room;
  for (std::int64_t first = 0; first < count; first += kChunkSize) {
    const std::int64_t chunk = std::min(kChunkSize, count - first);
    const ComputeType<S>* chunk_values = compute_values_in(values + first, room.data(), chunk);
    for (std::int64_t i = 0; i < chunk; ++i) {
      const double value = static_cast<double>(chunk_values[i]);
      total += value * value;
    }
  }
  return total;
}

#define LADDER_INSTANTIATE_REDUCE(S) template double sum_of_squares<S>(const S*, std::int64_t, double);
LADDER_FOR_EACH_STORAGE_TYPE(LADDER_INSTANTIATE_REDUCE)

}  // namespace ladder::ops::cpu
