/// @file cuda_check.hpp
/// @brief Error checks for the CUDA ops: every runtime/cuBLASLt call and every kernel launch, named on failure.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime.h>

#include "common/error.hpp"

namespace ladder::ops::cuda {

/// Throws LadderError naming `what` and the CUDA error unless `status` is cudaSuccess.
void check_cuda(cudaError_t status, const char* what);
/// Throws LadderError naming `what` and the cuBLAS status unless it is CUBLAS_STATUS_SUCCESS.
void check_cublas(cublasStatus_t status, const char* what);
/// After a launch: throws LadderError naming the kernel if the launch failed. With LADDER_CUDA_SYNC=1 in the
/// environment it also waits for the kernel, so an error inside it is reported against its own name.
void check_launch(const char* kernel);

/// Blocks of `threads` needed to cover `count` items (at least one block).
inline unsigned int blocks_for(long long count, int threads) {
  const long long blocks = (count + threads - 1) / threads;
  return static_cast<unsigned int>(blocks > 0 ? blocks : 1);
}

}  // namespace ladder::ops::cuda
