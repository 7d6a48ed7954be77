// Reductions over whole spans: the sum of squares behind the global gradient norm.
#include "common/ops/cpu/cpu_ops.hpp"

namespace ladder::ops::cpu {

template <class S>
double sum_of_squares(const S* values, std::int64_t count, double start) {
  // Double accumulation: millions of fp32 squares summed in fp32 would lose the small ones entirely. Strictly in
  // element order after `start`, so sums over consecutive pieces chain into exactly the sum over their concatenation.
  double total = start;
  for (std::int64_t i = 0; i < count; ++i) {
    const double value = static_cast<double>(load<S>(values[i]));
    total += value * value;
  }
  return total;
}

#define LADDER_INSTANTIATE_REDUCE(S) template double sum_of_squares<S>(const S*, std::int64_t, double);
LADDER_FOR_EACH_STORAGE_TYPE(LADDER_INSTANTIATE_REDUCE)

}  // namespace ladder::ops::cpu
