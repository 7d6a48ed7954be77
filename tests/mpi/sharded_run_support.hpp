// What the tests of stages 06-09 under mpiexec share: one setting (the tiny model on addition, clipping active),
// what a run of a stage records, the world's communicator, and the fp32 master weights of a sharded run gathered
// into the whole layout so that any two stages can be compared element by element.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "06_ddp/gradient_buckets.hpp"
#include "common/comm/communicator.hpp"
#include "common/data/data_source.hpp"
#include "common/model/gpt.hpp"
#include "common/model/shard_layout.hpp"
#include "common/ops/ops.hpp"
#include "common/optim/adamw.hpp"

namespace ladder::sharded_runs {

/// The job's communicator (MPI under mpiexec).
inline Communicator& world() {
  static std::unique_ptr<Communicator> communicator = make_communicator("mpi");
  return *communicator;
}

/// Rows of the global batch each rank trains on.
inline constexpr int kRowsPerRank = 4;
/// Tokens per row (one arithmetic problem).
inline constexpr int kSequenceLength = 10;
/// Steps the equivalence runs take.
inline constexpr int kSteps = 10;
/// A constant learning rate (the schedule is not under test).
inline constexpr double kLearningRate = 3e-3;

/// AdamW with a clip of 0.5: the tiny model's gradient norms stay above it, so every step is clipped and the
/// clip factor, which depends on how the norm was added up, enters every update.
inline AdamWConfig clipped_adamw() {
  AdamWConfig config;
  config.gradient_clip = 0.5;
  return config;
}

/// This rank's slice of the addition task (with `world` ranks), or the whole global batch on one rank.
inline std::unique_ptr<DataSource> data_for(int rank, int world_size, int rows_per_rank = kRowsPerRank) {
  return make_data_source("addition", DataSlice{rank, world_size, rows_per_rank, kSequenceLength}, 5);
}

/// The tiny model's config for the addition task.
inline GPTConfig tiny_config() { return named_config("tiny", data_for(0, 1)->vocab_size()); }

/// What one run recorded.
struct StageRun {
  std::vector<double> losses;        ///< the global mean loss of each step
  std::vector<double> norms;         ///< the gradient norm of each step, before clipping
  std::vector<float> master;         ///< final fp32 master weights, the whole padded layout
  CommStats last_step;               ///< the collectives of the last step (before the loss's mean)
};

/// A step's loss on this rank and the gradient norm it clipped with.
struct StepResult {
  double loss = 0;  ///< this rank's loss
  double norm = 0;  ///< the global gradient norm
};

/// Runs `steps` steps of `step(batch)` on this rank's rows and records each step's global mean loss, its norm and
/// the collectives it made (counted from the start of the step to the end of `step`).
template <class Step>
StageRun record_steps(int steps, Step step) {
  Communicator& comm = world();
  const auto data = data_for(comm.rank(), comm.world_size());
  StageRun run;
  for (int index = 0; index < steps; ++index) {
    comm.stats().reset();
    const StepResult result = step(data->train_batch(index));
    run.last_step = comm.stats();
    run.losses.push_back(stage06::mean_over_ranks(comm, result.loss));
    run.norms.push_back(result.norm);
  }
  return run;
}

/// The fp32 master shards of all ranks put together into the whole layout (one all-gather per unit).
inline std::vector<float> gather_master(Communicator& communicator, const ShardLayout& shard, Tensor master) {
  std::vector<float> whole(static_cast<std::size_t>(shard.layout().padded_size()));
  for (const UnitPiece& piece : shard.pieces()) {
    const ParameterUnit& unit = shard.layout().units()[piece.unit];
    std::vector<float> local(static_cast<std::size_t>(piece.size));
    ops::copy(Tensor(local.data(), DType::F32, {piece.size}), master.slice(piece.shard_offset, piece.size));
    communicator.all_gather(Tensor(whole.data() + unit.offset, DType::F32, {unit.size}),
                            Tensor(local.data(), DType::F32, {piece.size}));
  }
  return whole;
}

/// A float tensor's values as fp32.
inline std::vector<float> floats_of(Tensor values) {
  std::vector<float> out(static_cast<std::size_t>(values.numel()));
  ops::convert(Tensor(out.data(), DType::F32, {values.numel()}), values);
  return out;
}

/// Expects two runs to agree bit for bit: every loss, every norm, every master weight.
inline void expect_identical(const StageRun& a, const StageRun& b) {
  EXPECT_EQ(a.losses, b.losses);
  EXPECT_EQ(a.norms, b.norms);
  ASSERT_EQ(a.master.size(), b.master.size());
  std::int64_t different = 0;
  for (std::size_t i = 0; i < a.master.size(); ++i) different += a.master[i] != b.master[i];
  EXPECT_EQ(different, 0) << "of " << a.master.size() << " master weights differ";
}

}  // namespace ladder::sharded_runs
