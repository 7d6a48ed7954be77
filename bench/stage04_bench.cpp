// Stage 04's training step under the benchmark harness: stage 03 plus the loss scale and the overflow check.
#include <memory>

#include "04_loss_scaling/loss_scaler.hpp"
#include "bench/step_benchmark.hpp"

namespace ladder::bench {
namespace {

struct LossScaledTraining {
  explicit LossScaledTraining(const StepWorkload& workload)
      : training(workload.config, AdamWConfig{}, workload.batch_size, workload.sequence_length, DType::F16,
                 workload.device) {
    training.model.initialize(kBenchmarkSeed);
    training.master.copy_from(training.model);
  }
  stage03::MasterWeightsTraining training;
  stage04::DynamicLossScaler scaler;
};

// The recipe of 04_loss_scaling/main.cpp, without the logging and the diagnostics.
void loss_scaled_step(LossScaledTraining& state, const Batch& batch, double learning_rate) {
  GPT& model = state.training.model;
  model.forward(batch);
  model.zero_gradients();
  model.backward(state.scaler.scale());
  const bool found_inf = stage04::has_inf_or_nan(model.gradients());
  if (!found_inf) state.training.master.step(state.training.optimizer, model, learning_rate, 1.0 / state.scaler.scale());
  state.scaler.update(found_inf);
}

[[maybe_unused]] const bool registered = register_stage_benchmarks(
    "stage04", [](const StepWorkload& workload) { return std::make_unique<LossScaledTraining>(workload); },
    loss_scaled_step);

}  // namespace
}  // namespace ladder::bench
