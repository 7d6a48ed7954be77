// 05_bf16: stage 04's mixed precision with bf16 instead of fp16, and so without a loss scale.
//
// The recipe, once per step (the lecture's "Bfloat16 does not need GradScalers"):
//   1. keep an fp32 master copy of the weights (made once, before the first step)
//   2. forward pass in bf16        -> the loss
//   3. backward pass in bf16       -> a gradient for every weight, unscaled: bf16 has fp32's 8 exponent bits,
//                                     so small gradients do not flush to zero and large ones do not overflow
//   4. AdamW reads the bf16 gradients as fp32, clips their global norm,
//   5. and updates the fp32 master weights with fp32 moments,
//   6. then the master is rounded into the bf16 weights the next forward uses
// No scale, no overflow check, no skipped steps. What bf16 pays instead is precision: 8 significant bits to
// fp16's 11, about 2-3 decimal digits, which the fp32 master weights keep out of the update.
// The step log keeps stage 02's zero_grads and unchanged: zero_grads shows that nothing underflows.
#include <cstdint>

#include "05_bf16/bf16_training.hpp"
#include "common/train/experiment.hpp"
#include "common/train/run_main.hpp"
#include "common/train/update_diagnostics.hpp"

int main(int argc, char** argv) {
  using namespace ladder;
  return run_main("05_bf16", [&] {
    Experiment experiment(parse_options(argc, argv, "05_bf16",
                                        "Stage 05: bf16 GPT training with fp32 master weights and no loss scale."));
    stage05::Bf16Training training(experiment.model_config(), experiment.adamw_config(),
                                   experiment.options().batch_size, experiment.sequence_length(),
                                   experiment.device());
    GPT& model = training.model;
    experiment.initialize(model);
    training.master.copy_from(model);            // 1. fp32 master weights from the bf16 model's
    TrainingState state(model.layout());                     // what a checkpoint holds (--checkpoint-dir, --resume):
    state.add("weights", model.parameters());                //   the bf16 weights,
    state.add("master_weights", training.master.weights());  //   the fp32 master weights,
    state.add_optimizer("adamw", training.optimizer);        //   AdamW's moments and step count
    experiment.resume(state);                                // --resume: all of it from the newest checkpoint
    UpdateDiagnostics diagnostics(model.layout(), training.master.weights());

    for (std::int64_t step = experiment.first_step(); step < experiment.end_step(); ++step) {
      const Batch batch = experiment.data().train_batch(step);
      const Stopwatch stopwatch;

      const double loss = model.forward(batch);  // 2. forward: bf16 weights, bf16 activations
      model.zero_gradients();
      model.backward();                          // 3. backward: bf16 gradients, no loss scale needed
      const double learning_rate = experiment.learning_rate(step);
      const double gradient_norm =               // 4-6. fp32 gradients, fp32 update, copy into bf16
          training.master.step(training.optimizer, model, learning_rate);

      const double step_seconds = stopwatch.seconds();
      experiment.record_step(model, step, loss, learning_rate, gradient_norm, step_seconds,
                             diagnostics.measure(loss, model.gradients()));
    }
    experiment.log().info("05_bf16 | " + diagnostics.summary());
    experiment.finish(model);
  });
}
