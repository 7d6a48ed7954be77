// Reductions over whole spans: the sum of squares behind the global gradient norm.
#include <algorithm>

#include "common/ops/cpu/compute_values.hpp"
#include "common/ops/cpu/cpu_ops.hpp"

namespace ladder::ops::cpu {

template <class S>
double sum_of_squares(const S* values, std::int64_t count) {
  // Double accumulation: millions of fp32 squares summed in fp32 would lose the small ones entirely. One thread,
  // in order, so the sum is the same at any thread count; fp16/bf16 are widened a chunk at a time.
  double total = 0;
  for (std::int64_t start = 0; start < count; start += kChunkSize) {
    const std::int64_t chunk = std::min(kChunkSize, count - start);
    const ComputeView<S> chunk_values(values + start, chunk);
    for (std::int64_t i = 0; i < chunk; ++i) {
      const double value = static_cast<double>(chunk_values[i]);
      total += value * value;
    }
  }
  return total;
}

#define LADDER_INSTANTIATE_REDUCE(S) template double sum_of_squares<S>(const S*, std::int64_t);
LADDER_FOR_EACH_STORAGE_TYPE(LADDER_INSTANTIATE_REDUCE)

}  // namespace ladder::ops::cpu
