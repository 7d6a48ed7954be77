// GELU in GPT-2's tanh form, with the derivative of that same form (not of the erf GELU it approximates).
// Elementwise, a chunk at a time, chunks spread over the worker pool (compute_values.hpp).
#include <cmath>

#include "common/ops/cpu/compute_values.hpp"
#include "common/ops/cpu/cpu_ops.hpp"

namespace ladder::ops::cpu {

namespace {

// sqrt(2/π) and the cubic coefficient of the approximation.
constexpr double kSqrtTwoOverPi = 0.79788456080286535587989211986876;
constexpr double kCubicCoefficient = 0.044715;

// tanh through one exp: glibc's tanhf goes through expm1f and was half of a CPU training step.
// 1 - 2/(e^{2|u|} + 1) loses relative accuracy only where tanh is tiny, and GELU adds it to 1, so the
// absolute error (about 1e-7) is what matters. Doubles keep std::tanh: they serve the gradient checks.
inline float fast_tanh(float u) {
  const float magnitude = 1.0f - 2.0f / (std::exp(2.0f * std::fabs(u)) + 1.0f);
  return std::copysign(magnitude, u);
}
inline double fast_tanh(double u) { return std::tanh(u); }

}  // namespace

// u(x) = √(2/π)·(x + 0.044715·x³), the argument of the tanh.
template <class Compute>
inline Compute tanh_argument(Compute x) {
  return static_cast<Compute>(kSqrtTwoOverPi) * (x + static_cast<Compute>(kCubicCoefficient) * x * x * x);
}

template <class S>
void gelu_forward(S* out, const S* inp, std::int64_t count) {
  using Compute = ComputeType<S>;
  parallel_chunks(count, [&](std::int64_t start, std::int64_t n) {
    const ComputeView<S> inputs(inp + start, n);
    const ComputeTarget<S> outputs(out + start, n, /*keep_contents=*/false);
    const Compute* x = inputs.data();
    Compute* y = outputs.data();
#pragma omp simd
    for (std::int64_t i = 0; i < n; ++i) y[i] = Compute(0.5) * x[i] * (Compute(1) + fast_tanh(tanh_argument(x[i])));
    outputs.store();
  });
}

template <class S>
void gelu_backward(S* dinp, const S* inp, const S* dout, std::int64_t count) {
  using Compute = ComputeType<S>;
  parallel_chunks(count, [&](std::int64_t start, std::int64_t n) {
    // Constants made here, not captured by reference: a float reached through a reference would be reloaded
    // after every store through dx, which might alias it.
    const Compute sqrt_two_over_pi = static_cast<Compute>(kSqrtTwoOverPi);
    const Compute cubic = static_cast<Compute>(kCubicCoefficient);
    const ComputeView<S> inputs(inp + start, n), output_gradients(dout + start, n);
    const ComputeTarget<S> input_gradients(dinp + start, n, /*keep_contents=*/true);
    const Compute* x = inputs.data();
    const Compute* dy = output_gradients.data();
    Compute* dx = input_gradients.data();
#pragma omp simd
    for (std::int64_t i = 0; i < n; ++i) {
      const Compute tanh_u = fast_tanh(tanh_argument(x[i]));
      // d/dx of 0.5·x·(1 + tanh(u(x))) = 0.5·(1 + tanh u) + 0.5·x·sech²(u)·u'(x), with sech² = 1 - tanh²
      // (finite for every x, where 1/cosh² would need cosh, which overflows).
      const Compute sech_squared = Compute(1) - tanh_u * tanh_u;
      const Compute u_derivative = sqrt_two_over_pi * (Compute(1) + Compute(3) * cubic * x[i] * x[i]);
      const Compute local_gradient =
          Compute(0.5) * (Compute(1) + tanh_u) + Compute(0.5) * x[i] * sech_squared * u_derivative;
      dx[i] += local_gradient * dy[i];
    }
    input_gradients.store();
  });
}

#define LADDER_INSTANTIATE_GELU(S)                           \
  template void gelu_forward<S>(S*, const S*, std::int64_t); \
  template void gelu_backward<S>(S*, const S*, const S*, std::int64_t);
LADDER_FOR_EACH_STORAGE_TYPE(LADDER_INSTANTIATE_GELU)

}  // namespace ladder::ops::cpu
