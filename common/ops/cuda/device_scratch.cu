// The ops' shared GPU scratch block (device_scratch.hpp).
#include <mutex>

#include "common/memory.hpp"
#include "common/ops/cuda/device_scratch.hpp"

namespace ladder::ops::cuda {

void* device_scratch(std::size_t bytes) {
  // Never freed: releasing device memory from a static destructor can race the CUDA runtime's own shutdown.
  static Buffer* scratch = new Buffer();
  static std::mutex mutex;
  const std::lock_guard<std::mutex> lock(mutex);
  if (scratch->bytes() < bytes) {
    // Grow by half again, so that a slowly growing request does not reallocate on every call. cudaFree waits
    // for the GPU, so the kernels still reading the old block finish first.
    scratch->release();
    *scratch = Buffer(bytes + bytes / 2, MemoryCategory::Workspace, Device::CUDA);
  }
  return scratch->data();
}

}  // namespace ladder::ops::cuda
