// Softmax cross-entropy on the GPU over a (possibly padded) vocabulary, with ignored rows: one block per row,
// the CPU's formulas (ops/cpu/cross_entropy.cpp) with block-wide max and sum reductions.
#include <cmath>
#include <cstdint>
#include <limits>

#include "common/error.hpp"
#include "common/ops/cuda/cuda_check.hpp"
#include "common/ops/cuda/cuda_ops.hpp"
#include "common/ops/cuda/device_values.cuh"

namespace ladder::ops::cuda {

namespace {

// Threads per row: a 50k-column row gives each about a hundred columns, read with coalesced strides.
constexpr int kCrossEntropyThreads = 512;

// Maximum and Σ exp(x - maximum) over the real (unpadded) columns of one row; every thread gets both.
// The block reductions synchronise the block, so when this returns every thread has finished reading the row.
template <class S>
__device__ void softmax_statistics(const S* row, std::int64_t V, float& maximum, float& exp_sum, float* scratch) {
  float local_maximum = -INFINITY;
  for (std::int64_t v = threadIdx.x; v < V; v += blockDim.x) local_maximum = fmaxf(local_maximum, load_value(row[v]));
  maximum = block_max(local_maximum, scratch);
  float local_sum = 0.0f;
  for (std::int64_t v = threadIdx.x; v < V; v += blockDim.x) local_sum += expf(load_value(row[v]) - maximum);
  exp_sum = block_sum(local_sum, scratch);
}

// A target in [V, ∞) would read outside the row; the host cannot check targets without a copy, so such a row
// gets NaN (loss and gradient), which no training run mistakes for a result.
__device__ __forceinline__ bool target_out_of_range(std::int32_t target, std::int64_t V) { return target >= V; }

// The branches on the target are uniform over the block (one row per block), so returning early never leaves
// a thread waiting at a barrier.
template <class S>
__global__ void softmax_cross_entropy_forward_kernel(float* losses, const S* logits, const std::int32_t* targets,
                                                     std::int64_t Vp, std::int64_t V) {
  __shared__ float scratch[32];
  const std::int64_t n = blockIdx.x;
  const std::int32_t target = targets[n];
  if (target < 0 || target_out_of_range(target, V)) {
    if (threadIdx.x == 0) losses[n] = target < 0 ? 0.0f : NAN;
    return;
  }
  const S* row = logits + n * Vp;
  float maximum;
  float exp_sum;
  softmax_statistics(row, V, maximum, exp_sum, scratch);
  // -log softmax[target] = log Σ exp(x - max) - (x[target] - max): the difference is small and (nearly) exact,
  // where max + log Σ would round at the magnitude of the logits.
  if (threadIdx.x == 0) losses[n] = logf(exp_sum) - (load_value(row[target]) - maximum);
}

// dlogits may be the logits themselves: the statistics are complete (every thread past the block reductions)
// before the first write, and each element is then read by the same thread just before it is overwritten.
template <class S>
__global__ void softmax_cross_entropy_backward_kernel(S* dlogits, const S* logits, const std::int32_t* targets,
                                                      std::int64_t Vp, std::int64_t V, float row_dloss) {
  __shared__ float scratch[32];
  const std::int64_t n = blockIdx.x;
  const std::int32_t target = targets[n];
  const S* row = logits + n * Vp;
  S* drow = dlogits + n * Vp;
  if (target < 0 || target_out_of_range(target, V)) {
    const S fill = store_value<S>(target < 0 ? 0.0f : NAN);
    for (std::int64_t v = threadIdx.x; v < Vp; v += blockDim.x) drow[v] = fill;
    return;
  }
  float maximum;
  float exp_sum;
  softmax_statistics(row, V, maximum, exp_sum, scratch);
  const float inverse_sum = 1.0f / exp_sum;
  for (std::int64_t v = threadIdx.x; v < V; v += blockDim.x) {
    const float probability = expf(load_value(row[v]) - maximum) * inverse_sum;
    const float indicator = v == target ? 1.0f : 0.0f;
    drow[v] = store_value<S>((probability - indicator) * row_dloss);
  }
  // Padding columns are not part of the softmax: their gradient is 0.
  for (std::int64_t v = V + threadIdx.x; v < Vp; v += blockDim.x) drow[v] = store_value<S>(0.0f);
}

// One block per row: the grid's x dimension holds up to 2^31 - 1 blocks.
void check_row_count(std::int64_t N, const char* op) {
  LADDER_CHECK(N <= std::numeric_limits<std::int32_t>::max(), op, ": ", N,
               " rows exceed the grid's limit of 2^31 - 1 blocks");
}

}  // namespace

template <class S>
void softmax_cross_entropy_forward(float* losses, const S* logits, const std::int32_t* targets, std::int64_t N,
                                   std::int64_t Vp, std::int64_t V) {
  if (N <= 0) return;
  check_row_count(N, "softmax_cross_entropy_forward");
  softmax_cross_entropy_forward_kernel<S>
      <<<static_cast<unsigned int>(N), kCrossEntropyThreads>>>(losses, logits, targets, Vp, V);
  check_launch("softmax_cross_entropy_forward_kernel");
}

template <class S>
void softmax_cross_entropy_backward(S* dlogits, const S* logits, const std::int32_t* targets, std::int64_t N,
                                    std::int64_t Vp, std::int64_t V, double dloss) {
  if (N <= 0) return;
  check_row_count(N, "softmax_cross_entropy_backward");
  // dloss is rounded to fp32 once, as the CPU rounds it to its compute type.
  softmax_cross_entropy_backward_kernel<S><<<static_cast<unsigned int>(N), kCrossEntropyThreads>>>(
      dlogits, logits, targets, Vp, V, static_cast<float>(dloss));
  check_launch("softmax_cross_entropy_backward_kernel");
}

#define LADDER_INSTANTIATE_CUDA_CROSS_ENTROPY(S)                                                                   \
  template void softmax_cross_entropy_forward<S>(float*, const S*, const std::int32_t*, std::int64_t, std::int64_t, \
                                                 std::int64_t);                                                    \
  template void softmax_cross_entropy_backward<S>(S*, const S*, const std::int32_t*, std::int64_t, std::int64_t,    \
                                                  std::int64_t, double);
LADDER_FOR_EACH_CUDA_STORAGE_TYPE(LADDER_INSTANTIATE_CUDA_CROSS_ENTROPY)

}  // namespace ladder::ops::cuda
