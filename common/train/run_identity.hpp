/// @file run_identity.hpp
/// @brief What a checkpoint shares with the run that resumes it: the stage, the ranks, the model and the flags that
/// decide the trajectory. A resume with anything else would not continue the same run, so it is refused by name.
#pragma once

#include <map>
#include <string>

#include "common/model/gpt_config.hpp"
#include "common/train/options.hpp"

namespace ladder {

/// The identity of a run, as a checkpoint's manifest records it.
struct RunIdentity {
  std::string stage;                         ///< the executable, e.g. "07_zero1"
  int world_size = 1;                        ///< ranks
  std::map<std::string, std::string> model;  ///< the model's config fields (after the data set the vocabulary)
  std::map<std::string, std::string> flags;  ///< every flag that changes what is trained ("--lr" -> "0.001")
};

/// This run's identity. Flags that only change how the run is watched, stored or placed (--metrics, --eval-*,
/// --log-every, --samples, --save, --threads, --device, --tf32, the checkpoint flags themselves, debugging aids)
/// are left out: they may differ between the two halves of a run.
RunIdentity run_identity(const TrainOptions& options, const GPTConfig& config, int world_size);

/// Throws LadderError when `checkpoint` (the identity `where` recorded) differs from `now`, listing every
/// difference: the stage, the number of ranks, a model field, a flag ("--lr: 0.001 in the checkpoint, 0.002 now").
/// Numbers are compared by value, so "1e-3" and "0.001" are the same setting.
void require_same_run(const RunIdentity& checkpoint, const RunIdentity& now, const std::string& where);

}  // namespace ladder
