// 02_fp16_naive: the fp32 baseline with every number stored in fp16 - half the memory, and it breaks.
//
// The recipe, once per step:
//   1. forward pass in fp16        -> the loss
//   2. backward pass in fp16       -> a gradient for every weight (small ones flush to zero)
//   3. clip the global gradient norm, then AdamW updates the fp16 weights with fp16 moments
//      (computed in fp32, rounded into fp16: an update below half an ulp of its weight is lost)
// The step log adds zero_grads (fraction of gradients exactly 0) and unchanged (fraction of weights the step
// left bit-identical), so the run shows both failures as they happen.
#include <cstdint>

#include "02_fp16_naive/fp16_training.hpp"
#include "common/train/experiment.hpp"
#include "common/train/run_main.hpp"
#include "common/train/update_diagnostics.hpp"

int main(int argc, char** argv) {
  using namespace ladder;
  return run_main("02_fp16_naive", [&] {
    Experiment experiment(parse_options(argc, argv, "02_fp16_naive",
                                        "Stage 02: naive fp16 GPT training (8 bytes per parameter, and it breaks)."));
    stage02::Fp16Training training(experiment.model_config(), experiment.adamw_config(),
                                   experiment.options().batch_size, experiment.sequence_length(),
                                   experiment.device());
    GPT& model = training.model;
    experiment.initialize(model);
    TrainingState state(model.layout());               // what a checkpoint holds (--checkpoint-dir, --resume):
    state.add("weights", model.parameters());          //   the fp16 weights,
    state.add_optimizer("adamw", training.optimizer);  //   AdamW's fp16 moments and step count
    experiment.resume(state);                          // --resume: all of it from the newest checkpoint
    UpdateDiagnostics diagnostics(model.layout(), model.parameters());

    for (std::int64_t step = experiment.first_step(); step < experiment.end_step(); ++step) {
      const Batch batch = experiment.data().train_batch(step);
      const Stopwatch stopwatch;

      const double loss = model.forward(batch);  // 1. forward: fp16 weights, fp16 activations
      model.zero_gradients();
      model.backward();                          // 2. backward: fp16 gradients
      const double learning_rate = experiment.learning_rate(step);
      const double gradient_norm =               // 3. clip, then AdamW in fp16
          training.optimizer.step(model.parameters(), model.gradients(), learning_rate);

      const double step_seconds = stopwatch.seconds();  // before the diagnostics: they are not the recipe
      experiment.record_step(model, step, loss, learning_rate, gradient_norm, step_seconds,
                             diagnostics.measure(loss, model.gradients()));
    }
    experiment.log().info("02_fp16_naive | " + diagnostics.summary());
    experiment.finish(model);
  });
}
