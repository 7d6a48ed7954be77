#include "common/train/checkpoint_folder.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>

#include "common/error.hpp"
#include "common/train/atomic_file.hpp"
#include "common/train/checkpoint_manifest.hpp"

namespace ladder {
namespace {

namespace fs = std::filesystem;

const std::string kPrefix = "step-";

/// The step of a sub-folder named step-<digits>, or nothing for any other name.
std::optional<std::int64_t> step_of(const std::string& name) {
  if (name.size() <= kPrefix.size() || name.size() > kPrefix.size() + 18 || name.compare(0, kPrefix.size(), kPrefix) != 0) {
    return std::nullopt;
  }
  std::int64_t step = 0;
  for (std::size_t i = kPrefix.size(); i < name.size(); ++i) {
    if (!std::isdigit(static_cast<unsigned char>(name[i]))) return std::nullopt;
    step = step * 10 + (name[i] - '0');
  }
  return step;
}

/// Removes a checkpoint sub-folder, its manifest first: a removal cut short leaves an incomplete checkpoint, never
/// one that looks complete with files missing. A failure to clean up is reported, since the folder would keep growing.
void remove_checkpoint(const CheckpointFolder& checkpoint) {
  std::error_code error;
  fs::remove(fs::path(checkpoint.path) / kManifestFileName, error);
  if (!error) fs::remove_all(checkpoint.path, error);
  LADDER_CHECK(!error, "cannot remove the old checkpoint ", checkpoint.path, ": ", error.message());
}

}  // namespace

std::string checkpoint_folder_path(const std::string& folder, std::int64_t step) {
  char name[32];
  std::snprintf(name, sizeof name, "step-%08lld", static_cast<long long>(step));
  return (fs::path(folder) / name).string();
}

std::string shard_file_name(int rank, int world) {
  return "rank-" + std::to_string(rank) + "-of-" + std::to_string(world) + ".safetensors";
}

std::vector<CheckpointFolder> list_checkpoints(const std::string& folder) {
  std::vector<CheckpointFolder> found;
  std::error_code error;
  if (!fs::is_directory(folder, error)) return found;
  for (const fs::directory_entry& entry : fs::directory_iterator(folder, error)) {
    const auto step = step_of(entry.path().filename().string());
    if (!step || !entry.is_directory(error)) continue;
    const bool complete = fs::is_regular_file(entry.path() / kManifestFileName, error);
    found.push_back({*step, entry.path().string(), complete});
  }
  LADDER_CHECK(!error, "cannot list the checkpoint folder ", folder, ": ", error.message());
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.step < b.step; });
  return found;
}

std::optional<CheckpointFolder> newest_complete_checkpoint(const std::string& folder) {
  const std::vector<CheckpointFolder> checkpoints = list_checkpoints(folder);
  for (auto it = checkpoints.rbegin(); it != checkpoints.rend(); ++it) {
    if (it->complete) return *it;
  }
  return std::nullopt;
}

std::string prepare_checkpoint_folder(const std::string& folder, std::int64_t step) {
  std::error_code error;
  fs::create_directory(folder, error);
  LADDER_CHECK(!error, "cannot create the checkpoint folder ", folder, ": ", error.message());
  const std::string path = checkpoint_folder_path(folder, step);
  if (const std::string kind = file_kind(path); !kind.empty()) {
    // Only a write of this step that never finished can be here: a complete one would have been resumed from.
    LADDER_CHECK(kind == "a folder" && !fs::exists(fs::path(path) / kManifestFileName), "checkpoint ", path,
                 " already exists and is ", kind == "a folder" ? "complete" : kind, "; it is left alone");
    remove_checkpoint({step, path, false});
  }
  fs::create_directory(path, error);
  LADDER_CHECK(!error, "cannot create the checkpoint folder ", path, ": ", error.message());
  sync_folder_of(path);
  return path;
}

void prune_checkpoints(const std::string& folder, int keep) {
  int complete_kept = 0;
  const std::vector<CheckpointFolder> checkpoints = list_checkpoints(folder);
  for (auto it = checkpoints.rbegin(); it != checkpoints.rend(); ++it) {
    if (it->complete && complete_kept < keep) {
      ++complete_kept;
      continue;
    }
    remove_checkpoint(*it);
  }
}

}  // namespace ladder
