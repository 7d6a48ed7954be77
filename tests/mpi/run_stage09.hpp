// Stage 09's step as its main.cpp takes it, for its tests.
#pragma once

#include <vector>

#include "07_zero1/sharded_optimizer.hpp"
#include "09_fsdp/fully_sharded_units.hpp"
#include "tests/mpi/sharded_run_support.hpp"

namespace ladder::sharded_runs {

/// Trains `steps` steps of stage 09 on this rank's rows; `schedule`, when given, receives the hook events of the
/// last step.
inline StageRun run_stage09(const stage09::FsdpSettings& settings, int steps = kSteps,
                            std::vector<std::string>* schedule = nullptr) {
  Communicator& comm = world();
  GPT model(tiny_config(), DType::BF16, kRowsPerRank, kSequenceLength, comm.world_size(), Device::CPU,
            GPTStorage{StorageOwner::Stage, StorageOwner::Stage});
  const ShardLayout shard(model.layout(), comm.rank(), comm.world_size());
  stage09::FullyShardedUnits units(model, comm, shard, settings);
  for (int unit = 0; unit < model.unit_count(); ++unit) {
    units.lend_for_initialization(unit);
    model.initialize_unit(11, unit);
    units.keep_after_initialization(unit);
  }
  stage07::ShardedOptimizer optimizer(shard, clipped_adamw(), Device::CPU);
  optimizer.copy_from_shard(units.weight_shard());
  model.set_hooks(&units);
  int step = 0;
  StageRun run = record_steps(steps, [&](const Batch& batch) {
    if (schedule != nullptr && ++step == steps) units.schedule().start();
    const double loss = model.forward(batch);
    model.backward();
    units.wait_all();
    units.schedule().stop();
    const double norm = stage07::global_gradient_norm(comm, units.owned_gradients());
    optimizer.update(units.gradient_shard(), kLearningRate, norm);
    units.take_updated(optimizer.master());
    return StepResult{loss, norm};
  });
  if (schedule != nullptr) *schedule = units.schedule().lines();
  run.master = gather_master(comm, shard, optimizer.master());
  return run;
}

}  // namespace ladder::sharded_runs
