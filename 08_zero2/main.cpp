// 08_zero2: stage 07 with the gradients sharded too (mpiexec -n N 08_zero2): ZeRO stage 2.
//
// The recipe, once per step, on every rank (the lecture's "ZeRO Stage-2: Optimizer State + gradient sharding"):
//   1. keep the full bf16 weights, but the gradients, fp32 master weights and Adam moments of this rank's shard only
//   2. forward pass in bf16 on this rank's slice of the global batch
//   3. backward pass, layer by layer: each bucket of units gets full-size gradient storage only while backward fills
//      it; once complete it is reduce-scattered to the ranks in charge and the full storage is freed at once, so
//      the full gradient vector never exists: this rank keeps the mean of its own shard
//   4. the global gradient norm: each rank's sum of squares of its shard, exchanged, added in rank order
//   5. AdamW updates this rank's fp32 master shard from its bf16 gradient shard, clipped by that norm
//   6. every rank rounds its updated shard into bf16, and an all-gather hands every rank every shard
// Memory per rank: 2 + (2 + 12)/N bytes per parameter, plus the buckets in flight; the same arithmetic and the same
// bytes on the wire as stages 06 and 07.
#include <cstdint>

#include "07_zero1/sharded_optimizer.hpp"
#include "07_zero1/weight_all_gather.hpp"
#include "08_zero2/sharded_gradients.hpp"
#include "common/train/comm_metrics.hpp"
#include "common/train/experiment.hpp"
#include "common/train/run_with_ranks.hpp"

int main(int argc, char** argv) {
  using namespace ladder;
  return run_with_ranks("08_zero2", argc, argv, [&](Communicator& comm) {
    stage06::DdpSettings settings;
    settings.bucket_bytes = stage08::kDefaultBucketBytes;
    Experiment experiment(parse_options(argc, argv, "08_zero2",
                                        "Stage 08: ZeRO-2, optimizer state and gradients sharded over the ranks; "
                                        "run with mpiexec -n N.",
                                        [&](CLI::App& app) { settings.add_flags(app); }),
                          comm.rank(), comm.world_size());
    // The model keeps its full bf16 weights but leaves its gradients to the stage, which lends them bucket by bucket.
    GPT model(experiment.model_config(), DType::BF16, experiment.options().batch_size, experiment.sequence_length(),
              comm.world_size(), experiment.device(), GPTStorage{StorageOwner::Model, StorageOwner::Stage});
    experiment.initialize(model);
    comm.broadcast(model.parameters(), 0);
    const ShardLayout shard(model.layout(), comm.rank(), comm.world_size());
    stage07::ShardedOptimizer optimizer(shard, experiment.adamw_config(), experiment.device());
    optimizer.copy_from_whole(model.parameters());  // 1. fp32 master weights and moments: this rank's shard only
    TrainingState state(model.layout());                      // what a checkpoint holds: stage 07's (the gradients
    state.add("weights", model.parameters());                 // are rebuilt every step): the whole bf16 weights,
    state.add_shard("master_weights", optimizer.master());    // this rank's master shard
    state.add_optimizer_shard("adamw", optimizer.adamw());    // and moment shard
    experiment.resume(state, comm);
    stage08::ShardedGradients gradients(model, comm, shard, settings);  // 1. and this rank's gradient shard
    stage07::WeightAllGather weights(model, comm, shard, gradients.buckets());
    model.set_hooks(&gradients);
    experiment.log().info("08_zero2 | " + gradients.describe() + "; weights all-gathered in " +
                          dtype_name(model.dtype()));

    for (std::int64_t step = experiment.first_step(); step < experiment.end_step(); ++step) {
      const Batch batch = experiment.data().train_batch(step);  // this rank's rows of the global batch
      const Stopwatch stopwatch;
      comm.stats().reset();

      const double loss = model.forward(batch);  // 2. forward: bf16 weights, bf16 activations
      model.backward();                          // 3. backward: each bucket's storage arrives zeroed, leaves reduced
      gradients.wait_all();
      const double learning_rate = experiment.learning_rate(step);
      const double gradient_norm = stage07::global_gradient_norm(comm, gradients.owned_gradients());  // 4.
      optimizer.update(gradients.gradient_shard(), learning_rate, gradient_norm);  // 5. fp32 update of the shard
      weights.run(optimizer.master());                                              // 6. bf16 shards to every rank

      const double step_seconds = stopwatch.seconds();
      const CommStats communicated = comm.stats();
      experiment.record_step(model, step, stage06::mean_over_ranks(comm, loss), learning_rate, gradient_norm,
                             step_seconds, comm_console_extras(communicated), comm_records(communicated));
    }
    experiment.finish(model);
  });
}
