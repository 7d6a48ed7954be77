// Inverted dropout on the GPU: each thread regenerates its elements' mask bits from (seed, index) exactly as
// ops/cpu/dropout.cpp does, so both devices drop the same elements and scale in fp32 the same way.
#include <cstdint>

#include "common/ops/cuda/cuda_ops.hpp"
#include "common/ops/cuda/device_values.cuh"
#include "common/ops/cuda/launch_sizes.cuh"
#include "common/ops/dropout_mask.hpp"

namespace ladder::ops::cuda {

namespace {

template <class S>
__global__ void dropout_forward_kernel(S* out, const S* inp, std::uint64_t threshold, float scale, std::uint64_t seed,
                                       std::int64_t count) {
  for (std::int64_t i = grid_stride_start(); i < count; i += grid_stride_step()) {
    out[i] = store_value<S>(dropout_keeps(seed, i, threshold) ? load_value(inp[i]) * scale : 0.0f);
  }
}

template <class S>
__global__ void dropout_backward_kernel(S* dinp, const S* dout, std::uint64_t threshold, float scale,
                                        std::uint64_t seed, std::int64_t count) {
  for (std::int64_t i = grid_stride_start(); i < count; i += grid_stride_step()) {
    if (dropout_keeps(seed, i, threshold)) dinp[i] = store_value<S>(load_value(dinp[i]) + load_value(dout[i]) * scale);
  }
}

}  // namespace

template <class S>
void dropout_forward(S* out, const S* inp, std::uint64_t threshold, double keep_scale, std::uint64_t seed,
                     std::int64_t count) {
  if (count <= 0) return;
  dropout_forward_kernel<S><<<grid_stride_blocks(count), kElementwiseThreads>>>(
      out, inp, threshold, static_cast<float>(keep_scale), seed, count);
  check_launch("dropout_forward_kernel");
}

template <class S>
void dropout_backward(S* dinp, const S* dout, std::uint64_t threshold, double keep_scale, std::uint64_t seed,
                      std::int64_t count) {
  if (count <= 0) return;
  dropout_backward_kernel<S><<<grid_stride_blocks(count), kElementwiseThreads>>>(
      dinp, dout, threshold, static_cast<float>(keep_scale), seed, count);
  check_launch("dropout_backward_kernel");
}

#define LADDER_INSTANTIATE_CUDA_DROPOUT(S)                                                                    \
  template void dropout_forward<S>(S*, const S*, std::uint64_t, double, std::uint64_t, std::int64_t);         \
  template void dropout_backward<S>(S*, const S*, std::uint64_t, double, std::uint64_t, std::int64_t);
LADDER_FOR_EACH_CUDA_STORAGE_TYPE(LADDER_INSTANTIATE_CUDA_DROPOUT)

}  // namespace ladder::ops::cuda
