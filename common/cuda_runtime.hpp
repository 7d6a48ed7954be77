/// @file cuda_runtime.hpp
/// @brief The few CUDA runtime calls the core needs, callable from plain C++ translation units.
#pragma once

#include <cstddef>
#include <string>

namespace ladder {

/// Number of visible CUDA devices; 0 when none is present or this build has no CUDA.
int cuda_device_count();

/// cudaSetDevice: the GPU this process allocates on and launches to from now on.
void cuda_select_device(int device);

/// cudaMalloc + cudaMemset(0); throws LadderError naming `what` and the CUDA error on failure.
void* cuda_allocate_zeroed(std::size_t bytes, const std::string& what);

/// cudaFree; errors here are reported on stderr, since it runs from destructors.
void cuda_free(void* pointer);

/// cudaMemset(0) of `bytes` device bytes.
void cuda_zero(void* pointer, std::size_t bytes);

/// cudaMemcpy in either direction (kind inferred by the driver from unified addressing).
void cuda_copy(void* destination, const void* source, std::size_t bytes);

}  // namespace ladder
