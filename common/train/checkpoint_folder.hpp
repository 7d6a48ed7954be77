/// @file checkpoint_folder.hpp
/// @brief The folder of checkpoints: one sub-folder per checkpoint (step-00000010/), complete once its manifest is
/// in place; finding the newest complete one, and keeping only the newest few.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ladder {

/// One checkpoint's sub-folder.
struct CheckpointFolder {
  std::int64_t step = 0;   ///< steps done when it was written
  std::string path;        ///< the sub-folder
  bool complete = false;   ///< its manifest is in place (else a write that did not finish)
};

/// "DIR/step-00000010": where the checkpoint taken after `step` steps goes.
std::string checkpoint_folder_path(const std::string& folder, std::int64_t step);

/// "rank-1-of-4.safetensors": the file rank `rank` of `world` writes.
std::string shard_file_name(int rank, int world);

/// Every checkpoint sub-folder of `folder` (named "step-" and digits), by step; anything else there is left alone.
std::vector<CheckpointFolder> list_checkpoints(const std::string& folder);

/// The complete checkpoint with the most steps, if any.
std::optional<CheckpointFolder> newest_complete_checkpoint(const std::string& folder);

/// Creates `folder` if missing and an empty sub-folder for the checkpoint of `step`, removing what an interrupted
/// write of the same step left there. Returns the sub-folder. Rank 0 calls it, before any rank writes.
std::string prepare_checkpoint_folder(const std::string& folder, std::int64_t step);

/// Removes every incomplete checkpoint and all complete ones but the newest `keep`: run once a new one is complete.
void prune_checkpoints(const std::string& folder, int keep);

}  // namespace ladder
