// 09_fsdp: stage 08 with the weights sharded too (mpiexec -n N 09_fsdp): fully sharded data parallel, ZeRO stage 3.
//
// The recipe, once per step, on every rank (the lecture's "Full FSDP"):
//   1. divide the model into FSDP units (the embeddings, each block, the head) and shard every unit: this rank keeps
//      only its piece of each unit's bf16 weights, gradients, fp32 master weights and Adam moments
//   2. forward pass, unit by unit: all-gather the unit's weights just before it runs (the next unit's gather already
//      on its way), run it on this rank's slice of the batch, discard the gathered weights
//   3. backward pass, unit by unit in reverse: all-gather the unit again, compute its gradients, reduce-scatter them
//      to the ranks in charge as soon as they are complete, discard the gathered weights and the full gradients
//   4. the global gradient norm: each rank's sum of squares of its gradient shard, exchanged, added in rank order
//   5. AdamW updates this rank's fp32 master shard from its bf16 gradient shard, clipped by that norm
//   6. the updated shard is rounded into this rank's bf16 weight shard; nothing is gathered until the next forward
// Memory per rank: (2 + 2 + 12)/N bytes per parameter plus at most two gathered units; on the wire two all-gathers
// and a reduce-scatter per step, 1.5 times stage 06's all-reduce: communication is no longer free.
#include <cstdint>

#include "07_zero1/sharded_optimizer.hpp"
#include "09_fsdp/fully_sharded_units.hpp"
#include "common/train/comm_metrics.hpp"
#include "common/train/experiment.hpp"
#include "common/train/run_with_ranks.hpp"

int main(int argc, char** argv) {
  using namespace ladder;
  return run_with_ranks("09_fsdp", argc, argv, [&](Communicator& comm) {
    stage09::FsdpSettings settings;
    Experiment experiment(parse_options(argc, argv, "09_fsdp",
                                        "Stage 09: fully sharded data parallel (ZeRO-3): weights, gradients and "
                                        "optimizer state sharded over the ranks; run with mpiexec -n N.",
                                        [&](CLI::App& app) { settings.add_flags(app); }),
                          comm.rank(), comm.world_size());
    // The model holds neither weights nor gradients: the stage lends each unit's while it is in use.
    GPT model(experiment.model_config(), DType::BF16, experiment.options().batch_size, experiment.sequence_length(),
              comm.world_size(), experiment.device(), GPTStorage{StorageOwner::Stage, StorageOwner::Stage});
    const ShardLayout shard(model.layout(), comm.rank(), comm.world_size());
    stage09::FullyShardedUnits units(model, comm, shard, settings);
    experiment.initialize_by_unit(model, [&](int unit) { units.lend_for_initialization(unit); },  // 1. one unit at
                                  [&](int unit) { units.keep_after_initialization(unit); });    //    a time, sharded
    stage07::ShardedOptimizer optimizer(shard, experiment.adamw_config(), experiment.device());
    optimizer.copy_from_shard(units.weight_shard());  // 1. fp32 master weights and moments: this rank's shard only
    TrainingState state(model.layout());                      // what a checkpoint holds: this rank's shard of all:
    state.add_shard("weights", units.weight_shard());         //   bf16 weights,
    state.add_shard("master_weights", optimizer.master());    //   fp32 master weights,
    state.add_optimizer_shard("adamw", optimizer.adamw());    //   moments; every rank writes its own file
    experiment.resume(state, comm);
    model.set_hooks(&units);
    experiment.log().info("09_fsdp | " + settings.describe_policy(model.dtype()));
    experiment.log().info("09_fsdp | " + units.describe());
    stage09::TimelineRecorder timeline(units.schedule(), settings.timeline_path, settings.timeline_step,
                                       comm.rank() == 0);  // --timeline: one step's gathers, computes and frees

    for (std::int64_t step = experiment.first_step(); step < experiment.end_step(); ++step) {
      const Batch batch = experiment.data().train_batch(step);  // this rank's rows of the global batch
      const Stopwatch stopwatch;
      comm.stats().reset();
      timeline.step_begins(step);

      const double loss = model.forward(batch);  // 2. forward: each unit gathered just before use, freed after
      model.backward();                          // 3. backward: gathered again, gradients reduce-scattered, freed
      units.wait_all();
      timeline.step_ends(step);
      const double learning_rate = experiment.learning_rate(step);
      const double gradient_norm = stage07::global_gradient_norm(comm, units.owned_gradients());  // 4.
      optimizer.update(units.gradient_shard(), learning_rate, gradient_norm);  // 5. fp32 update of the shard
      units.take_updated(optimizer.master());                                  // 6. into the bf16 weight shard

      const double step_seconds = stopwatch.seconds();
      const CommStats communicated = comm.stats();
      experiment.record_step(model, step, stage06::mean_over_ranks(comm, loss), learning_rate, gradient_norm,
                             step_seconds, comm_console_extras(communicated), comm_records(communicated));
    }
    experiment.finish(model);
  });
}
