// How many threads the CPU path's GEMMs use: OpenBLAS owns the only thread pool on the CPU path.
#include <cblas.h>

#include "common/error.hpp"
#include "common/ops/ops.hpp"

namespace ladder::ops {

void set_cpu_threads(int threads) {
  LADDER_CHECK(threads >= 0, "thread count ", threads, " must be 0 (all cores) or positive");
  if (threads > 0) openblas_set_num_threads(threads);
}

}  // namespace ladder::ops
