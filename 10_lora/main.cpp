// 10_lora: stage 05's recipe applied to low-rank adapters on a frozen bf16 base (LoRA, Hu et al. 2021).
//
// The lecture's last rung: keep the trained W0 and learn only a low-rank update, h = W0·x + (α/r)·B·A·x.
//   0. a trained base W0, frozen in bf16: no gradient, no master copy, no Adam state (2 bytes a parameter)
//   1. adapters on the chosen weights: A Kaiming-uniform, B zero (so the model starts as the base), fp32 master
//   2. forward in bf16                -> each adapted linear adds (α/r)·(x·Aᵀ)·Bᵀ to x·W0ᵀ + b
//   3. backward in bf16               -> gradients flow through W0 to the adapters; only A and B get one
//   4-6. stage 05's update, on A and B alone: fp32 AdamW on the master, rounded into the bf16 copies
//   7. merge: W0 + (α/r)·B·A into the base and the adapters come off, so inference costs what the base cost
// A few thousand trainable parameters instead of the whole model's, and optimizer memory to match.
#include <cstdint>

#include "10_lora/lora_run.hpp"
#include "common/train/experiment.hpp"
#include "common/train/run_main.hpp"

int main(int argc, char** argv) {
  using namespace ladder;
  return run_main("10_lora", [&] {
    stage10::LoraOptions lora;  // --lora-*, --base, --save-merged; --save and --load name adapter files
    Experiment experiment(stage10::parse_lora_options(argc, argv, lora));
    stage10::LoraTraining training(experiment.model_config(), experiment.adamw_config(), lora.lora,
                                   experiment.options().seed, experiment.options().batch_size,
                                   experiment.sequence_length(), experiment.device());
    GPT& model = training.model;
    EvalMetrics before;                                    // the base's held-out figures, for the closing report
    TrainingState state(model.layout());                   // what a checkpoint holds (--checkpoint-dir, --resume):
    state.add("base_weights", model.parameters());         //   the frozen base, so a resume needs no base again,
    state.add("adapters", training.adapters.weights());    //   A and B in bf16,
    state.add("adapter_master_weights", training.master.weights());  //   their fp32 master copy,
    state.add_optimizer("adamw", training.optimizer);      //   AdamW's moments and step count,
    stage10::keep_base_evaluation(state, before);          //   and the base's held-out loss and accuracy
    experiment.resume(state);                              // --resume: all of it from the newest checkpoint
    const bool planned = experiment.device() == Device::Meta;  // --device meta: memory only, no values
    if (!experiment.resuming()) {
      stage10::prepare_base(model, lora, experiment);  // 0. --base, or stage 05 trains one first
      if (!lora.adapters_in.empty()) training.load(lora.adapters_in);  // 1. or adapters of an earlier run
      if (!planned) {
        before = stage10::evaluate(model, experiment, 0);
        experiment.log().log_eval(before);
      }
    }

    for (std::int64_t step = experiment.first_step(); step < experiment.end_step(); ++step) {
      const Batch batch = experiment.data().train_batch(step);
      const Stopwatch stopwatch;

      training.adapters.enable_dropout(step);    // LoRA dropout, in training forwards only
      const double loss = model.forward(batch);  // 2. forward: frozen bf16 W0, plus (α/r)·B·A where adapted
      training.adapters.zero_gradients();
      model.backward();                          // 3. backward: gradients of A and B only
      training.adapters.disable_dropout();
      const double learning_rate = experiment.learning_rate(step);
      const double gradient_norm = training.step(learning_rate);  // 4-6. fp32 update of A and B, into bf16

      const double step_seconds = stopwatch.seconds();
      experiment.record_step(model, step, loss, learning_rate, gradient_norm, step_seconds);
    }
    if (experiment.stopped_early() || planned) return experiment.finish(model);  // no merge yet: --resume later
    const EvalMetrics adapted = stage10::evaluate(model, experiment, experiment.options().steps);
    training.merge();          // 7. W0 + (α/r)·B·A into the base; the adapters come off
    experiment.finish(model);  // the merged model: held-out loss and accuracy, samples, memory table
    stage10::save_outputs(training, lora, experiment);
    stage10::report(training, before, adapted, experiment);
  });
}
