// Stage 01's training step under the benchmark harness: the fp32 baseline every later rung is measured against.
// A later stage's file registers its own state and the step of its main.cpp the same way.
#include "01_fp32_baseline/fp32_training.hpp"
#include "bench/step_benchmark.hpp"

namespace ladder::bench {
namespace {

[[maybe_unused]] const bool registered =
    register_stage_benchmarks("stage01", make_plain_training<stage01::Fp32Training>, plain_step<stage01::Fp32Training>);

}  // namespace
}  // namespace ladder::bench
