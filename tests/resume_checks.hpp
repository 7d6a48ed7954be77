// Stopping and resuming a stage as a user does: 20 steps straight against 10 steps, a checkpoint, and 10 more in a
// new process with --resume. The straight run is the independent answer: every step's numbers, every evaluation and
// the final weights must have the same bits. Each stage's tests call this (07-09 behind mpiexec).
#pragma once

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/run_command.hpp"

namespace ladder::resume_checks {

using testing_support::CommandResult;
using testing_support::run_command;

/// The tiny model, 20 steps, an evaluation every 5: a whole run takes a fraction of a second.
inline const std::string kResumeFlags = testing_support::kTinyRunFlags + " --steps 20 --eval-every 5";

/// What a split run left, for tests that look further.
struct SplitRun {
  std::string stop_output;     ///< the first process's output (10 steps, then stopped)
  std::string resume_output;   ///< the second one's
  nlohmann::json manifest;     ///< manifest.json of the checkpoint after step 10
  std::vector<nlohmann::json> straight_records;  ///< the straight run's step and eval records
};

/// The step and evaluation records of a metrics file, without what the wall clock decides.
inline std::vector<nlohmann::json> training_records(const std::string& jsonl) {
  std::vector<nlohmann::json> records;
  for (nlohmann::json& record : testing_support::jsonl_records(jsonl)) {
    if (record.at("type") != "step" && record.at("type") != "eval") continue;
    record.erase("step_seconds");
    record.erase("tokens_per_second");
    records.push_back(std::move(record));
  }
  return records;
}

/// Runs `command` (a stage, or mpiexec and a stage) with `flags` straight, and split at step 10 (a checkpoint every
/// 5 steps, --stop-at-step 10, then --resume in a new process); expects identical step and evaluation records in one
/// continued metrics file (`records` of them: 20 steps and 4 evaluations, unless the stage logs more), and
/// byte-identical --save files.
inline SplitRun expect_resumed_run_equals_straight_run(const std::string& command, const std::string& flags = "",
                                                       std::size_t records = 20 + 4) {
  SplitRun split;
  testing_support::TempFolder folder("ladder-resume");
  const std::string base = command + kResumeFlags + flags;
  const CommandResult straight =
      run_command(base + " --metrics " + (folder / "straight.jsonl") + " --save " + (folder / "straight.safetensors"));
  EXPECT_EQ(straight.exit_code, 0) << straight.output;
  const std::string checkpoints = folder / "checkpoints";
  const CommandResult stopped = run_command(base + " --checkpoint-dir " + checkpoints +
                                            " --checkpoint-every 5 --stop-at-step 10 --metrics " + (folder / "split.jsonl"));
  split.stop_output = stopped.output;
  EXPECT_EQ(stopped.exit_code, 0) << stopped.output;
  EXPECT_NE(stopped.output.find("stopped after step 10 of 20"), std::string::npos) << stopped.output;
  split.manifest = nlohmann::json::parse(testing_support::read_file(folder / "checkpoints/step-00000010/manifest.json"),
                                         nullptr, /*allow_exceptions=*/false);
  const CommandResult resumed = run_command(base + " --resume " + checkpoints + " --metrics " +
                                            (folder / "split.jsonl") + " --save " + (folder / "split.safetensors"));
  split.resume_output = resumed.output;
  EXPECT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("resumed from " + checkpoints + "/step-00000010 after step 10"), std::string::npos)
      << resumed.output;

  split.straight_records = training_records(testing_support::read_file(folder / "straight.jsonl"));
  const auto split_records = training_records(testing_support::read_file(folder / "split.jsonl"));
  EXPECT_EQ(split.straight_records.size(), records) << "steps and evaluations";
  EXPECT_EQ(split_records.size(), split.straight_records.size());
  for (std::size_t i = 0; i < std::min(split_records.size(), split.straight_records.size()); ++i) {
    EXPECT_EQ(split_records[i], split.straight_records[i]) << "record " << i << " (JSON numbers keep every bit)";
  }
  const std::string straight_weights = testing_support::read_file(folder / "straight.safetensors");
  EXPECT_FALSE(straight_weights.empty());
  EXPECT_TRUE(straight_weights == testing_support::read_file(folder / "split.safetensors"))
      << "the final weights of the resumed run differ from the straight run's";
  return split;
}

}  // namespace ladder::resume_checks
