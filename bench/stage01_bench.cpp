// Stage 01's training step under the benchmark harness: the fp32 baseline every later rung is measured against.
// A later stage's file is this one with its own state and the step of its main.cpp.
#include <memory>

#include "01_fp32_baseline/fp32_training.hpp"
#include "bench/step_benchmark.hpp"

namespace ladder::bench {
namespace {

std::unique_ptr<stage01::Fp32Training> make_fp32_training(const StepWorkload& workload) {
  auto training = std::make_unique<stage01::Fp32Training>(workload.config, AdamWConfig{}, workload.batch_size,
                                                          workload.sequence_length);
  training->model.initialize(kBenchmarkSeed);
  return training;
}

// The recipe of 01_fp32_baseline/main.cpp, without the logging.
void fp32_step(stage01::Fp32Training& training, const Batch& batch, double learning_rate) {
  GPT& model = training.model;
  model.forward(batch);
  model.zero_gradients();
  model.backward();
  training.optimizer.step(model.parameters(), model.gradients(), learning_rate);
}

[[maybe_unused]] const bool registered = register_stage_benchmarks("stage01", make_fp32_training, fp32_step);

}  // namespace
}  // namespace ladder::bench
