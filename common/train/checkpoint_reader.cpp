// restore_checkpoint: every file checked against the manifest before a byte is believed, every byte hashed.
#include <filesystem>
#include <map>
#include <memory>

#include "common/error.hpp"
#include "common/train/checkpoint_io.hpp"
#include "common/train/checkpoint_staging.hpp"
#include "common/train/checksum.hpp"
#include "common/train/rank_agreement.hpp"
#include "common/train/safetensors_reader.hpp"

namespace ladder {
namespace {

namespace fs = std::filesystem;

/// Every file the manifest lists is there, whole: missing and truncated files are found by every rank alike.
void require_files_present(const std::string& path, const CheckpointManifest& manifest) {
  for (const ManifestFile& file : manifest.files) {
    const fs::path full = fs::path(path) / file.name;
    std::error_code error;
    LADDER_CHECK(fs::exists(full, error), "checkpoint ", path, ": rank ", file.rank, "'s file ", file.name,
                 " is missing (the manifest lists it; remove ", path, " to resume from the checkpoint before it)");
    const std::uint64_t bytes = fs::file_size(full, error);
    LADDER_CHECK(!error && bytes == file.bytes, "checkpoint ", full.string(), " is ", bytes, " bytes, but the manifest says ",
                 file.bytes, ": the file is truncated or was replaced");
  }
}

/// The state's tensors and numbers are the ones the checkpoint holds, of the same types and sizes.
void require_same_contents(const std::string& path, const CheckpointManifest& manifest, const TrainingState& state) {
  std::map<std::string, const ManifestTensor*> listed;
  for (const ManifestTensor& tensor : manifest.tensors) listed[tensor.name] = &tensor;
  for (const StateTensor& tensor : state.tensors()) {
    const auto found = listed.find(tensor.name);
    LADDER_CHECK(found != listed.end(), "checkpoint ", path, " holds no tensor '", tensor.name, "', which this run needs");
    const ManifestTensor& stored = *found->second;
    LADDER_CHECK(stored.scope == tensor.scope, "checkpoint ", path, ": tensor '", tensor.name, "' is ",
                 stored.scope == StateScope::Sharded ? "sharded" : "replicated", " there, not here");
    LADDER_CHECK(stored.dtype == tensor.tensor.dtype(), "checkpoint ", path, ": tensor '", tensor.name, "' is ",
                 dtype_name(stored.dtype), " there and ", dtype_name(tensor.tensor.dtype()), " in this run");
    LADDER_CHECK(stored.elements == tensor.tensor.numel(), "checkpoint ", path, ": tensor '", tensor.name, "' has ",
                 stored.elements, " elements per rank there and ", tensor.tensor.numel(), " in this run");
    listed.erase(found);
  }
  LADDER_CHECK(listed.empty(), "checkpoint ", path, " holds tensor '", listed.empty() ? "" : listed.begin()->first,
               "', which this stage does not have");
  LADDER_CHECK(manifest.scalars.size() == state.scalars().size(), "checkpoint ", path, " holds ",
               manifest.scalars.size(), " numbers, and this run's state has ", state.scalars().size());
  for (const StateScalar& scalar : state.scalars()) {
    const auto found = manifest.scalars.find(scalar.name);
    LADDER_CHECK(found != manifest.scalars.end(), "checkpoint ", path, " holds no number '", scalar.name, "'");
    LADDER_CHECK(found->second.integer == scalar.integer, "checkpoint ", path, ": '", scalar.name, "' should be ",
                 scalar.integer ? "an integer" : "a real number");
  }
}

/// Opens a file of the checkpoint and checks that it says it belongs there (stage, step, rank, ranks).
std::unique_ptr<SafetensorsReader> open_rank_file(const std::string& path, const CheckpointManifest& manifest,
                                                  const ManifestFile& file) {
  auto reader = std::make_unique<SafetensorsReader>((fs::path(path) / file.name).string());
  const std::map<std::string, std::string> expected = {{"stage", manifest.identity.stage},
                                                       {"step", std::to_string(manifest.step)},
                                                       {"rank", std::to_string(file.rank)},
                                                       {"world_size", std::to_string(manifest.identity.world_size)}};
  for (const auto& [key, value] : expected) {
    const auto found = reader->metadata().find(key);
    LADDER_CHECK(found != reader->metadata().end() && found->second == value, "checkpoint ", reader->path(),
                 ": its metadata '", key, "' is '", found == reader->metadata().end() ? "missing" : found->second,
                 "', but the manifest expects '", value, "' (a file of another checkpoint or rank)");
  }
  return reader;
}

void restore_tensor(const StateTensor& tensor, SafetensorsReader& reader, std::uint64_t checksum) {
  const safetensors_format::HeaderEntry& stored = reader.entry(tensor.name);
  LADDER_CHECK(stored.dtype == tensor.tensor.dtype() && stored.shape == std::vector<std::int64_t>{tensor.tensor.numel()},
               "checkpoint ", reader.path(), ": tensor '", tensor.name, "' is ", dtype_name(stored.dtype), " ",
               safetensors_format::shape_text(stored.shape), "; the manifest and this run expect ",
               dtype_name(tensor.tensor.dtype()), " [", tensor.tensor.numel(), "]");
  Xxh64 hash;
  visit_host_pieces(tensor.tensor, StagingDirection::Restore, [&](void* host, std::uint64_t offset, std::uint64_t bytes) {
    reader.read(tensor.name, offset, host, bytes);
    hash.update(host, bytes);
  });
  LADDER_CHECK(hash.digest() == checksum, "checkpoint ", reader.path(), ": tensor '", tensor.name,
               "' does not match its checksum in the manifest (XXH64 ", hex64(hash.digest()), ", expected ",
               hex64(checksum), "): the file is corrupted");
}

}  // namespace

void restore_checkpoint(const std::string& path, const CheckpointManifest& manifest, TrainingState& state,
                        Communicator& communicator) {
  on_every_rank(communicator, [&] {
    require_files_present(path, manifest);
    require_same_contents(path, manifest, state);
    std::map<int, std::unique_ptr<SafetensorsReader>> open;  // by rank: rank 0's file and this rank's
    for (const StateTensor& tensor : state.tensors()) {
      const ManifestTensor listed{tensor.name, tensor.scope, tensor.tensor.dtype(), tensor.tensor.numel()};
      const ManifestFile& file = file_holding(manifest, listed, communicator.rank(), path);
      std::unique_ptr<SafetensorsReader>& reader = open[file.rank];
      if (!reader) reader = open_rank_file(path, manifest, file);
      restore_tensor(tensor, *reader, file.checksums.at(tensor.name));
    }
    for (const StateScalar& scalar : state.scalars()) {
      const ManifestScalar& stored = manifest.scalars.at(scalar.name);
      if (scalar.integer) scalar.restore_integer(stored.integer_value);
      else scalar.restore_number(stored.number_value);
    }
  });
}

}  // namespace ladder
