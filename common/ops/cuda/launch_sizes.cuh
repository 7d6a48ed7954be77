/// @file launch_sizes.cuh
/// @brief Launch shapes shared by the elementwise and row-wise CUDA kernels, and 64-bit grid-stride indexing.
///
/// Elementwise kernels walk their span with a grid-stride loop: the grid is capped (a legal, GPU-filling size)
/// and each thread takes every (grid size)-th element, so counts past 2^31 need no special case.
#pragma once

#include <algorithm>
#include <cstdint>

#include "common/ops/cuda/cuda_check.hpp"

namespace ladder::ops::cuda {

/// Threads per block of the elementwise kernels.
inline constexpr int kElementwiseThreads = 256;
/// Threads per block of the kernels that give one warp to each row.
inline constexpr int kRowWarpThreads = 256;
/// Rows handled by one block of those kernels (one per warp).
inline constexpr int kRowsPerBlock = kRowWarpThreads / 32;
/// Most blocks of a grid-stride launch: 2^16 blocks of 256 threads is far more than any GPU runs at once.
inline constexpr long long kMaxGridStrideBlocks = 1 << 16;

/// Blocks of kElementwiseThreads for a grid-stride loop over `count` elements (at least one).
inline unsigned int grid_stride_blocks(std::int64_t count) {
  return static_cast<unsigned int>(std::min<long long>(blocks_for(count, kElementwiseThreads), kMaxGridStrideBlocks));
}

/// This thread's first element in a grid-stride loop (64-bit: spans may exceed 2^31 elements).
__device__ __forceinline__ std::int64_t grid_stride_start() {
  return static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}

/// Distance between a thread's consecutive elements in a grid-stride loop: the number of threads in the grid.
__device__ __forceinline__ std::int64_t grid_stride_step() { return static_cast<std::int64_t>(gridDim.x) * blockDim.x; }

}  // namespace ladder::ops::cuda
