// GELU in GPT-2's tanh form, with the derivative of that same form (not of the erf GELU it approximates).
#include <cmath>

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
#pragma omp simd
  for (std::int64_t i = 0; i < count; ++i) {
    const Compute x = load<S>(inp[i]);
    out[i] = store<S>(Compute(0.5) * x * (Compute(1) + fast_tanh(tanh_argument(x))));
  }
}

template <class S>
void gelu_backward(S* dinp, const S* inp, const S* dout, std::int64_t count) {
  using Compute = ComputeType<S>;
  const Compute sqrt_two_over_pi = static_cast<Compute>(kSqrtTwoOverPi);
  const Compute cubic = static_cast<Compute>(kCubicCoefficient);
#pragma omp simd
  for (std::int64_t i = 0; i < count; ++i) {
    const Compute x = load<S>(inp[i]);
    const Compute tanh_u = fast_tanh(tanh_argument(x));
    // d/dx of 0.5·x·(1 + tanh(u(x))) = 0.5·(1 + tanh u) + 0.5·x·sech²(u)·u'(x), with sech² = 1 - tanh²
    // (finite for every x, where 1/cosh² would need cosh, which overflows).
    const Compute sech_squared = Compute(1) - tanh_u * tanh_u;
    const Compute u_derivative = sqrt_two_over_pi * (Compute(1) + Compute(3) * cubic * x * x);
    const Compute local_gradient = Compute(0.5) * (Compute(1) + tanh_u) + Compute(0.5) * x * sech_squared * u_derivative;
    dinp[i] = store<S>(load<S>(dinp[i]) + local_gradient * load<S>(dout[i]));
  }
}

#define LADDER_INSTANTIATE_GELU(S)                           \
  template void gelu_forward<S>(S*, const S*, std::int64_t); \
  template void gelu_backward<S>(S*, const S*, const S*, std::int64_t);
LADDER_FOR_EACH_STORAGE_TYPE(LADDER_INSTANTIATE_GELU)

}  // namespace ladder::ops::cpu
