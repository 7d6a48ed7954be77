// 07_zero1: stage 06 with the optimizer state sharded over the N ranks (mpiexec -n N 07_zero1): ZeRO stage 1.
//
// The recipe, once per step, on every rank (the lecture's "ZeRO Stage-1: Optimizer State Sharding"):
//   1. keep the full bf16 weights and gradients, but the fp32 master weights and Adam moments of this rank's shard
//      only: the r-th of N equal pieces of every unit (made once, from rank 0's weights)
//   2. forward pass in bf16 on this rank's slice of the global batch
//   3. backward pass in bf16; as each bucket of units completes it is reduce-scattered (averaged): this rank
//      receives the mean gradient of its own pieces only, while backward carries on through the earlier units
//   4. the global gradient norm: each rank's sum of squares of its pieces, exchanged, added in rank order
//   5. AdamW reads this rank's averaged bf16 gradients as fp32 and updates its fp32 master shard, clipped by that norm
//   6. every rank rounds its updated shard into bf16, and an all-gather hands every rank every shard: the replicas
//      hold the same weights again
// Memory per rank: 2 + 2 + 12/N bytes per parameter instead of 16, for the same arithmetic as stage 06 and the
// same bytes on the wire: a reduce-scatter plus an all-gather is what an all-reduce does inside.
#include <cstdint>

#include "07_zero1/reduce_scatter_buckets.hpp"
#include "07_zero1/sharded_optimizer.hpp"
#include "07_zero1/weight_all_gather.hpp"
#include "common/train/comm_metrics.hpp"
#include "common/train/experiment.hpp"
#include "common/train/run_with_ranks.hpp"

int main(int argc, char** argv) {
  using namespace ladder;
  return run_with_ranks("07_zero1", argc, argv, [&](Communicator& comm) {
    stage06::DdpSettings settings;
    Experiment experiment(parse_options(argc, argv, "07_zero1",
                                        "Stage 07: ZeRO-1, optimizer state sharded over the ranks; run with "
                                        "mpiexec -n N.",
                                        [&](CLI::App& app) { settings.add_flags(app); }),
                          comm.rank(), comm.world_size());
    GPT model(experiment.model_config(), DType::BF16, experiment.options().batch_size, experiment.sequence_length(),
              comm.world_size(), experiment.device());  // every unit splits into N equal pieces
    experiment.initialize(model);
    comm.broadcast(model.parameters(), 0);
    const ShardLayout shard(model.layout(), comm.rank(), comm.world_size());
    stage07::ShardedOptimizer optimizer(shard, experiment.adamw_config(), experiment.device());
    optimizer.copy_from_whole(model.parameters());  // 1. fp32 master weights and moments: this rank's shard only
    TrainingState state(model.layout());                      // what a checkpoint holds (--checkpoint-dir, --resume):
    state.add("weights", model.parameters());                 //   the bf16 weights, whole on every rank: rank 0's,
    state.add_shard("master_weights", optimizer.master());    //   and each rank's own master shard
    state.add_optimizer_shard("adamw", optimizer.adamw());    //   and moment shard, in a file per rank
    experiment.resume(state, comm);
    stage07::ReduceScatterBuckets gradients(model, comm, shard, settings);
    stage07::WeightAllGather weights(model, comm, shard, gradients.buckets());
    model.set_hooks(&gradients);
    experiment.log().info("07_zero1 | " + gradients.describe() + "; weights all-gathered in " +
                          dtype_name(model.dtype()));

    for (std::int64_t step = experiment.first_step(); step < experiment.end_step(); ++step) {
      const Batch batch = experiment.data().train_batch(step);  // this rank's rows of the global batch
      const Stopwatch stopwatch;
      comm.stats().reset();

      const double loss = model.forward(batch);  // 2. forward: bf16 weights, bf16 activations
      model.zero_gradients();
      model.backward();                          // 3. backward: bf16 gradients, reduce-scattered bucket by bucket
      gradients.wait_all();
      const double learning_rate = experiment.learning_rate(step);
      const double gradient_norm = stage07::global_gradient_norm(comm, gradients.owned_gradients());  // 4.
      optimizer.update(model.gradients(), learning_rate, gradient_norm);  // 5. fp32 update of this rank's shard
      weights.run(optimizer.master());                                     // 6. bf16 shards to every rank

      const double step_seconds = stopwatch.seconds();
      const CommStats communicated = comm.stats();
      experiment.record_step(model, step, stage06::mean_over_ranks(comm, loss), learning_rate, gradient_norm,
                             step_seconds, comm_console_extras(communicated), comm_records(communicated));
    }
    experiment.finish(model);
  });
}
