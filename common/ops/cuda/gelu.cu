// GELU in GPT-2's tanh form on the GPU, with the same formulas (and the same tanh through one exp) as
// ops/cpu/gelu.cpp, so the two devices differ only by the last bits of expf.
#include <cstdint>

#include "common/ops/cuda/cuda_ops.hpp"
#include "common/ops/cuda/device_values.cuh"
#include "common/ops/cuda/launch_sizes.cuh"

namespace ladder::ops::cuda {

namespace {

// sqrt(2/π) and the cubic coefficient of the approximation, rounded to float as the CPU rounds them.
constexpr float kSqrtTwoOverPi = static_cast<float>(0.79788456080286535587989211986876);
constexpr float kCubicCoefficient = static_cast<float>(0.044715);

// tanh(u) = sign(u)·(1 - 2/(e^{2|u|} + 1)), the CPU's form; e^{2|u|} overflowing to inf gives exactly ±1.
__device__ __forceinline__ float gelu_tanh(float u) {
  const float magnitude = 1.0f - 2.0f / (expf(2.0f * fabsf(u)) + 1.0f);
  return copysignf(magnitude, u);
}

// u(x) = √(2/π)·(x + 0.044715·x³), the argument of the tanh.
__device__ __forceinline__ float tanh_argument(float x) {
  return kSqrtTwoOverPi * (x + kCubicCoefficient * x * x * x);
}

template <class S>
__global__ void gelu_forward_kernel(S* out, const S* inp, std::int64_t count) {
  for (std::int64_t i = grid_stride_start(); i < count; i += grid_stride_step()) {
    const float x = load_value(inp[i]);
    out[i] = store_value<S>(0.5f * x * (1.0f + gelu_tanh(tanh_argument(x))));
  }
}

template <class S>
__global__ void gelu_backward_kernel(S* dinp, const S* inp, const S* dout, std::int64_t count) {
  for (std::int64_t i = grid_stride_start(); i < count; i += grid_stride_step()) {
    const float x = load_value(inp[i]);
    const float tanh_u = gelu_tanh(tanh_argument(x));
    // d/dx of 0.5·x·(1 + tanh u(x)) = 0.5·(1 + tanh u) + 0.5·x·sech²(u)·u'(x), with sech² = 1 - tanh² (finite
    // for every x, where 1/cosh² would overflow).
    const float sech_squared = 1.0f - tanh_u * tanh_u;
    const float u_derivative = kSqrtTwoOverPi * (1.0f + 3.0f * kCubicCoefficient * x * x);
    const float local_gradient = 0.5f * (1.0f + tanh_u) + 0.5f * x * sech_squared * u_derivative;
    dinp[i] = store_value<S>(load_value(dinp[i]) + local_gradient * load_value(dout[i]));
  }
}

}  // namespace

template <class S>
void gelu_forward(S* out, const S* inp, std::int64_t count) {
  if (count <= 0) return;
  gelu_forward_kernel<S><<<grid_stride_blocks(count), kElementwiseThreads>>>(out, inp, count);
  check_launch("gelu_forward_kernel");
}

template <class S>
void gelu_backward(S* dinp, const S* inp, const S* dout, std::int64_t count) {
  if (count <= 0) return;
  gelu_backward_kernel<S><<<grid_stride_blocks(count), kElementwiseThreads>>>(dinp, inp, dout, count);
  check_launch("gelu_backward_kernel");
}

#define LADDER_INSTANTIATE_CUDA_GELU(S)                      \
  template void gelu_forward<S>(S*, const S*, std::int64_t); \
  template void gelu_backward<S>(S*, const S*, const S*, std::int64_t);
LADDER_FOR_EACH_CUDA_STORAGE_TYPE(LADDER_INSTANTIATE_CUDA_GELU)

}  // namespace ladder::ops::cuda
