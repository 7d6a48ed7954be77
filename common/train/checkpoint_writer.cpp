// write_checkpoint: every rank's file first, then the manifest, so that a checkpoint with a manifest is complete.
#include <chrono>
#include <filesystem>
#include <iostream>
#include <thread>

#include "common/error.hpp"
#include "common/train/atomic_file.hpp"
#include "common/train/checkpoint_folder.hpp"
#include "common/train/checkpoint_io.hpp"
#include "common/train/checkpoint_staging.hpp"
#include "common/train/checksum.hpp"
#include "common/train/rank_agreement.hpp"
#include "common/train/safetensors.hpp"

namespace ladder {
namespace {

/// How long --debug-pause-checkpoint waits to be killed before it gives up (so a forgotten run does not linger).
constexpr std::chrono::seconds kLongestPause{120};

/// Whether rank `rank`'s file holds `tensor`: rank 0's holds the replicated tensors, every rank's its own shards.
bool in_file_of(int rank, const StateTensor& tensor) { return tensor.scope == StateScope::Sharded || rank == 0; }

/// The testing aid: the file is half-written (its first tensor is out), and the test kills the run now.
[[noreturn]] void pause_halfway(const std::string& file, std::int64_t step) {
  std::cout << "checkpoint of step " << step << ": paused halfway through writing " << file
            << " (--debug-pause-checkpoint)" << std::endl;
  std::this_thread::sleep_for(kLongestPause);
  throw LadderError(make_message("--debug-pause-checkpoint: the run was not stopped within ", kLongestPause.count(),
                                 " s of pausing in the checkpoint of step ", step));
}

/// Writes this rank's tensors to `path` and returns its report: [file bytes, XXH64 of each of the state's tensors
/// (0 for those in other ranks' files)].
std::vector<std::uint64_t> write_rank_file(const std::string& path, const CheckpointRequest& request,
                                           const TrainingState& state, int rank, int world) {
  std::vector<TensorToWrite> layout;
  for (const StateTensor& tensor : state.tensors()) {
    if (in_file_of(rank, tensor)) layout.push_back({tensor.name, tensor.tensor.dtype(), {tensor.tensor.numel()}, nullptr});
  }
  // Each file says which checkpoint and rank it belongs to, so a file swapped in from another is caught by name.
  SafetensorsWriter writer(path, layout,
                           {{"format", "ladder-training-state-v1"},
                            {"stage", request.identity.stage},
                            {"step", std::to_string(request.step)},
                            {"rank", std::to_string(rank)},
                            {"world_size", std::to_string(world)}});
  std::vector<std::uint64_t> report(1 + state.tensors().size(), 0);
  for (std::size_t index = 0; index < state.tensors().size(); ++index) {
    const StateTensor& tensor = state.tensors()[index];
    if (!in_file_of(rank, tensor)) continue;
    Xxh64 checksum;
    visit_host_pieces(tensor.tensor, StagingDirection::Save, [&](void* host, std::uint64_t, std::uint64_t bytes) {
      checksum.update(host, bytes);
      writer.write_part(host, bytes);
    });
    report[1 + index] = checksum.digest();
    if (request.pause_halfway) pause_halfway(path, request.step);
  }
  writer.commit();
  report[0] = std::filesystem::file_size(path);
  return report;
}

CheckpointManifest manifest_of(const CheckpointRequest& request, const TrainingState& state,
                               const std::vector<std::vector<std::uint64_t>>& reports, int world) {
  CheckpointManifest manifest;
  manifest.identity = request.identity;
  manifest.step = request.step;
  manifest.device = request.device;
  for (const auto& [name, size] : state.units()) manifest.layout.push_back({name, size});
  for (const StateTensor& tensor : state.tensors()) {
    manifest.tensors.push_back({tensor.name, tensor.scope, tensor.tensor.dtype(), tensor.tensor.numel()});
  }
  for (const StateScalar& scalar : state.scalars()) {
    ManifestScalar value;
    value.integer = scalar.integer;
    if (scalar.integer) value.integer_value = scalar.read_integer();
    else value.number_value = scalar.read_number();
    manifest.scalars[scalar.name] = value;
  }
  for (int rank = 0; rank < world; ++rank) {
    const std::vector<std::uint64_t>& report = reports[static_cast<std::size_t>(rank)];
    if (report[0] == 0) continue;  // this rank holds nothing of its own
    ManifestFile file{rank, shard_file_name(rank, world), report[0], {}};
    for (std::size_t index = 0; index < state.tensors().size(); ++index) {
      if (in_file_of(rank, state.tensors()[index])) file.checksums[state.tensors()[index].name] = report[1 + index];
    }
    manifest.files.push_back(std::move(file));
  }
  return manifest;
}

}  // namespace

CheckpointWrite write_checkpoint(const CheckpointRequest& request, const TrainingState& state,
                                 Communicator& communicator) {
  const int rank = communicator.rank();
  const int world = communicator.world_size();
  CheckpointWrite result;
  result.path = checkpoint_folder_path(request.folder, request.step);
  // 1. Rank 0 makes the empty sub-folder; the agreement doubles as the barrier before anyone writes into it.
  on_every_rank(communicator, [&] {
    if (rank == 0) prepare_checkpoint_folder(request.folder, request.step);
  });
  // 2. Every rank with something to write writes its own file, atomically.
  bool has_file = rank == 0;
  for (const StateTensor& tensor : state.tensors()) has_file = has_file || in_file_of(rank, tensor);
  std::vector<std::uint64_t> report(1 + state.tensors().size(), 0);
  on_every_rank(communicator, [&] {
    if (has_file) {
      const std::string path = (std::filesystem::path(result.path) / shard_file_name(rank, world)).string();
      report = write_rank_file(path, request, state, rank, world);
    }
  });
  // 3. Every rank reports its file; only now, all of them on disk, rank 0 writes the manifest that makes it complete.
  const auto reports = gather_from_every_rank(communicator, report);
  on_every_rank(communicator, [&] {
    if (rank != 0) return;
    const CheckpointManifest manifest = manifest_of(request, state, reports, world);
    write_file_atomically((std::filesystem::path(result.path) / kManifestFileName).string(), manifest_json(manifest),
                          "checkpoint manifest");
    prune_checkpoints(request.folder, request.keep);
  });
  for (const std::vector<std::uint64_t>& each : reports) {
    result.bytes += each[0];
    result.files += each[0] > 0 ? 1 : 0;
  }
  return result;
}

}  // namespace ladder
