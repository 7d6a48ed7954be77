// The error checks of cuda_check.hpp: one place that turns a CUDA status into a message a user can act on.
#include <cstdlib>
#include <cstring>

#include "common/ops/cuda/cuda_check.hpp"

namespace ladder::ops::cuda {

void check_cuda(cudaError_t status, const char* what) {
  if (status != cudaSuccess) {
    throw LadderError(make_message("CUDA error in ", what, ": ", cudaGetErrorName(status), " (",
                                   cudaGetErrorString(status), ")"));
  }
}

void check_cublas(cublasStatus_t status, const char* what) {
  if (status != CUBLAS_STATUS_SUCCESS) {
    throw LadderError(make_message("cuBLAS error in ", what, ": status ", static_cast<int>(status)));
  }
}

namespace {
bool synchronous_launches() {
  static const bool enabled = [] {
    const char* value = std::getenv("LADDER_CUDA_SYNC");
    return value != nullptr && std::strcmp(value, "0") != 0 && value[0] != '\0';
  }();
  return enabled;
}
}  // namespace

void check_launch(const char* kernel) {
  check_cuda(cudaGetLastError(), kernel);
  if (synchronous_launches()) check_cuda(cudaDeviceSynchronize(), kernel);
}

}  // namespace ladder::ops::cuda
