// Elementwise ops: the residual connection, and the scale / accumulate / convert that gradients and
// mixed-precision copies are made of.
#include "common/ops/cpu/compute_values.hpp"
#include "common/ops/cpu/cpu_ops.hpp"

namespace ladder::ops::cpu {

template <class S>
void residual_forward(S* out, const S* a, const S* b, std::int64_t count) {
  for (std::int64_t i = 0; i < count; ++i) out[i] = store<S>(load<S>(a[i]) + load<S>(b[i]));
}

template <class S>
void residual_backward(S* da, S* db, const S* dout, std::int64_t count) {
  // A sum passes its gradient unchanged to both inputs.
  for (std::int64_t i = 0; i < count; ++i) {
    const ComputeType<S> gradient = load<S>(dout[i]);
    da[i] = store<S>(load<S>(da[i]) + gradient);
    db[i] = store<S>(load<S>(db[i]) + gradient);
  }
}

template <class S>
void scale(S* values, double factor, std::int64_t count) {
  const auto compute_factor = static_cast<ComputeType<S>>(factor);
  for (std::int64_t i = 0; i < count; ++i) values[i] = store<S>(load<S>(values[i]) * compute_factor);
}

template <class Destination, class Source>
void accumulate(Destination* destination, const Source* source, std::int64_t count) {
  using Compute = ComputeType<Destination>;
  for (std::int64_t i = 0; i < count; ++i) {
    const Compute addend = static_cast<Compute>(load<Source>(source[i]));
    destination[i] = store<Destination>(load<Destination>(destination[i]) + addend);
  }
}

template <class Destination, class Source>
void convert(Destination* destination, const Source* source, std::int64_t count) {
  for (std::int64_t i = 0; i < count; ++i) destination[i] = convert_element<Destination>(source[i]);
}

#define LADDER_INSTANTIATE_ELEMENTWISE(S)                                  \
  template void residual_forward<S>(S*, const S*, const S*, std::int64_t); \
  template void residual_backward<S>(S*, S*, const S*, std::int64_t);      \
  template void scale<S>(S*, double, std::int64_t);
LADDER_FOR_EACH_STORAGE_TYPE(LADDER_INSTANTIATE_ELEMENTWISE)

// accumulate and convert take every (destination, source) pair of storage types.
#define LADDER_INSTANTIATE_PAIR(D, S)                         \
  template void accumulate<D, S>(D*, const S*, std::int64_t); \
  template void convert<D, S>(D*, const S*, std::int64_t);
#define LADDER_INSTANTIATE_PAIRS_INTO(D)     \
  LADDER_INSTANTIATE_PAIR(D, float)          \
  LADDER_INSTANTIATE_PAIR(D, double)         \
  LADDER_INSTANTIATE_PAIR(D, ::ladder::Half) \
  LADDER_INSTANTIATE_PAIR(D, ::ladder::BFloat16)
LADDER_FOR_EACH_STORAGE_TYPE(LADDER_INSTANTIATE_PAIRS_INTO)

}  // namespace ladder::ops::cpu
