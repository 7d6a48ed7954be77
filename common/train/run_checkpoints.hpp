/// @file run_checkpoints.hpp
/// @brief The checkpoints of one run: where it resumes from (--resume), when it writes one (--checkpoint-every, the
/// end, --stop-at-step), and the writing and restoring, logged.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/comm/communicator.hpp"
#include "common/train/checkpoint_manifest.hpp"
#include "common/train/options.hpp"
#include "common/train/run_identity.hpp"
#include "common/train/training_log.hpp"
#include "common/train/training_state.hpp"

namespace ladder {

/// Decides and carries out one run's checkpoints. Made before the model exists, so a resume that cannot work
/// (another stage, other flags, other ranks, no checkpoint) is refused before anything is built.
class RunCheckpoints {
 public:
  /// Finds --resume's newest complete checkpoint and checks it against this run (throws LadderError naming what
  /// differs), and refuses a --checkpoint-dir that already holds another run's checkpoints.
  RunCheckpoints(const TrainOptions& options, RunIdentity identity, Device device);
  /// Steps done before this process started: the resumed checkpoint's, else 0.
  std::int64_t first_step() const { return resumed_ ? resumed_manifest_.step : 0; }
  /// The step after which this process stops: --stop-at-step, else --steps.
  std::int64_t end_step() const;
  /// True when --resume found a checkpoint to continue from.
  bool resuming() const { return resumed_; }
  /// A line for the log about the checkpoint resumed from (and a device change, which costs bit-identity).
  std::string describe_resume() const;
  /// Restores `state` from the resumed checkpoint (when resuming) and keeps it, and `communicator`, for the
  /// checkpoints after_step writes. Every rank calls it.
  void attach(TrainingState& state, Communicator& communicator);
  /// After step `done` (1-based): writes a checkpoint when one is due (every --checkpoint-every steps and after
  /// end_step()) and records it in `log`. Every rank calls it.
  void after_step(std::int64_t done, TrainingLog& log);

 private:
  TrainOptions options_;
  RunIdentity identity_;
  std::string device_;
  bool resumed_ = false;
  std::string resumed_path_;
  CheckpointManifest resumed_manifest_;
  TrainingState* state_ = nullptr;
  Communicator* communicator_ = nullptr;
};

}  // namespace ladder
