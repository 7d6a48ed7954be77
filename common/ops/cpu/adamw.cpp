// AdamW, exactly as torch.optim.AdamW writes it, for a span of parameters whose moments may be stored in
// another dtype than the parameters themselves (stage 02 keeps everything in fp16, stage 03 keeps fp32 state).
#include <algorithm>
#include <cmath>
#include <type_traits>

#include "common/ops/cpu/compute_values.hpp"
#include "common/ops/cpu/cpu_ops.hpp"

namespace ladder::ops::cpu {

namespace {

// Gradients and moments are converted a chunk at a time: one dtype switch per chunk, none per element.
// values[i] = element start + i of a span of any float dtype, converted exactly to Compute.
template <class Compute>
void load_chunk(const void* data, DType dtype, std::int64_t start, std::int64_t count, Compute* values) {
  visit_float_dtype(dtype, "adamw_update", [&](auto element) {
    using S = decltype(element);
    convert_span(static_cast<const S*>(data) + start, values, count);
  });
}

// Element start + i of a span of any float dtype = values[i], rounded once into that dtype.
template <class Compute>
void store_chunk(void* data, DType dtype, std::int64_t start, std::int64_t count, const Compute* values) {
  visit_float_dtype(dtype, "adamw_update", [&](auto element) {
    using S = decltype(element);
    convert_span(values, static_cast<S*>(data) + start, count);
  });
}

// The compute values of one chunk of a span of any float dtype: the span itself where it is stored in the compute
// type (fp32 moments, fp32 gradients), else its values converted into `room`. Working in place spares copying
// every fp32 array into the chunk and back, a pass over memory that the update's arithmetic would wait for.
template <class Compute>
const Compute* chunk_values(const void* data, DType dtype, std::int64_t start, std::int64_t count, Compute* room) {
  if (dtype == dtype_of<Compute>()) return static_cast<const Compute*>(data) + start;
  load_chunk(data, dtype, start, count, room);
  return room;
}

// The same for a span the update writes (the moments): `data` is writable, so is the chunk taken from it.
template <class Compute>
Compute* chunk_values(void* data, DType dtype, std::int64_t start, std::int64_t count, Compute* room) {
  return const_cast<Compute*>(chunk_values(static_cast<const void*>(data), dtype, start, count, room));
}

// Stores a chunk's new values back where chunk_values took them from (nothing to do when it was the span itself).
template <class Compute>
void store_chunk_values(void* data, DType dtype, std::int64_t start, std::int64_t count, const Compute* values) {
  if (dtype != dtype_of<Compute>()) store_chunk(data, dtype, start, count, values);
}

// The scalars of one step, in the compute type.
template <class Compute>
struct StepScalars {
  Compute step_size;              // lr / (1 - β1^t)
  Compute bias_correction2_sqrt;  // sqrt(1 - β2^t)
  bool decays;                    // weight decay on this span
  Compute decay_factor;           // 1 - lr·wd
  Compute beta1, beta2, one_minus_beta1, one_minus_beta2, epsilon, gradient_scale;
};

// The update of `count` parameters whose values sit in p, gradient, m and v (compute type). The scalars come by
// value: as locals they stay in registers, where values reached through a reference would have to be reloaded
// after every store through a float pointer (which might alias them), and the loop would not vectorise. The four
// spans never overlap (four tensors, or rooms on the stack), which __restrict tells the compiler.
template <class Compute>
void update_chunk(Compute* __restrict p, const Compute* __restrict gradient, Compute* __restrict m,
                  Compute* __restrict v, std::int64_t count, const StepScalars<Compute> s) {
#pragma omp simd
  for (std::int64_t i = 0; i < count; ++i) {
    const Compute g = gradient[i] * s.gradient_scale;
    Compute parameter = p[i];
    if (s.decays) parameter *= s.decay_factor;
    m[i] = s.beta1 * m[i] + s.one_minus_beta1 * g;
    v[i] = s.beta2 * v[i] + s.one_minus_beta2 * g * g;
    const Compute denominator = std::sqrt(v[i]) / s.bias_correction2_sqrt + s.epsilon;
    parameter -= s.step_size * (m[i] / denominator);
    p[i] = parameter;
  }
}

}  // namespace

template <class P>
void adamw_update(P* params, const void* grads, DType grads_dtype, void* first_moment, DType first_moment_dtype,
                  void* second_moment, DType second_moment_dtype, std::int64_t count, const AdamWStep& hyper,
                  void* rounded_copy, DType rounded_copy_dtype) {
  using Compute = ComputeType<P>;
  // The copy is rounded from the compute values, which are the stored parameters only when P is the compute type.
  constexpr bool params_are_compute_values = std::is_same_v<P, Compute>;
  LADDER_CHECK(rounded_copy == nullptr || params_are_compute_values, "adamw_update: a rounded copy is made from ",
               "fp32 (or fp64) parameters, not from ", dtype_name(dtype_of<P>()));
  // The scalars are formed in double, as PyTorch forms them from Python floats, then rounded once to Compute.
  // Decoupled decay p - lr·wd·p is written as PyTorch's param.mul_(1 - lr·wd).
  const double step = static_cast<double>(hyper.step);
  const StepScalars<Compute> scalars{
      .step_size = static_cast<Compute>(hyper.learning_rate / (1.0 - std::pow(hyper.beta1, step))),
      .bias_correction2_sqrt = static_cast<Compute>(std::sqrt(1.0 - std::pow(hyper.beta2, step))),
      .decays = hyper.weight_decay != 0.0,
      .decay_factor = static_cast<Compute>(1.0 - hyper.learning_rate * hyper.weight_decay),
      .beta1 = static_cast<Compute>(hyper.beta1),
      .beta2 = static_cast<Compute>(hyper.beta2),
      .one_minus_beta1 = static_cast<Compute>(1.0 - hyper.beta1),
      .one_minus_beta2 = static_cast<Compute>(1.0 - hyper.beta2),
      .epsilon = static_cast<Compute>(hyper.epsilon),
      .gradient_scale = static_cast<Compute>(hyper.gradient_scale)};

  // Every parameter's update reads and writes only its own four values: chunks can go to any thread.
  parallel_chunks(count, [&](std::int64_t start, std::int64_t chunk) {
    // Rooms for values stored in another dtype, each starting a cache line so no vector access straddles two.
    alignas(64) Compute gradient_room[kChunkSize];
    alignas(64) Compute m_room[kChunkSize];
    alignas(64) Compute v_room[kChunkSize];
    const Compute* gradient = chunk_values(grads, grads_dtype, start, chunk, gradient_room);
    Compute* m = chunk_values(first_moment, first_moment_dtype, start, chunk, m_room);
    Compute* v = chunk_values(second_moment, second_moment_dtype, start, chunk, v_room);
    const ComputeTarget<P> updated(params + start, chunk, /*keep_contents=*/true);
    update_chunk(updated.data(), gradient, m, v, chunk, scalars);
    updated.store();
    // The master -> working copy of stages 03-06 and 10, while the chunk is still in L1: no second pass over
    // the fp32 weights after the update. The same single rounding as ops::convert, so the same bits.
    if (rounded_copy != nullptr) store_chunk(rounded_copy, rounded_copy_dtype, start, chunk, updated.data());
    store_chunk_values(first_moment, first_moment_dtype, start, chunk, m);
    store_chunk_values(second_moment, second_moment_dtype, start, chunk, v);
  });
}

#define LADDER_INSTANTIATE_ADAMW(P) \
  template void adamw_update<P>(P*, const void*, DType, void*, DType, void*, DType, std::int64_t, const AdamWStep&, \
                                void*, DType);
LADDER_FOR_EACH_STORAGE_TYPE(LADDER_INSTANTIATE_ADAMW)

}  // namespace ladder::ops::cpu
