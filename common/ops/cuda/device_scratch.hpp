/// @file device_scratch.hpp
/// @brief One reusable block of GPU scratch memory for the ops' temporary arrays (partial sums, index lists).
#pragma once

#include <cstddef>

namespace ladder::ops::cuda {

/// At least `bytes` of device memory, accounted as Workspace, valid until the next call. The block only grows,
/// so after the first step no op allocates: a cudaMalloc/cudaFree per call would synchronise the GPU each time.
/// Reuse is safe because every op runs on the default stream, so one op's kernels finish before the next op's
/// start. An op takes one scratch block per call (carve several arrays out of it if it needs them).
void* device_scratch(std::size_t bytes);

}  // namespace ladder::ops::cuda
