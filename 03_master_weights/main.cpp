// 03_master_weights: fp16 forward and backward, but the update happens on an fp32 master copy of the weights.
//
// The recipe, once per step (the lecture's "Take-2"):
//   1. keep an fp32 master copy of the weights (made once, before the first step)
//   2. forward pass in fp16        -> the loss
//   3. backward pass in fp16       -> a gradient for every weight (small ones still flush to zero)
//   4. AdamW reads the fp16 gradients as fp32, clips their global norm,
//   5. and updates the fp32 master weights with fp32 moments (small updates accumulate instead of vanishing),
//   6. then the master is rounded into the fp16 weights the next forward uses
// The step log keeps stage 02's zero_grads and unchanged (now: master weights the step left bit-identical).
#include <cstdint>

#include "03_master_weights/master_weights.hpp"
#include "common/train/experiment.hpp"
#include "common/train/run_main.hpp"
#include "common/train/update_diagnostics.hpp"

int main(int argc, char** argv) {
  using namespace ladder;
  return run_main("03_master_weights", [&] {
    Experiment experiment(parse_options(argc, argv, "03_master_weights",
                                        "Stage 03: fp16 training with fp32 master weights (16 bytes per parameter)."));
    stage03::MasterWeightsTraining training(experiment.model_config(), experiment.adamw_config(),
                                            experiment.options().batch_size, experiment.sequence_length(),
                                            DType::F16, experiment.device());
    GPT& model = training.model;
    experiment.initialize(model);
    training.master.copy_from(model);            // 1. fp32 master weights from the fp16 model's
    TrainingState state(model.layout());                     // what a checkpoint holds (--checkpoint-dir, --resume):
    state.add("weights", model.parameters());                //   the fp16 weights,
    state.add("master_weights", training.master.weights());  //   the fp32 master weights,
    state.add_optimizer("adamw", training.optimizer);        //   AdamW's moments and step count
    experiment.resume(state);                                // --resume: all of it from the newest checkpoint
    UpdateDiagnostics diagnostics(model.layout(), training.master.weights());

    for (std::int64_t step = experiment.first_step(); step < experiment.end_step(); ++step) {
      const Batch batch = experiment.data().train_batch(step);
      const Stopwatch stopwatch;

      const double loss = model.forward(batch);  // 2. forward: fp16 weights, fp16 activations
      model.zero_gradients();
      model.backward();                          // 3. backward: fp16 gradients
      const double learning_rate = experiment.learning_rate(step);
      const double gradient_norm =               // 4-6. fp32 gradients, fp32 update, copy into fp16
          training.master.step(training.optimizer, model, learning_rate);

      const double step_seconds = stopwatch.seconds();  // before the diagnostics: they are not the recipe
      experiment.record_step(model, step, loss, learning_rate, gradient_norm, step_seconds,
                             diagnostics.measure(loss, model.gradients()));
    }
    experiment.log().info("03_master_weights | " + diagnostics.summary());
    experiment.finish(model);
  });
}
