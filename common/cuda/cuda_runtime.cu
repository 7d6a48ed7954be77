// The CUDA half of cuda_runtime.hpp: every runtime call checked, every failure named.
#include <cuda_runtime.h>

#include <cstdio>

#include "common/cuda_runtime.hpp"
#include "common/error.hpp"

namespace ladder {

int cuda_device_count() {
  int count = 0;
  // No driver or no device both mean "no GPU here": report zero rather than fail.
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky error so later calls start clean
    return 0;
  }
  return count;
}

void cuda_select_device(int device) {
  const cudaError_t status = cudaSetDevice(device);
  LADDER_CHECK(status == cudaSuccess, "cudaSetDevice(", device, ") failed: ", cudaGetErrorString(status));
}

void* cuda_allocate_zeroed(std::size_t bytes, const std::string& what) {
  void* pointer = nullptr;
  cudaError_t status = cudaMalloc(&pointer, bytes);
  LADDER_CHECK(status == cudaSuccess, "cudaMalloc of ", bytes, " bytes for ", what, " failed: ", cudaGetErrorString(status));
  status = cudaMemset(pointer, 0, bytes);
  LADDER_CHECK(status == cudaSuccess, "cudaMemset of ", bytes, " bytes for ", what, " failed: ", cudaGetErrorString(status));
  return pointer;
}

void cuda_free(void* pointer) {
  const cudaError_t status = cudaFree(pointer);
  if (status != cudaSuccess) std::fprintf(stderr, "ladder: cudaFree failed: %s\n", cudaGetErrorString(status));
}

void cuda_zero(void* pointer, std::size_t bytes) {
  const cudaError_t status = cudaMemset(pointer, 0, bytes);
  LADDER_CHECK(status == cudaSuccess, "cudaMemset of ", bytes, " bytes failed: ", cudaGetErrorString(status));
}

void cuda_copy(void* destination, const void* source, std::size_t bytes) {
  const cudaError_t status = cudaMemcpy(destination, source, bytes, cudaMemcpyDefault);
  LADDER_CHECK(status == cudaSuccess, "cudaMemcpy of ", bytes, " bytes failed: ", cudaGetErrorString(status));
}

}  // namespace ladder
