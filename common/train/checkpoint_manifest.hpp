/// @file checkpoint_manifest.hpp
/// @brief A checkpoint's manifest.json: which run wrote it, at which step, what the state holds, and which file of
/// which rank holds each tensor, with its checksum. Written last: a checkpoint without one is not complete.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/dtype.hpp"
#include "common/train/run_identity.hpp"
#include "common/train/training_state.hpp"

namespace ladder {

/// One tensor of the state as the manifest lists it (the elements of one rank's piece, for a sharded one).
struct ManifestTensor {
  std::string name;                          ///< e.g. "master_weights"
  StateScope scope = StateScope::Replicated;  ///< in rank 0's file, or in every rank's own
  DType dtype = DType::F32;                  ///< element type
  std::int64_t elements = 0;                 ///< elements (per rank, when sharded)
};

/// One number of the state, exactly as it was.
struct ManifestScalar {
  bool integer = true;       ///< which of the two values holds it
  std::int64_t integer_value = 0;  ///< the value of an integer
  double number_value = 0;         ///< the value of a real number (JSON keeps every bit of a double)
};

/// One safetensors file of the checkpoint.
struct ManifestFile {
  int rank = 0;                                     ///< the rank that wrote it
  std::string name;                                 ///< file name inside the checkpoint's folder
  std::uint64_t bytes = 0;                          ///< its size
  std::map<std::string, std::uint64_t> checksums;  ///< XXH64 of each tensor's bytes, by tensor name
};

/// One unit of the parameter layout, as the manifest records it.
struct ManifestUnit {
  std::string name;        ///< "embeddings", "blocks.0", ..., "head"
  std::int64_t size = 0;  ///< elements, padding included (each rank holds size / world_size of it)
};

/// Everything manifest.json says.
struct CheckpointManifest {
  RunIdentity identity;                            ///< the stage, ranks, model and flags of the run
  std::int64_t step = 0;                           ///< steps done when it was written
  std::string device;                              ///< where the run trained ("cpu" or "cuda")
  std::vector<ManifestUnit> layout;                ///< the units, and so what each rank's pieces are
  std::vector<ManifestTensor> tensors;             ///< the state's tensors
  std::map<std::string, ManifestScalar> scalars;  ///< the state's numbers
  std::vector<ManifestFile> files;                 ///< the files, by rank
};

/// "manifest.json".
inline constexpr const char* kManifestFileName = "manifest.json";

/// The manifest as JSON text (readable: a student can open it and see the loss scale or the step count).
std::string manifest_json(const CheckpointManifest& manifest);

/// Reads and checks `path`: any defect (not JSON, a field missing or of the wrong type, files inconsistent with
/// the number of ranks) throws LadderError naming the file and the defect.
CheckpointManifest read_manifest(const std::string& path);

/// The file holding `tensor` for `rank`: rank 0's for a replicated tensor, the rank's own for a sharded one;
/// throws naming the manifest when the file is not listed.
const ManifestFile& file_holding(const CheckpointManifest& manifest, const ManifestTensor& tensor, int rank,
                                 const std::string& where);

}  // namespace ladder
