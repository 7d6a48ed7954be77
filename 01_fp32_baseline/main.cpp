// 01_fp32_baseline: train a small GPT the plain way, in fp32 from end to end.
//
// The recipe, once per step:
//   1. forward pass in fp32        -> the loss
//   2. backward pass in fp32       -> a gradient for every weight
//   3. clip the global gradient norm, then AdamW updates the fp32 weights with fp32 moments
// Every later rung changes one line of this recipe or one kind of memory it uses.
#include <cstdint>

#include "01_fp32_baseline/fp32_training.hpp"
#include "common/train/experiment.hpp"
#include "common/train/run_main.hpp"

int main(int argc, char** argv) {
  using namespace ladder;
  return run_main("01_fp32_baseline", [&] {
    Experiment experiment(parse_options(argc, argv, "01_fp32_baseline",
                                        "Stage 01: fp32 GPT training (the baseline: 16 bytes per parameter)."));
    stage01::Fp32Training training(experiment.model_config(), experiment.adamw_config(),
                                   experiment.options().batch_size, experiment.sequence_length(),
                                   experiment.device());
    GPT& model = training.model;
    experiment.initialize(model);
    TrainingState state(model.layout());               // what a checkpoint holds (--checkpoint-dir, --resume):
    state.add("weights", model.parameters());          //   the fp32 weights,
    state.add_optimizer("adamw", training.optimizer);  //   AdamW's moments and step count
    experiment.resume(state);                          // --resume: all of it from the newest checkpoint

    for (std::int64_t step = experiment.first_step(); step < experiment.end_step(); ++step) {
      const Batch batch = experiment.data().train_batch(step);
      const Stopwatch stopwatch;

      const double loss = model.forward(batch);  // 1. forward: fp32 weights, fp32 activations
      model.zero_gradients();
      model.backward();                          // 2. backward: fp32 gradients
      const double learning_rate = experiment.learning_rate(step);
      const double gradient_norm =               // 3. clip, then AdamW in fp32
          training.optimizer.step(model.parameters(), model.gradients(), learning_rate);

      experiment.record_step(model, step, loss, learning_rate, gradient_norm, stopwatch.seconds());
    }
    experiment.finish(model);
  });
}
