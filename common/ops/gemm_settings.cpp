// The GEMMs' global settings: how many threads the CPU's use (OpenBLAS owns the only thread pool on the CPU
// path), and whether the GPU's fp32 GEMMs may use TF32.
#include <cblas.h>

#include "common/error.hpp"
#include "common/ops/cuda/cuda_ops.hpp"
#include "common/ops/ops.hpp"

namespace ladder::ops {

void set_cpu_threads(int threads) {
  LADDER_CHECK(threads >= 0, "thread count ", threads, " must be 0 (all cores) or positive");
  if (threads > 0) openblas_set_num_threads(threads);
}

void set_tf32(bool enabled) {
#ifdef LADDER_WITH_CUDA
  cuda::set_tf32(enabled);
#else
  LADDER_CHECK(!enabled, "--tf32 needs the GPU, but this build of ladder has no CUDA");
#endif
}

}  // namespace ladder::ops
