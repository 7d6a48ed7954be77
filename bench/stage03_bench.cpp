// Stages 03 and 05 under the benchmark harness: fp16 (03) or bf16 (05) forward and backward, fp32 master
// weights and update. Stage 05 is stage 03's state built with bf16, so one step function serves both.
#include <memory>

#include "03_master_weights/master_weights.hpp"
#include "bench/step_benchmark.hpp"

namespace ladder::bench {
namespace {

template <DType working_dtype>
std::unique_ptr<stage03::MasterWeightsTraining> make_master_weights_training(const StepWorkload& workload) {
  auto training = std::make_unique<stage03::MasterWeightsTraining>(
      workload.config, AdamWConfig{}, workload.batch_size, workload.sequence_length, working_dtype, workload.device);
  training->model.initialize(kBenchmarkSeed);
  training->master.copy_from(training->model);
  return training;
}

// The recipe of 03_master_weights/main.cpp (and 05_bf16/main.cpp), without the logging and the diagnostics.
void master_weights_step(stage03::MasterWeightsTraining& training, const Batch& batch, double learning_rate) {
  GPT& model = training.model;
  model.forward(batch);
  model.zero_gradients();
  model.backward();
  training.master.step(training.optimizer, model, learning_rate);
}

[[maybe_unused]] const bool registered_03 =
    register_stage_benchmarks("stage03", make_master_weights_training<DType::F16>, master_weights_step);
[[maybe_unused]] const bool registered_05 =
    register_stage_benchmarks("stage05", make_master_weights_training<DType::BF16>, master_weights_step);

}  // namespace
}  // namespace ladder::bench
