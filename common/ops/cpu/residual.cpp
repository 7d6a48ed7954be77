// Elementwise ops: the residual connection, and the scale / accumulate / convert that gradients and
// mixed-precision copies are made of. Each works a chunk at a time (compute_values.hpp), chunks spread over the
// worker pool: every element is computed the same way whichever thread takes its chunk.
#include "common/ops/cpu/compute_values.hpp"
#include "common/ops/cpu/cpu_ops.hpp"

namespace ladder::ops::cpu {

template <class S>
void residual_forward(S* out, const S* a, const S* b, std::int64_t count) {
  parallel_chunks(count, [&](std::int64_t start, std::int64_t n) {
    const ComputeView<S> a_values(a + start, n), b_values(b + start, n);
    const ComputeTarget<S> sums(out + start, n, /*keep_contents=*/false);
    for (std::int64_t i = 0; i < n; ++i) sums[i] = a_values[i] + b_values[i];
    sums.store();
  });
}

template <class S>
void residual_backward(S* da, S* db, const S* dout, std::int64_t count) {
  // A sum passes its gradient unchanged to both inputs. da's chunk is stored before db's is read, so that da and
  // db may be the same memory (each element then gains the gradient twice, rounded after each addition).
  parallel_chunks(count, [&](std::int64_t start, std::int64_t n) {
    const ComputeView<S> gradient(dout + start, n);
    for (S* input_gradient : {da, db}) {
      const ComputeTarget<S> sums(input_gradient + start, n, /*keep_contents=*/true);
      for (std::int64_t i = 0; i < n; ++i) sums[i] += gradient[i];
      sums.store();
    }
  });
}

template <class S>
void scale(S* values, double factor, std::int64_t count) {
  const auto compute_factor = static_cast<ComputeType<S>>(factor);
  // The factor by value: through a reference it would be reloaded after every store (it might alias values).
  parallel_chunks(count, [&, compute_factor](std::int64_t start, std::int64_t n) {
    const ComputeTarget<S> scaled(values + start, n, /*keep_contents=*/true);
    for (std::int64_t i = 0; i < n; ++i) scaled[i] *= compute_factor;
    scaled.store();
  });
}

template <class Destination, class Source>
void accumulate(Destination* destination, const Source* source, std::int64_t count) {
  using Compute = ComputeType<Destination>;
  parallel_chunks(count, [&](std::int64_t start, std::int64_t n) {
    const ComputeView<Source> addends(source + start, n);
    const ComputeTarget<Destination> sums(destination + start, n, /*keep_contents=*/true);
    for (std::int64_t i = 0; i < n; ++i) sums[i] += static_cast<Compute>(addends[i]);
    sums.store();
  });
}

template <class Destination, class Source>
void convert(Destination* destination, const Source* source, std::int64_t count) {
  parallel_chunks(count, [&](std::int64_t start, std::int64_t n) {
    convert_span(source + start, destination + start, n);
  });
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
