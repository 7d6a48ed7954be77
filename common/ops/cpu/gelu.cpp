// GELU in GPT-2's tanh form, with the derivative of that same form (not of the erf GELU it approximates).
// Elementwise, a chunk at a time, chunks spread over the worker pool (compute_values.hpp).
//
// A 16-bit input has only 65,536 possible values. When an fp16/bf16 op has several times that many elements, it
// first evaluates the function once per bit pattern (the rounded output forward, the fp32 local gradient backward),
// through the very code the direct path runs, then looks every element up: the same bits as evaluating each
// element, for a fraction of the exp calls. fp32 has four billion inputs and always evaluates.
#include <cmath>

#include "common/ops/cpu/compute_values.hpp"
#include "common/ops/cpu/cpu_ops.hpp"

namespace ladder::ops::cpu {

namespace {

// sqrt(2/π) and the cubic coefficient of the approximation.
constexpr double kSqrtTwoOverPi = 0.79788456080286535587989211986876;
constexpr double kCubicCoefficient = 0.044715;

// Bit patterns of a 16-bit storage type: the entries of a lookup table.
constexpr std::int64_t kBitPatterns = std::int64_t{1} << 16;
// A table costs one evaluation per entry, so it pays only when the op has several times as many elements.
constexpr std::int64_t kSmallestTabulated = 4 * kBitPatterns;

// tanh through one exp: glibc's tanhf goes through expm1f and was half of a CPU training step.
// 1 - 2/(e^{2|u|} + 1) loses relative accuracy only where tanh is tiny, and GELU adds it to 1, so the
// absolute error (about 1e-7) is what matters. Doubles keep std::tanh: they serve the gradient checks.
inline float fast_tanh(float u) {
  const float magnitude = 1.0f - 2.0f / (std::exp(2.0f * std::fabs(u)) + 1.0f);
  return std::copysign(magnitude, u);
}
inline double fast_tanh(double u) { return std::tanh(u); }

// u(x) = √(2/π)·(x + 0.044715·x³), the argument of the tanh.
template <class Compute>
inline Compute tanh_argument(Compute x) {
  return static_cast<Compute>(kSqrtTwoOverPi) * (x + static_cast<Compute>(kCubicCoefficient) * x * x * x);
}

// GELU of n stored inputs, rounded into n stored outputs.
template <class S>
void gelu_chunk(S* out, const S* inp, std::int64_t n) {
  using Compute = ComputeType<S>;
  const ComputeView<S> inputs(inp, n);
  const ComputeTarget<S> outputs(out, n, /*keep_contents=*/false);
  const Compute* x = inputs.data();
  Compute* y = outputs.data();
#pragma omp simd
  for (std::int64_t i = 0; i < n; ++i) y[i] = Compute(0.5) * x[i] * (Compute(1) + fast_tanh(tanh_argument(x[i])));
  outputs.store();
}

// d GELU/dx at n stored inputs, in the compute type:
// d/dx of 0.5·x·(1 + tanh(u(x))) = 0.5·(1 + tanh u) + 0.5·x·sech²(u)·u'(x), with sech² = 1 - tanh²
// (finite for every x, where 1/cosh² would need cosh, which overflows).
template <class S>
void local_gradient_chunk(ComputeType<S>* gradients, const S* inp, std::int64_t n) {
  using Compute = ComputeType<S>;
  // Constants made here, not captured by reference: a float reached through a reference would be reloaded
  // after every store through `gradients`, which might alias it.
  const Compute sqrt_two_over_pi = static_cast<Compute>(kSqrtTwoOverPi);
  const Compute cubic = static_cast<Compute>(kCubicCoefficient);
  const ComputeView<S> inputs(inp, n);
  const Compute* x = inputs.data();
#pragma omp simd
  for (std::int64_t i = 0; i < n; ++i) {
    const Compute tanh_u = fast_tanh(tanh_argument(x[i]));
    const Compute sech_squared = Compute(1) - tanh_u * tanh_u;
    const Compute u_derivative = sqrt_two_over_pi * (Compute(1) + Compute(3) * cubic * x[i] * x[i]);
    gradients[i] = Compute(0.5) * (Compute(1) + tanh_u) + Compute(0.5) * x[i] * sech_squared * u_derivative;
  }
}

// dinp += local gradient · dout over n stored elements, rounded once.
template <class S>
void accumulate_chunk(S* dinp, const ComputeType<S>* local_gradients, const S* dout, std::int64_t n) {
  using Compute = ComputeType<S>;
  const ComputeView<S> output_gradients(dout, n);
  const ComputeTarget<S> input_gradients(dinp, n, /*keep_contents=*/true);
  const Compute* dy = output_gradients.data();
  Compute* dx = input_gradients.data();
#pragma omp simd
  for (std::int64_t i = 0; i < n; ++i) dx[i] += local_gradients[i] * dy[i];
  input_gradients.store();
}

// Every bit pattern of S, `start` onwards, as n stored values: the inputs a table is made of.
template <class S>
void bit_patterns(S* patterns, std::int64_t start, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) patterns[i].bits = static_cast<std::uint16_t>(start + i);
}

// table[bits] = f(the S with those bits) for every pattern, f(out, inputs, n) run a chunk at a time on the pool.
template <class S, class Value, class Function>
void tabulate(Value* table, const Function& function) {
  parallel_chunks(kBitPatterns, [&](std::int64_t start, std::int64_t n) {
    S patterns[kChunkSize];
    bit_patterns(patterns, start, n);
    function(table + start, patterns, n);
  });
}

}  // namespace

template <class S>
void gelu_forward(S* out, const S* inp, std::int64_t count) {
  if constexpr (kIsReducedPrecision<S>) {
    if (count >= kSmallestTabulated) {
      const Scratch<S> table(kBitPatterns, BufferContents::Uninitialized);
      tabulate<S>(table.data(), gelu_chunk<S>);
      parallel_chunks(count, [&](std::int64_t start, std::int64_t n) {
        for (std::int64_t i = start; i < start + n; ++i) out[i] = table[inp[i].bits];
      });
      return;
    }
  }
  parallel_chunks(count, [&](std::int64_t start, std::int64_t n) { gelu_chunk(out + start, inp + start, n); });
}

template <class S>
void gelu_backward(S* dinp, const S* inp, const S* dout, std::int64_t count) {
  using Compute = ComputeType<S>;
  if constexpr (kIsReducedPrecision<S>) {
    if (count >= kSmallestTabulated) {
      const Scratch<Compute> table(kBitPatterns, BufferContents::Uninitialized);
      tabulate<S>(table.data(), local_gradient_chunk<S>);
      parallel_chunks(count, [&](std::int64_t start, std::int64_t n) {
        Compute local_gradients[kChunkSize];
        for (std::int64_t i = 0; i < n; ++i) local_gradients[i] = table[inp[start + i].bits];
        accumulate_chunk(dinp + start, local_gradients, dout + start, n);
      });
      return;
    }
  }
  parallel_chunks(count, [&](std::int64_t start, std::int64_t n) {
    Compute local_gradients[kChunkSize];
    local_gradient_chunk(local_gradients, inp + start, n);
    accumulate_chunk(dinp + start, local_gradients, dout + start, n);
  });
}

#define LADDER_INSTANTIATE_GELU(S)                           \
  template void gelu_forward<S>(S*, const S*, std::int64_t); \
  template void gelu_backward<S>(S*, const S*, const S*, std::int64_t);
LADDER_FOR_EACH_STORAGE_TYPE(LADDER_INSTANTIATE_GELU)

}  // namespace ladder::ops::cpu
