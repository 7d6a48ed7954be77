// The base stage 10 adapts: a checkpoint from --base, or one trained here first with stage 05's recipe.
#include <memory>
#include <optional>

#include "05_bf16/bf16_training.hpp"
#include "10_lora/lora_run.hpp"
#include "common/error.hpp"
#include "common/ops/ops.hpp"
#include "common/train/evaluation.hpp"
#include "common/train/model_checkpoint.hpp"

namespace ladder::stage10 {

namespace {

// Exactly what `05_bf16 --data <base-data> --steps <base-steps>` does with the run's model, batch and seed flags and
// stage 05's own defaults for the rest, so the base is the one that command would save (a test checks the bits).
void train_base_with_stage05_recipe(GPT& frozen, const LoraOptions& lora, Experiment& experiment) {
  const TrainOptions& run = experiment.options();
  const TrainOptions stage05;  // stage 05's optimisation defaults, not the adapters' learning rate
  std::unique_ptr<DataSource> data =
      make_data_source(lora.base_data, {0, 1, run.batch_size, experiment.sequence_length()}, run.seed);
  LADDER_CHECK(data->vocab_size() == frozen.config().vocab_size, "--base-data ", lora.base_data, " has ",
               data->vocab_size(), " tokens but --data ", run.data, " has ", frozen.config().vocab_size,
               ": a base must share the task's vocabulary");
  const AdamWConfig adamw{stage05.beta1, stage05.beta2, stage05.epsilon, stage05.weight_decay, stage05.gradient_clip};
  const LearningRateSchedule schedule{stage05.learning_rate, stage05.min_learning_rate_ratio, stage05.warmup_steps,
                                      lora.base_steps};
  {
    stage05::Bf16Training training(frozen.config(), adamw, run.batch_size, experiment.sequence_length(),
                                   frozen.device());
    GPT& model = training.model;
    model.initialize(run.seed);
    training.master.copy_from(model);
    for (std::int64_t step = 0; step < lora.base_steps; ++step) {
      const double loss = model.forward(data->train_batch(step));
      model.zero_gradients();
      model.backward();
      training.master.step(training.optimizer, model, schedule.at(step));
      if ((step + 1) % run.log_every == 0 || step + 1 == lora.base_steps) {
        experiment.log().info(make_message("10_lora | base | step ", step + 1, "/", lora.base_steps, " | loss ", loss));
      }
    }
    const EvalMetrics base = held_out_metrics(model, *data, run.eval_batches, run.eval_problems, lora.base_steps);
    experiment.log().info(make_message("10_lora | base | held-out loss ", base.loss, " | accuracy on ",
                                       lora.base_data, " ", 100 * base.accuracy.value_or(0), "%"));
    ops::copy(frozen.parameters(), model.parameters());
  }
  // The base's full training state is gone; the memory table should show the LoRA run's own peaks.
  memory_accountant().reset_peaks();
}

}  // namespace

void prepare_base(GPT& model, const LoraOptions& lora, Experiment& experiment) {
  if (experiment.device() == Device::Meta) {
    // A plan holds no values: there is nothing to read a base into or to train one with.
    experiment.log().info("10_lora | meta device: the base is neither read nor trained; its bf16 weights are accounted");
    return;
  }
  if (!lora.base_path.empty()) {
    try {
      load_model_checkpoint(lora.base_path, model);
    } catch (const LadderError& error) {
      throw LadderError(make_message("--base ", lora.base_path, ": ", error.what()));
    }
    experiment.log().info("10_lora | base loaded from " + lora.base_path + ", frozen in bf16");
    return;
  }
  experiment.log().info(make_message(
      "10_lora | no --base given: training one first with stage 05's recipe (", lora.base_steps, " steps of ",
      lora.base_data, "). To train it once and reuse it: 05_bf16 --data ", lora.base_data, " --steps ",
      lora.base_steps, " --save base.safetensors, then 10_lora --base base.safetensors (same --model flags)"));
  train_base_with_stage05_recipe(model, lora, experiment);
}

EvalMetrics evaluate(GPT& model, const Experiment& experiment, std::int64_t step) {
  return held_out_metrics(model, experiment.data(), experiment.options().eval_batches,
                          experiment.options().eval_problems, step);
}

void keep_base_evaluation(TrainingState& state, EvalMetrics& before) {
  state.add_number("base_eval.loss", [&before] { return before.loss; }, [&before](double loss) { before.loss = loss; });
  // A task without exact answers (text) has no accuracy: kept as -1, which no accuracy is.
  state.add_number(
      "base_eval.accuracy", [&before] { return before.accuracy.value_or(-1.0); },
      [&before](double accuracy) {
        before.accuracy = accuracy < 0 ? std::nullopt : std::optional<double>(accuracy);
      });
}

}  // namespace ladder::stage10
