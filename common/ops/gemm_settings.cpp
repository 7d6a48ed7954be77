// The GEMMs' global settings: how many threads the CPU ops use (the worker pool is the only thread pool on the
// CPU path; OpenBLAS runs single-threaded inside it), and whether the GPU's fp32 GEMMs may use TF32.
#include "common/error.hpp"
#include "common/ops/cpu/gemm.hpp"
#include "common/ops/cpu/worker_pool.hpp"
#include "common/ops/cuda/cuda_ops.hpp"
#include "common/ops/ops.hpp"

namespace ladder::ops {

void set_cpu_threads(int threads) {
  LADDER_CHECK(threads >= 0, "thread count ", threads, " must be 0 (all cores) or positive");
  cpu::set_worker_threads(threads);
}

std::string cpu_gemm_description() { return cpu::gemm_description(); }

void set_tf32(bool enabled) {
#ifdef LADDER_WITH_CUDA
  cuda::set_tf32(enabled);
#else
  LADDER_CHECK(!enabled, "--tf32 needs the GPU, but this build of ladder has no CUDA");
#endif
}

}  // namespace ladder::ops
