// 04_loss_scaling: stage 03 plus a loss scale S, so that small fp16 gradients no longer flush to zero.
//
// The recipe, once per step (the lecture's "Recipe for Mixed-Precision Training"):
//   1. keep an fp32 master copy of the weights (made once, before the first step)
//   2. forward pass in fp16        -> the loss
//   3. scale the loss by S (2^16 to start), so that
//   4. the backward pass in fp16 gives gradients S times larger: lifted clear of fp16's underflow
//   5. AdamW reads the fp16 gradients as fp32 and divides them by S, then clips their global norm,
//   6. and updates the fp32 master weights with fp32 moments,
//   7. then the master is rounded into the fp16 weights the next forward uses
// If any scaled gradient overflowed (inf or NaN), steps 5-7 are skipped: weights and Adam state stay as they were.
// Then S adapts as torch.amp.GradScaler's does: halved after an overflow, doubled after 2000 clean steps.
// The step log keeps stage 02's zero_grads and unchanged, and adds loss_scale and skipped_steps.
#include <CLI/CLI.hpp>

#include <cstdint>
#include <limits>

#include "04_loss_scaling/loss_scaler.hpp"
#include "common/train/experiment.hpp"
#include "common/train/run_main.hpp"
#include "common/train/update_diagnostics.hpp"

int main(int argc, char** argv) {
  using namespace ladder;
  return run_main("04_loss_scaling", [&] {
    stage04::LossScalerConfig scaler_config;
    Experiment experiment(parse_options(argc, argv, "04_loss_scaling",
                                        "Stage 04: fp16 GPT training with master weights and a dynamic loss scale.",
                                        [&](CLI::App& app) { stage04::add_loss_scaler_flags(app, scaler_config); }));
    stage03::MasterWeightsTraining training(experiment.model_config(), experiment.adamw_config(),
                                            experiment.options().batch_size, experiment.sequence_length(),
                                            DType::F16, experiment.device());
    stage04::DynamicLossScaler scaler(scaler_config);
    GPT& model = training.model;
    experiment.initialize(model);
    training.master.copy_from(model);            // 1. fp32 master weights from the fp16 model's
    TrainingState state(model.layout());                     // what a checkpoint holds (--checkpoint-dir, --resume):
    state.add("weights", model.parameters());                //   the fp16 weights,
    state.add("master_weights", training.master.weights());  //   the fp32 master weights,
    state.add_optimizer("adamw", training.optimizer);        //   AdamW's moments and step count
    scaler.add_to(state);                                    //   and the loss scale, its growth tracker, skipped steps
    experiment.resume(state);                                // --resume: all of it from the newest checkpoint
    UpdateDiagnostics diagnostics(model.layout(), training.master.weights());

    for (std::int64_t step = experiment.first_step(); step < experiment.end_step(); ++step) {
      const Batch batch = experiment.data().train_batch(step);
      const Stopwatch stopwatch;

      const double loss = model.forward(batch);  // 2. forward: fp16 weights, fp16 activations
      model.zero_gradients();
      model.backward(scaler.scale());            // 3-4. backward of loss·S: fp16 gradients, S times larger
      const double learning_rate = experiment.learning_rate(step);
      const bool found_inf = stage04::has_inf_or_nan(model.gradients());
      const double gradient_norm =               // 5-7. fp32 gradients ·1/S, fp32 update, copy into fp16 ...
          found_inf ? std::numeric_limits<double>::infinity()  // ... unless S overflowed them: skip the step
                    : training.master.step(training.optimizer, model, learning_rate, 1.0 / scaler.scale());
      scaler.update(found_inf);                  // halve S after an overflow, double it after 2000 clean steps

      const double step_seconds = stopwatch.seconds();
      auto extras = diagnostics.measure(loss, model.gradients());
      extras.insert(extras.end(), {{"loss_scale", scaler.scale()},
                                   {"skipped_steps", static_cast<double>(scaler.skipped_steps())}});
      experiment.record_step(model, step, loss, learning_rate, gradient_norm, step_seconds, extras);
    }
    experiment.log().info("04_loss_scaling | " + diagnostics.summary());
    experiment.finish(model);
  });
}
