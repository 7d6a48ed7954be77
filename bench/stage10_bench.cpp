// Stage 10 under the benchmark harness: a frozen bf16 base (here the seed's weights: a trained base would cost
// the same per step) with LoRA adapters on q and v at r = 8, trained with stage 05's recipe.
#include <memory>

#include "10_lora/lora_training.hpp"
#include "bench/step_benchmark.hpp"

namespace ladder::bench {
namespace {

std::unique_ptr<stage10::LoraTraining> make_lora_training(const StepWorkload& workload) {
  auto training = std::make_unique<stage10::LoraTraining>(workload.config, AdamWConfig{}, stage10::LoraSettings{},
                                                          kBenchmarkSeed, workload.batch_size,
                                                          workload.sequence_length, workload.device);
  training->model.initialize(kBenchmarkSeed);
  return training;
}

// The recipe of 10_lora/main.cpp, without the logging, the evaluations and the merge.
void lora_step(stage10::LoraTraining& training, const Batch& batch, double learning_rate) {
  training.model.forward(batch);
  training.adapters.zero_gradients();
  training.model.backward();
  training.step(learning_rate);
}

[[maybe_unused]] const bool registered =
    register_stage_benchmarks("stage10", make_lora_training, lora_step);

}  // namespace
}  // namespace ladder::bench
