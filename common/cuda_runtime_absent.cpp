// Built only when CUDA is off: the runtime calls answer "no GPU" and refuse device memory clearly.
#include "common/cuda_runtime.hpp"
#include "common/error.hpp"

namespace ladder {

int cuda_device_count() { return 0; }

void cuda_select_device(int device) {
  throw LadderError(make_message("cannot select GPU ", device, ": this build of ladder has no CUDA"));
}

void* cuda_allocate_zeroed(std::size_t bytes, const std::string& what) {
  throw LadderError(make_message("cannot allocate ", bytes, " bytes of GPU memory for ", what,
                                 ": this build of ladder has no CUDA (configure with -DLADDER_CUDA=ON)"));
}

void cuda_free(void*) {}

void cuda_zero(void*, std::size_t bytes) {
  throw LadderError(make_message("cannot zero ", bytes, " bytes of GPU memory: this build of ladder has no CUDA"));
}

void cuda_copy(void*, const void*, std::size_t bytes) {
  throw LadderError(make_message("cannot copy ", bytes, " bytes to or from the GPU: this build of ladder has no CUDA"));
}

}  // namespace ladder
