// Stage 08's step as its main.cpp takes it, for its tests and those of stage 09.
#pragma once

#include "07_zero1/sharded_optimizer.hpp"
#include "07_zero1/weight_all_gather.hpp"
#include "08_zero2/sharded_gradients.hpp"
#include "tests/mpi/sharded_run_support.hpp"

namespace ladder::sharded_runs {

/// Trains `steps` steps of stage 08 on this rank's rows.
inline StageRun run_stage08(const stage06::DdpSettings& settings, int steps = kSteps) {
  Communicator& comm = world();
  GPT model(tiny_config(), DType::BF16, kRowsPerRank, kSequenceLength, comm.world_size(), Device::CPU,
            GPTStorage{StorageOwner::Model, StorageOwner::Stage});
  model.initialize(11);
  const ShardLayout shard(model.layout(), comm.rank(), comm.world_size());
  stage07::ShardedOptimizer optimizer(shard, clipped_adamw(), Device::CPU);
  optimizer.copy_from_whole(model.parameters());
  stage08::ShardedGradients gradients(model, comm, shard, settings);
  stage07::WeightAllGather weights(model, comm, shard, gradients.buckets());
  model.set_hooks(&gradients);
  StageRun run = record_steps(steps, [&](const Batch& batch) {
    const double loss = model.forward(batch);
    model.backward();
    gradients.wait_all();
    const double norm = stage07::global_gradient_norm(comm, gradients.owned_gradients());
    optimizer.update(gradients.gradient_shard(), kLearningRate, norm);
    weights.run(optimizer.master());
    return StepResult{loss, norm};
  });
  run.master = gather_master(comm, shard, optimizer.master());
  return run;
}

}  // namespace ladder::sharded_runs
