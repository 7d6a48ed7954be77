#include "common/train/run_checkpoints.hpp"

#include <filesystem>
#include <utility>

#include "common/error.hpp"
#include "common/train/checkpoint_folder.hpp"
#include "common/train/checkpoint_io.hpp"
#include "common/train/experiment.hpp"

namespace ladder {
namespace {

/// A folder that new checkpoints go into must not hold another run's: "newest" would then mix the two runs.
void require_no_checkpoints(const std::string& folder) {
  const auto newest = newest_complete_checkpoint(folder);
  LADDER_CHECK(!newest, "--checkpoint-dir ", folder, " already holds checkpoints (the newest after step ",
               newest ? newest->step : 0, "): pass --resume ", folder,
               " to continue that run, or name an empty folder to start a new one");
}

}  // namespace

RunCheckpoints::RunCheckpoints(const TrainOptions& options, RunIdentity identity, Device device)
    : options_(options), identity_(std::move(identity)), device_(device_name(device)) {
  if (options_.resume_dir.empty()) {
    if (!options_.checkpoint_dir.empty()) require_no_checkpoints(options_.checkpoint_dir);
    return;
  }
  const auto newest = newest_complete_checkpoint(options_.resume_dir);
  if (!newest) {
    const bool any = !list_checkpoints(options_.resume_dir).empty();
    throw LadderError(make_message("--resume ", options_.resume_dir, ": no complete checkpoint there",
                                   any ? " (only writes that did not finish: no manifest.json)" : "",
                                   "; start the run with --checkpoint-dir ", options_.resume_dir, " instead"));
  }
  resumed_path_ = newest->path;
  resumed_manifest_ = read_manifest((std::filesystem::path(newest->path) / kManifestFileName).string());
  LADDER_CHECK(resumed_manifest_.step == newest->step, "checkpoint ", newest->path, ": its manifest says step ",
               resumed_manifest_.step, ", its folder name step ", newest->step);
  require_same_run(resumed_manifest_.identity, identity_, resumed_path_);
  resumed_ = true;
  LADDER_CHECK(options_.stop_at_step == 0 || options_.stop_at_step > resumed_manifest_.step, "--stop-at-step ",
               options_.stop_at_step, ": the run resumes after step ", resumed_manifest_.step,
               " already; expected a later step");
  std::error_code error;
  if (!std::filesystem::equivalent(options_.checkpoint_dir, options_.resume_dir, error)) {
    require_no_checkpoints(options_.checkpoint_dir);  // a new folder for the continued run's checkpoints
  }
}

std::int64_t RunCheckpoints::end_step() const {
  return options_.stop_at_step > 0 ? options_.stop_at_step : options_.steps;
}

std::string RunCheckpoints::describe_resume() const {
  std::string line = "resumed from " + resumed_path_ + " after step " + std::to_string(resumed_manifest_.step) +
                     " of " + std::to_string(options_.steps);
  if (resumed_manifest_.device != device_) {
    line += " (it trained on " + resumed_manifest_.device + " and continues on " + device_ +
            ": the same run, but not bit for bit)";
  }
  return line;
}

void RunCheckpoints::attach(TrainingState& state, Communicator& communicator) {
  state_ = &state;
  communicator_ = &communicator;
  LADDER_CHECK(communicator.world_size() == identity_.world_size, "RunCheckpoints: ", communicator.world_size(),
               " ranks, but the experiment was made for ", identity_.world_size);
  if (resumed_) restore_checkpoint(resumed_path_, resumed_manifest_, state, communicator);
}

void RunCheckpoints::after_step(std::int64_t done, TrainingLog& log) {
  // A stage that never handed over its state would train on from freshly initialised weights after --resume.
  LADDER_CHECK(state_ != nullptr || (!resumed_ && options_.checkpoint_dir.empty()), "--resume and --checkpoint-dir: ",
               identity_.stage, " did not hand its training state to the experiment (Experiment::resume)");
  if (options_.checkpoint_dir.empty()) return;
  const bool due = done == end_step() || (options_.checkpoint_every > 0 && done % options_.checkpoint_every == 0);
  if (!due) return;
  const Stopwatch stopwatch;
  CheckpointRequest request;
  request.folder = options_.checkpoint_dir;
  request.step = done;
  request.keep = options_.keep_checkpoints;
  request.identity = identity_;
  request.device = device_;
  request.pause_halfway = options_.debug_pause_checkpoint == done;
  const CheckpointWrite written = write_checkpoint(request, *state_, *communicator_);
  log.log_checkpoint(done, written.path, stopwatch.seconds(), written.bytes, written.files);
}

}  // namespace ladder
