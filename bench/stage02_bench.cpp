// Stage 02's training step under the benchmark harness: everything in fp16 (the CPU emulates it exactly, so
// here it measures the cost of rounding every stored value; on a GPU, fp16's speed).
#include <memory>

#include "02_fp16_naive/fp16_training.hpp"
#include "bench/step_benchmark.hpp"

namespace ladder::bench {
namespace {

std::unique_ptr<stage02::Fp16Training> make_fp16_training(const StepWorkload& workload) {
  auto training = std::make_unique<stage02::Fp16Training>(workload.config, AdamWConfig{}, workload.batch_size,
                                                          workload.sequence_length);
  training->model.initialize(kBenchmarkSeed);
  return training;
}

// The recipe of 02_fp16_naive/main.cpp, without the logging and the diagnostics.
void fp16_step(stage02::Fp16Training& training, const Batch& batch, double learning_rate) {
  GPT& model = training.model;
  model.forward(batch);
  model.zero_gradients();
  model.backward();
  training.optimizer.step(model.parameters(), model.gradients(), learning_rate);
}

[[maybe_unused]] const bool registered = register_stage_benchmarks("stage02", make_fp16_training, fp16_step);

}  // namespace
}  // namespace ladder::bench
