/// @file cublaslt_handle.hpp
/// @brief The process-wide cuBLASLt handle and its GEMM workspace, both created on first use.
///
/// Internal to the CUDA ops. Both are created lazily so that a CPU-only run never touches the GPU, and both
/// live until the process exits: freeing them from a static destructor would race the CUDA runtime's own
/// teardown, so they are deliberately never destroyed. They belong to the device that was current at first
/// use (one GPU per process, as every stage runs).
#pragma once

#include <cublasLt.h>

#include <cstddef>

#include "common/memory.hpp"
#include "common/ops/cuda/cuda_check.hpp"

namespace ladder::ops::cuda {

/// Bytes of scratch space cuBLASLt may use per GEMM (split-K and stream-K algorithms want some).
inline constexpr std::size_t kCublasLtWorkspaceBytes = std::size_t{32} << 20;

/// The one cuBLASLt handle of the process.
inline cublasLtHandle_t cublaslt_handle() {
  static const cublasLtHandle_t handle = [] {
    cublasLtHandle_t created = nullptr;
    check_cublas(cublasLtCreate(&created), "cublasLtCreate");
    return created;
  }();
  return handle;
}

/// The GEMM workspace, accounted as Workspace memory. Ops may also borrow it as stream-ordered scratch
/// between GEMMs: everything runs on the default stream, so no two users ever overlap.
inline Buffer& cublaslt_workspace() {
  static Buffer* const workspace = new Buffer(kCublasLtWorkspaceBytes, MemoryCategory::Workspace, Device::CUDA);
  return *workspace;
}

}  // namespace ladder::ops::cuda
