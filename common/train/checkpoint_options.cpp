#include "common/train/checkpoint_options.hpp"

#include <CLI/CLI.hpp>

#include <filesystem>
#include <sstream>

#include "common/error.hpp"
#include "common/train/atomic_file.hpp"

namespace ladder {

void add_checkpoint_flags(CLI::App& app, TrainOptions& options) {
  const std::string group = "Stopping and resuming";
  app.add_option("--checkpoint-dir", options.checkpoint_dir,
                 "Write the whole training state (weights, master weights, moments, scaler, step) into this folder")
      ->group(group);
  app.add_option("--checkpoint-every", options.checkpoint_every,
                 "A checkpoint every K steps (0: only at the end and at --stop-at-step)")
      ->group(group);
  app.add_option("--keep", options.keep_checkpoints, "How many of the newest checkpoints stay in the folder")
      ->group(group);
  app.add_option("--stop-at-step", options.stop_at_step,
                 "End the run after step K of the --steps schedule, with a checkpoint there (0: run to the end)")
      ->group(group);
  app.add_option("--resume", options.resume_dir,
                 "Continue from the newest complete checkpoint in this folder (same stage, flags and ranks)")
      ->group(group);
  app.add_option("--debug-pause-checkpoint", options.debug_pause_checkpoint,
                 "Testing aid: stall halfway through writing the checkpoint of this step (0: never)")
      ->group(group);
}

void validate_checkpoint_options(TrainOptions& options) {
  if (!options.resume_dir.empty()) {
    const std::string kind = file_kind(options.resume_dir);
    LADDER_CHECK(!kind.empty(), "--resume ", options.resume_dir, ": does not exist; expected a folder of checkpoints");
    LADDER_CHECK(kind == "a folder", "--resume ", options.resume_dir, ": is ", kind,
                 "; expected a folder of checkpoints (the --checkpoint-dir of the run to continue)");
    LADDER_CHECK(options.init_from.empty(), "--load ", options.init_from, " and --resume ", options.resume_dir,
                 ": a resumed run takes its weights from the checkpoint; drop --load");
    if (options.checkpoint_dir.empty()) options.checkpoint_dir = options.resume_dir;
  }
  if (!options.checkpoint_dir.empty()) {
    const std::string kind = file_kind(options.checkpoint_dir);
    LADDER_CHECK(kind.empty() || kind == "a folder", "--checkpoint-dir ", options.checkpoint_dir, ": is ", kind,
                 ", not a folder; it is left alone (name a folder, which is created if missing)");
    const std::filesystem::path parent = std::filesystem::path(options.checkpoint_dir).parent_path();
    LADDER_CHECK(!kind.empty() || parent.empty() || std::filesystem::is_directory(parent), "--checkpoint-dir ",
                 options.checkpoint_dir, ": the folder '", parent.string(), "' that would hold it does not exist");
  }
  const bool has_folder = !options.checkpoint_dir.empty();
  LADDER_CHECK(options.checkpoint_every >= 0, "--checkpoint-every ", options.checkpoint_every,
               ": expected an integer >= 0 (0: only at the end)");
  LADDER_CHECK(options.checkpoint_every == 0 || has_folder, "--checkpoint-every ", options.checkpoint_every,
               ": needs --checkpoint-dir DIR, the folder to write them into");
  LADDER_CHECK(options.keep_checkpoints >= 1, "--keep ", options.keep_checkpoints, ": expected an integer >= 1");
  LADDER_CHECK(options.stop_at_step >= 0 && options.stop_at_step <= options.steps, "--stop-at-step ",
               options.stop_at_step, ": expected a step from 1 to --steps (", options.steps, "), or 0 to run to the end");
  LADDER_CHECK(options.stop_at_step == 0 || has_folder, "--stop-at-step ", options.stop_at_step,
               ": needs --checkpoint-dir DIR, where the state to resume from is written");
  LADDER_CHECK(options.debug_pause_checkpoint >= 0 && options.debug_pause_checkpoint <= options.steps,
               "--debug-pause-checkpoint ", options.debug_pause_checkpoint, ": expected a step from 1 to --steps, or 0");
  LADDER_CHECK(options.debug_pause_checkpoint == 0 || has_folder, "--debug-pause-checkpoint needs --checkpoint-dir");
}

std::map<std::string, std::string> flag_values_of(const CLI::App& app) {
  // CLI11 writes every option as "name=value" (flags as true/false, defaults included): one spelling for all of them.
  std::map<std::string, std::string> values;
  std::istringstream lines(app.config_to_str(/*default_also=*/true, /*write_description=*/false));
  for (std::string line; std::getline(lines, line);) {
    const auto equals = line.find('=');
    if (equals == std::string::npos || equals == 0) continue;
    std::string value = line.substr(equals + 1);
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
    values["--" + line.substr(0, equals)] = value;
  }
  return values;
}

}  // namespace ladder
