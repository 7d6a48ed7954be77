// Stage 02's training step under the benchmark harness: stage 01's recipe with everything in fp16 (the CPU
// emulates it exactly, so here it measures the cost of rounding every stored value; on a GPU, fp16's speed).
#include "02_fp16_naive/fp16_training.hpp"
#include "bench/step_benchmark.hpp"

namespace ladder::bench {
namespace {

[[maybe_unused]] const bool registered =
    register_stage_benchmarks("stage02", make_plain_training<stage02::Fp16Training>, plain_step<stage02::Fp16Training>);

}  // namespace
}  // namespace ladder::bench
