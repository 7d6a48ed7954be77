// 06_ddp: stage 05 replicated over N ranks (mpiexec -n N 06_ddp): distributed data parallel.
//
// The recipe, once per step, on every rank (stage 05's, with the gradients averaged over the replicas):
//   1. keep an fp32 master copy of the weights (made once, from rank 0's weights, so all replicas start equal)
//   2. forward pass in bf16 on this rank's slice of the global batch
//   3. backward pass in bf16; as each bucket of units completes, its gradients are all-reduced (averaged over
//      the ranks) while backward carries on through the earlier units, then the last buckets are waited for
//   4. AdamW reads the averaged bf16 gradients as fp32, clips their global norm (added up shard by shard, in the
//      order stages 07-09 must use, so all four clip with the same bits),
//   5. and updates the fp32 master weights with fp32 moments,
//   6. then the master is rounded into the bf16 weights: every replica does the same update, and stays equal
// Memory per rank is stage 05's plus the fp32 bucket buffers; each step moves 2(N-1)/N of the gradients per rank.
#include <cstdint>

#include "05_bf16/bf16_training.hpp"
#include "06_ddp/gradient_buckets.hpp"
#include "common/optim/gradient_norm.hpp"
#include "common/train/comm_metrics.hpp"
#include "common/train/experiment.hpp"
#include "common/train/run_with_ranks.hpp"
#include "common/train/update_diagnostics.hpp"

int main(int argc, char** argv) {
  using namespace ladder;
  return run_with_ranks("06_ddp", argc, argv, [&](Communicator& comm) {
    stage06::DdpSettings ddp;
    Experiment experiment(parse_options(argc, argv, "06_ddp",
                                        "Stage 06: data parallel bf16 training; run with mpiexec -n N.",
                                        [&](CLI::App& app) { ddp.add_flags(app); }),
                          comm.rank(), comm.world_size());
    stage05::Bf16Training training(experiment.model_config(), experiment.adamw_config(),
                                   experiment.options().batch_size, experiment.sequence_length(),
                                   experiment.device(), comm.world_size());  // units split evenly over the ranks
    GPT& model = training.model;
    experiment.initialize(model);
    comm.broadcast(model.parameters(), 0);
    training.master.copy_from(model);            // 1. fp32 master weights from rank 0's bf16 weights
    // What a checkpoint holds: stage 05's state, the same on every replica, so rank 0 alone writes it.
    TrainingState state(model.layout());
    state.add("weights", model.parameters());
    state.add("master_weights", training.master.weights());
    state.add_optimizer("adamw", training.optimizer);
    experiment.resume(state, comm);              // --resume: every rank reads it back from rank 0's file
    UpdateDiagnostics diagnostics(model.layout(), training.master.weights());
    stage06::GradientBuckets buckets(model, comm, ddp);
    model.set_hooks(&buckets);
    experiment.log().info("06_ddp | " + buckets.describe());

    for (std::int64_t step = experiment.first_step(); step < experiment.end_step(); ++step) {
      const Batch batch = experiment.data().train_batch(step);  // this rank's rows of the global batch
      const Stopwatch stopwatch;
      comm.stats().reset();

      const double loss = model.forward(batch);  // 2. forward: bf16 weights, bf16 activations
      model.zero_gradients();
      model.backward();                          // 3. backward: bf16 gradients, all-reduced bucket by bucket
      buckets.wait_all();
      const CommStats communicated = comm.stats();
      const double learning_rate = experiment.learning_rate(step);
      const double gradient_norm = gradient_norm_by_shards(model.gradients(), model.layout(), comm.world_size());
      training.master.step_with_norm(training.optimizer, model, learning_rate, gradient_norm);  // 4-6. fp32 update

      const double step_seconds = stopwatch.seconds();
      auto extras = diagnostics.measure(loss, model.gradients());
      for (const auto& extra : comm_console_extras(communicated)) extras.push_back(extra);
      experiment.record_step(model, step, stage06::mean_over_ranks(comm, loss), learning_rate, gradient_norm,
                             step_seconds, extras, comm_records(communicated));
    }
    experiment.log().info("06_ddp | " + diagnostics.summary());
    experiment.finish(model);
  });
}
