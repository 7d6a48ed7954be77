// Reductions over whole spans: the sum of squares behind the global gradient norm, and the loss scaler's check
// that no element is inf or NaN.
#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <type_traits>

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

namespace {

// The bits of an element with its exponent all ones: inf or NaN, in every IEEE format.
template <class Bits>
bool exponent_all_ones(Bits bits, Bits exponent_mask) {
  return (bits & exponent_mask) == exponent_mask;
}

template <class S>
auto exponent_mask() {
  if constexpr (std::is_same_v<S, Half>) return std::uint16_t{0x7C00};
  else if constexpr (std::is_same_v<S, BFloat16>) return std::uint16_t{0x7F80};
  else if constexpr (std::is_same_v<S, float>) return std::uint32_t{0x7F800000};
  else return std::uint64_t{0x7FF0000000000000};
}

}  // namespace

template <class S>
bool all_finite(const S* values, std::int64_t count) {
  // Any order will do (the answer is a yes or no), so the scan is split over the threads. Each element is read as
  // raw bits (the loop vectorises); once some thread has found one, the chunks not yet begun are skipped.
  using Bits = decltype(exponent_mask<S>());
  static_assert(sizeof(Bits) == sizeof(S));
  std::atomic<bool> found{false};
  parallel_chunks(count, [&](std::int64_t start, std::int64_t n) {
    if (found.load(std::memory_order_relaxed)) return;
    bool any = false;
    for (std::int64_t i = 0; i < n; ++i) {
      Bits bits;
      std::memcpy(&bits, values + start + i, sizeof bits);  // the element's bits, without a copy of the chunk
      any |= exponent_all_ones(bits, exponent_mask<S>());
    }
    if (any) found.store(true, std::memory_order_relaxed);
  });
  return !found.load();
}

#define LADDER_INSTANTIATE_REDUCE(S)                                 \
  template double sum_of_squares<S>(const S*, std::int64_t, double); \
  template bool all_finite<S>(const S*, std::int64_t);
LADDER_FOR_EACH_STORAGE_TYPE(LADDER_INSTANTIATE_REDUCE)

}  // namespace ladder::ops::cpu
