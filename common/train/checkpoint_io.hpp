/// @file checkpoint_io.hpp
/// @brief Writing a training state as one checkpoint (every rank its file, rank 0 the manifest, last) and reading
/// one back, every byte checked against the manifest's checksums.
#pragma once

#include <cstdint>
#include <string>

#include "common/comm/communicator.hpp"
#include "common/train/checkpoint_manifest.hpp"
#include "common/train/training_state.hpp"

namespace ladder {

/// Where and what one checkpoint write produced.
struct CheckpointWrite {
  std::string path;         ///< the checkpoint's sub-folder
  std::uint64_t bytes = 0;  ///< bytes of every rank's file together
  int files = 0;            ///< files written (rank 0's, and each rank's own where the state is sharded)
};

/// Everything about a checkpoint write besides the state itself.
struct CheckpointRequest {
  std::string folder;           ///< --checkpoint-dir
  std::int64_t step = 0;        ///< steps done
  int keep = 2;                 ///< --keep: complete checkpoints that stay
  RunIdentity identity;         ///< the run, recorded for the resume's checks
  std::string device;           ///< "cpu" or "cuda"
  bool pause_halfway = false;   ///< --debug-pause-checkpoint: stall after this rank's first tensor
};

/// Writes `state` as the checkpoint of `request.step`; every rank calls it. Rank 0 makes the sub-folder; each rank
/// writes its file (rank 0: the replicated tensors and its shards; the others: their shards, if the state has any)
/// into a temporary file, fsync'd and renamed; the ranks report their sizes and checksums; only then rank 0 writes
/// manifest.json (temporary file, fsync, rename: last), and removes checkpoints beyond --keep. A failure on any rank
/// is an error on every rank, and leaves the previous checkpoints complete.
CheckpointWrite write_checkpoint(const CheckpointRequest& request, const TrainingState& state,
                                 Communicator& communicator);

/// Overwrites `state` with the checkpoint in `path`, which `manifest` (already checked against this run)
/// describes; every rank calls it. Each rank first checks that every listed file is there with its listed size, then
/// reads its tensors (replicated ones from rank 0's file, its shards from its own) straight into the state's memory,
/// hashing every byte. A missing or truncated file, a tensor of another type or size, a checksum that differs: an
/// error naming the file and the defect, on every rank.
void restore_checkpoint(const std::string& path, const CheckpointManifest& manifest, TrainingState& state,
                        Communicator& communicator);

/// Bytes of host memory a checkpoint stages GPU tensors through, a piece at a time (accounted as workspace).
inline constexpr std::uint64_t kCheckpointStagingBytes = 4u << 20;

}  // namespace ladder
