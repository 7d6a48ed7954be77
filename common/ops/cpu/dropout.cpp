// Inverted dropout: kept elements are scaled by 1/(1-p) in training, so nothing needs rescaling at evaluation.
#include "common/ops/cpu/compute_values.hpp"
#include "common/ops/cpu/cpu_ops.hpp"
#include "common/ops/dropout_mask.hpp"

namespace ladder::ops::cpu {

template <class S>
void dropout_forward(S* out, const S* inp, std::uint64_t threshold, double keep_scale, std::uint64_t seed,
                     std::int64_t count) {
  using Compute = ComputeType<S>;
  const auto scale = static_cast<Compute>(keep_scale);
  for (std::int64_t i = 0; i < count; ++i) {
    out[i] = store<S>(dropout_keeps(seed, i, threshold) ? load<S>(inp[i]) * scale : Compute(0));
  }
}

template <class S>
void dropout_backward(S* dinp, const S* dout, std::uint64_t threshold, double keep_scale, std::uint64_t seed,
                      std::int64_t count) {
  using Compute = ComputeType<S>;
  const auto scale = static_cast<Compute>(keep_scale);
  for (std::int64_t i = 0; i < count; ++i) {
    // A dropped element took no part in the forward, so it gets no gradient (not even a rounding of dinp + 0).
    if (dropout_keeps(seed, i, threshold)) dinp[i] = store<S>(load<S>(dinp[i]) + load<S>(dout[i]) * scale);
  }
}

#define LADDER_INSTANTIATE_DROPOUT(S)                                                                          \
  template void dropout_forward<S>(S*, const S*, std::uint64_t, double, std::uint64_t, std::int64_t);          \
  template void dropout_backward<S>(S*, const S*, std::uint64_t, double, std::uint64_t, std::int64_t);
LADDER_FOR_EACH_STORAGE_TYPE(LADDER_INSTANTIATE_DROPOUT)

}  // namespace ladder::ops::cpu
