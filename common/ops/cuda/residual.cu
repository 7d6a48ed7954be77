// The residual connection on the GPU: one addition per element forward, the same gradient to both inputs backward.
// Each result is a single fp32 addition rounded once, so it equals the CPU's bit for bit.
#include <cstdint>

#include "common/ops/cuda/cuda_ops.hpp"
#include "common/ops/cuda/device_values.cuh"
#include "common/ops/cuda/launch_sizes.cuh"

namespace ladder::ops::cuda {

namespace {

template <class S>
__global__ void residual_forward_kernel(S* out, const S* a, const S* b, std::int64_t count) {
  for (std::int64_t i = grid_stride_start(); i < count; i += grid_stride_step()) {
    out[i] = store_value<S>(load_value(a[i]) + load_value(b[i]));
  }
}

template <class S>
__global__ void residual_backward_kernel(S* da, S* db, const S* dout, std::int64_t count) {
  for (std::int64_t i = grid_stride_start(); i < count; i += grid_stride_step()) {
    // A sum passes its gradient unchanged to both inputs.
    const float gradient = load_value(dout[i]);
    da[i] = store_value<S>(load_value(da[i]) + gradient);
    db[i] = store_value<S>(load_value(db[i]) + gradient);
  }
}

}  // namespace

template <class S>
void residual_forward(S* out, const S* a, const S* b, std::int64_t count) {
  if (count <= 0) return;
  residual_forward_kernel<S><<<grid_stride_blocks(count), kElementwiseThreads>>>(out, a, b, count);
  check_launch("residual_forward_kernel");
}

template <class S>
void residual_backward(S* da, S* db, const S* dout, std::int64_t count) {
  if (count <= 0) return;
  residual_backward_kernel<S><<<grid_stride_blocks(count), kElementwiseThreads>>>(da, db, dout, count);
  check_launch("residual_backward_kernel");
}

#define LADDER_INSTANTIATE_CUDA_RESIDUAL(S)                                \
  template void residual_forward<S>(S*, const S*, const S*, std::int64_t); \
  template void residual_backward<S>(S*, S*, const S*, std::int64_t);
LADDER_FOR_EACH_CUDA_STORAGE_TYPE(LADDER_INSTANTIATE_CUDA_RESIDUAL)

}  // namespace ladder::ops::cuda
