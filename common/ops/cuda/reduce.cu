// Whole-span ops on the GPU: the double-precision sum of squares behind the global gradient norm, and the
// scale / accumulate / convert that gradients and mixed-precision copies are made of.
#include <algorithm>
#include <cstdint>

#include "common/memory.hpp"
#include "common/ops/cuda/cuda_ops.hpp"
#include "common/ops/cuda/device_scratch.hpp"
#include "common/ops/cuda/device_values.cuh"
#include "common/ops/cuda/launch_sizes.cuh"

namespace ladder::ops::cuda {

namespace {

// The sum of squares runs on a fixed grid (it depends only on the count), so the summation order, and with it
// the result, is the same on every run and every GPU.
constexpr int kSumThreads = 256;
constexpr long long kMaxSumBlocks = 1024;

// Double sum over a block (blockDim.x a multiple of 32, at most 1024); the total is valid in thread 0.
__device__ double block_sum_double(double value, double* scratch) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  for (int offset = 16; offset > 0; offset /= 2) value += __shfl_xor_sync(0xffffffffu, value, offset);
  if (lane == 0) scratch[warp] = value;
  __syncthreads();
  if (warp == 0) {
    value = lane < warps ? scratch[lane] : 0.0;
    for (int offset = 16; offset > 0; offset /= 2) value += __shfl_xor_sync(0xffffffffu, value, offset);
  }
  return value;
}

// Each block writes the double sum of squares of its grid-stride share of the span to partials[block].
template <class S>
__global__ void sum_of_squares_partials_kernel(double* partials, const S* values, std::int64_t count) {
  __shared__ double scratch[32];
  double total = 0.0;
  for (std::int64_t i = grid_stride_start(); i < count; i += grid_stride_step()) {
    const double value = static_cast<double>(load_value(values[i]));
    total += value * value;
  }
  total = block_sum_double(total, scratch);
  if (threadIdx.x == 0) partials[blockIdx.x] = total;
}

// One block adds the per-block partials, in a fixed order, into *total.
__global__ void sum_partials_kernel(double* total, const double* partials, int partial_count) {
  __shared__ double scratch[32];
  double sum = 0.0;
  for (int i = threadIdx.x; i < partial_count; i += blockDim.x) sum += partials[i];
  sum = block_sum_double(sum, scratch);
  if (threadIdx.x == 0) *total = sum;
}

template <class S>
__global__ void scale_kernel(S* values, float factor, std::int64_t count) {
  for (std::int64_t i = grid_stride_start(); i < count; i += grid_stride_step()) {
    values[i] = store_value<S>(load_value(values[i]) * factor);
  }
}

template <class Destination, class Source>
__global__ void accumulate_kernel(Destination* destination, const Source* source, std::int64_t count) {
  for (std::int64_t i = grid_stride_start(); i < count; i += grid_stride_step()) {
    destination[i] = store_value<Destination>(load_value(destination[i]) + load_value(source[i]));
  }
}

// Every source value is exact in fp32, so going through fp32 rounds only once, into the destination type.
template <class Destination, class Source>
__global__ void convert_kernel(Destination* destination, const Source* source, std::int64_t count) {
  for (std::int64_t i = grid_stride_start(); i < count; i += grid_stride_step()) {
    destination[i] = store_value<Destination>(load_value(source[i]));
  }
}

}  // namespace

template <class S>
double sum_of_squares(const S* values, std::int64_t count) {
  if (count <= 0) return 0.0;
  const int blocks = static_cast<int>(std::min<long long>(blocks_for(count, kSumThreads), kMaxSumBlocks));
  // partials[0, blocks) then the total: one workspace allocation, one copy back.
  double* partials = static_cast<double*>(device_scratch(static_cast<std::size_t>(blocks + 1) * sizeof(double)));
  double* total = partials + blocks;
  sum_of_squares_partials_kernel<S><<<blocks, kSumThreads>>>(partials, values, count);
  check_launch("sum_of_squares_partials_kernel");
  sum_partials_kernel<<<1, kSumThreads>>>(total, partials, blocks);
  check_launch("sum_partials_kernel");
  double result = 0.0;
  check_cuda(cudaMemcpy(&result, total, sizeof(double), cudaMemcpyDeviceToHost), "sum_of_squares: copy to host");
  return result;
}

template <class S>
void scale(S* values, double factor, std::int64_t count) {
  if (count <= 0) return;
  // The factor is rounded to fp32 once, as the CPU rounds it to its compute type.
  scale_kernel<S><<<grid_stride_blocks(count), kElementwiseThreads>>>(values, static_cast<float>(factor), count);
  check_launch("scale_kernel");
}

template <class Destination, class Source>
void accumulate(Destination* destination, const Source* source, std::int64_t count) {
  if (count <= 0) return;
  accumulate_kernel<Destination, Source>
      <<<grid_stride_blocks(count), kElementwiseThreads>>>(destination, source, count);
  check_launch("accumulate_kernel");
}

template <class Destination, class Source>
void convert(Destination* destination, const Source* source, std::int64_t count) {
  if (count <= 0) return;
  convert_kernel<Destination, Source><<<grid_stride_blocks(count), kElementwiseThreads>>>(destination, source, count);
  check_launch("convert_kernel");
}

#define LADDER_INSTANTIATE_CUDA_REDUCE(S)                    \
  template double sum_of_squares<S>(const S*, std::int64_t); \
  template void scale<S>(S*, double, std::int64_t);
LADDER_FOR_EACH_CUDA_STORAGE_TYPE(LADDER_INSTANTIATE_CUDA_REDUCE)

// accumulate and convert take every (destination, source) pair of the three storage types.
#define LADDER_INSTANTIATE_CUDA_PAIR(D, S)                    \
  template void accumulate<D, S>(D*, const S*, std::int64_t); \
  template void convert<D, S>(D*, const S*, std::int64_t);
#define LADDER_INSTANTIATE_CUDA_PAIRS_INTO(D)     \
  LADDER_INSTANTIATE_CUDA_PAIR(D, float)          \
  LADDER_INSTANTIATE_CUDA_PAIR(D, ::ladder::Half) \
  LADDER_INSTANTIATE_CUDA_PAIR(D, ::ladder::BFloat16)
LADDER_FOR_EACH_CUDA_STORAGE_TYPE(LADDER_INSTANTIATE_CUDA_PAIRS_INTO)

}  // namespace ladder::ops::cuda
