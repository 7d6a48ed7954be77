// AdamW, exactly as torch.optim.AdamW writes it, for a span of parameters whose moments may be stored in
// another dtype than the parameters themselves (stage 02 keeps everything in fp16, stage 03 keeps fp32 state).
#include <algorithm>
#include <cmath>

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

}  // namespace

template <class P>
void adamw_update(P* params, const void* grads, DType grads_dtype, void* first_moment, DType first_moment_dtype,
                  void* second_moment, DType second_moment_dtype, std::int64_t count, const AdamWStep& hyper) {
  using Compute = ComputeType<P>;
  // The scalars are formed in double, as PyTorch forms them from Python floats, then rounded once to Compute.
  const double step = static_cast<double>(hyper.step);
  const auto step_size = static_cast<Compute>(hyper.learning_rate / (1.0 - std::pow(hyper.beta1, step)));
  const auto bias_correction2_sqrt = static_cast<Compute>(std::sqrt(1.0 - std::pow(hyper.beta2, step)));
  // Decoupled decay p - lr·wd·p, written as PyTorch's param.mul_(1 - lr·wd).
  const bool decays = hyper.weight_decay != 0.0;
  const auto decay_factor = static_cast<Compute>(1.0 - hyper.learning_rate * hyper.weight_decay);
  const auto beta1 = static_cast<Compute>(hyper.beta1);
  const auto beta2 = static_cast<Compute>(hyper.beta2);
  const auto one_minus_beta1 = static_cast<Compute>(1.0 - hyper.beta1);
  const auto one_minus_beta2 = static_cast<Compute>(1.0 - hyper.beta2);
  const auto epsilon = static_cast<Compute>(hyper.epsilon);
  const auto gradient_scale = static_cast<Compute>(hyper.gradient_scale);

  // Every parameter's update reads and writes only its own four values: chunks can go to any thread.
  parallel_chunks(count, [&](std::int64_t start, std::int64_t chunk) {
    Compute gradient[kChunkSize];
    Compute m[kChunkSize];
    Compute v[kChunkSize];
    load_chunk(grads, grads_dtype, start, chunk, gradient);
    load_chunk(first_moment, first_moment_dtype, start, chunk, m);
    load_chunk(second_moment, second_moment_dtype, start, chunk, v);
    const ComputeTarget<P> updated(params + start, chunk, /*keep_contents=*/true);
    for (std::int64_t i = 0; i < chunk; ++i) {
      const Compute g = gradient[i] * gradient_scale;
      Compute p = updated[i];
      if (decays) p *= decay_factor;
      m[i] = beta1 * m[i] + one_minus_beta1 * g;
      v[i] = beta2 * v[i] + one_minus_beta2 * g * g;
      const Compute denominator = std::sqrt(v[i]) / bias_correction2_sqrt + epsilon;
      p -= step_size * (m[i] / denominator);
      updated[i] = p;
    }
    updated.store();
    store_chunk(first_moment, first_moment_dtype, start, chunk, m);
    store_chunk(second_moment, second_moment_dtype, start, chunk, v);
  });
}

#define LADDER_INSTANTIATE_ADAMW(P) \
  template void adamw_update<P>(P*, const void*, DType, void*, DType, void*, DType, std::int64_t, const AdamWStep&);
LADDER_FOR_EACH_STORAGE_TYPE(LADDER_INSTANTIATE_ADAMW)

}  // namespace ladder::ops::cpu
