// Stopping and resuming stage 01 as a user does, and everything around it that every stage shares: the checkpoint
// folder and its --keep, a run killed in the middle of a write, damaged checkpoints, resumes that would not
// continue the same run, and outputs that are not regular files.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/background_command.hpp"
#include "tests/resume_checks.hpp"

namespace ladder {
namespace {

using testing_support::CommandResult;
using testing_support::expect_refused;
using testing_support::run_command;
using testing_support::TempFolder;

const std::string kStage = LADDER_STAGE01_BINARY;
const std::string& kRun = resume_checks::kResumeFlags;

/// Runs 10 of 20 steps with a checkpoint every 5 into `folder`/checkpoints and returns that folder.
std::string stop_at_step_10(const TempFolder& folder) {
  const std::string checkpoints = folder / "checkpoints";
  const CommandResult result =
      run_command(kStage + kRun + " --checkpoint-dir " + checkpoints + " --checkpoint-every 5 --stop-at-step 10");
  EXPECT_EQ(result.exit_code, 0) << result.output;
  return checkpoints;
}

TEST(Stage01Resume, StoppedAndResumedRunHasTheBitsOfAStraightRun) {
  const auto split = resume_checks::expect_resumed_run_equals_straight_run(kStage);
  EXPECT_EQ(split.manifest.at("stage"), "01_fp32_baseline");
  EXPECT_EQ(split.manifest.at("step"), 10);
  EXPECT_EQ(split.manifest.at("scalars").at("adamw.step_count"), 10);
  std::vector<std::string> names;
  for (const auto& tensor : split.manifest.at("tensors")) names.push_back(tensor.at("name"));
  EXPECT_EQ(names, (std::vector<std::string>{"weights", "adamw.first_moment", "adamw.second_moment"}));
  EXPECT_NE(split.stop_output.find("checkpoint after step 10 written to"), std::string::npos) << split.stop_output;
}

TEST(Stage01Resume, AKillInTheMiddleOfACheckpointLeavesThePreviousOneToResumeFrom) {
  TempFolder folder("ladder-resume-kill");
  const std::string checkpoints = folder / "checkpoints";
  const std::string flags = kRun + " --checkpoint-dir " + checkpoints + " --checkpoint-every 10";
  testing_support::BackgroundCommand run(kStage + flags + " --debug-pause-checkpoint 20", folder / "killed.log");
  ASSERT_TRUE(run.wait_for_output("paused halfway through writing")) << run.output();
  EXPECT_TRUE(run.kill_now()) << "SIGKILL ended the run";
  EXPECT_TRUE(std::filesystem::exists(checkpoints + "/step-00000010/manifest.json"));
  EXPECT_FALSE(std::filesystem::exists(checkpoints + "/step-00000020/manifest.json")) << "the killed write is incomplete";

  const CommandResult straight = run_command(kStage + kRun + " --save " + (folder / "straight.safetensors"));
  ASSERT_EQ(straight.exit_code, 0) << straight.output;
  const CommandResult resumed =
      run_command(kStage + flags + " --resume " + checkpoints + " --save " + (folder / "resumed.safetensors"));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("after step 10 of 20"), std::string::npos) << resumed.output;
  EXPECT_TRUE(testing_support::read_file(folder / "straight.safetensors") ==
              testing_support::read_file(folder / "resumed.safetensors"));
  // The interrupted write's leftovers were replaced by the complete checkpoint of step 20.
  EXPECT_TRUE(std::filesystem::exists(checkpoints + "/step-00000020/manifest.json"));
  for (const auto& entry : std::filesystem::directory_iterator(checkpoints + "/step-00000020")) {
    EXPECT_EQ(entry.path().string().find(".tmp."), std::string::npos) << entry.path();
  }
}

TEST(Stage01Resume, OnlyTheNewestKeepCheckpointsStay) {
  TempFolder folder("ladder-resume-keep");
  const CommandResult result = run_command(kStage + testing_support::kTinyRunFlags + " --steps 9 --checkpoint-dir " +
                                           (folder / "checkpoints") + " --checkpoint-every 2 --keep 2");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  std::vector<std::string> kept;
  for (const auto& entry : std::filesystem::directory_iterator(folder / "checkpoints")) {
    kept.push_back(entry.path().filename());
  }
  std::sort(kept.begin(), kept.end());
  EXPECT_EQ(kept, (std::vector<std::string>{"step-00000008", "step-00000009"})) << "every 2 steps, and at the end";
}

TEST(Stage01Resume, OutputsThatAreNotRegularFilesOrFoldersAreRefusedAndLeftAlone) {
  TempFolder folder("ladder-resume-targets");
  const std::string fifo = folder / "pipe";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0644), 0);
  const std::string& quick = testing_support::kQuickRunFlags;
  expect_refused(run_command(kStage + quick + " --save " + fifo), "--save " + fifo + ": is a FIFO");
  if (std::filesystem::is_character_file("/dev/full")) {  // what a user tried as root: the node must stay a device
    expect_refused(run_command(kStage + quick + " --save /dev/full"), "--save /dev/full: is a character device");
    expect_refused(run_command(kStage + quick + " --checkpoint-dir /dev/full"),
                   "--checkpoint-dir /dev/full: is a character device");
    EXPECT_TRUE(std::filesystem::is_character_file("/dev/full"));
  }
  expect_refused(run_command(kStage + quick + " --checkpoint-dir " + fifo), "is a FIFO");
  testing_support::write_file(folder / "file", "x");
  expect_refused(run_command(kStage + quick + " --checkpoint-dir " + (folder / "file")), "is a regular file, not a folder");
  EXPECT_TRUE(std::filesystem::is_fifo(fifo));
  // --metrics is written in place, not renamed over: /dev/null or a pipe stay fine places for it, resumed or not.
  const std::string checkpoints = folder / "checkpoints";
  EXPECT_EQ(run_command(kStage + kRun + " --metrics /dev/null --checkpoint-dir " + checkpoints + " --stop-at-step 5").exit_code, 0);
  const CommandResult piped = run_command(kStage + kRun + " --metrics /dev/stdout --resume " + checkpoints);
  EXPECT_EQ(piped.exit_code, 0) << piped.output;  // run_command reads the output through a pipe
  EXPECT_NE(piped.output.find("\"type\":\"checkpoint\""), std::string::npos) << piped.output;
  EXPECT_TRUE(std::filesystem::is_character_file("/dev/null"));
}

TEST(Stage01Resume, FlagsThatNeedACheckpointFolderSaySo) {
  const std::string& quick = testing_support::kQuickRunFlags;
  expect_refused(run_command(kStage + quick + " --stop-at-step 2"), "--stop-at-step 2: needs --checkpoint-dir");
  expect_refused(run_command(kStage + quick + " --checkpoint-every 2"), "--checkpoint-every 2: needs --checkpoint-dir");
  TempFolder folder("ladder-resume-flags");
  expect_refused(run_command(kStage + quick + " --checkpoint-dir " + (folder / "new") + " --stop-at-step 4"),
                 "--stop-at-step 4: expected a step from 1 to --steps (3)");
  expect_refused(run_command(kStage + quick + " --resume /no/such/folder"), "--resume /no/such/folder: does not exist");
  testing_support::write_file(folder / "weights.safetensors", "");
  expect_refused(run_command(kStage + quick + " --resume " + folder.path().string() + " --load " +
                             (folder / "weights.safetensors")),
                 "drop --load");
  expect_refused(run_command(kStage + quick + " --resume " + folder.path().string()), "no complete checkpoint there");
}

TEST(Stage01Resume, AResumeThatWouldNotContinueTheSameRunIsRefusedByWhatDiffers) {
  TempFolder folder("ladder-resume-identity");
  const std::string checkpoints = stop_at_step_10(folder);
  expect_refused(run_command(kStage + kRun + " --lr 2e-3 --resume " + checkpoints),
                 "--lr: 0.001 in the checkpoint, 2e-3 now");
  expect_refused(run_command(kStage + testing_support::kTinyRunFlags + " --steps 30 --eval-every 5 --resume " + checkpoints),
                 "--steps: 20 in the checkpoint, 30 now");
  expect_refused(run_command(kStage + kRun + " --channels 32 --resume " + checkpoints), "model channels: 16 in the checkpoint, 32 now");
  expect_refused(run_command(kStage + kRun + " --resume " + checkpoints + " --stop-at-step 10"), "expected a later step");
  // The same settings spelled otherwise are the same run; watching it differently is allowed too.
  EXPECT_EQ(run_command(kStage + kRun + " --lr 1e-3 --log-every 1 --threads 1 --resume " + checkpoints).exit_code, 0);
  // A new run may not mix its checkpoints with another run's.
  expect_refused(run_command(kStage + kRun + " --checkpoint-dir " + checkpoints), "--resume " + checkpoints);
}

TEST(Stage01Resume, DamagedCheckpointsAreRefusedByFileAndDefect) {
  TempFolder folder("ladder-resume-damage");
  const std::string checkpoints = stop_at_step_10(folder);
  const std::string shard = checkpoints + "/step-00000010/rank-0-of-1.safetensors";
  const std::string manifest = checkpoints + "/step-00000010/manifest.json";
  const std::string shard_bytes = testing_support::read_file(shard);
  const std::string manifest_text = testing_support::read_file(manifest);

  std::string flipped = shard_bytes;
  flipped[flipped.size() - 3] ^= 0x10;  // one bit of the last tensor's data
  testing_support::write_file(shard, flipped);
  expect_refused(run_command(kStage + kRun + " --resume " + checkpoints), "does not match its checksum");

  testing_support::write_file(shard, shard_bytes.substr(0, shard_bytes.size() - 100));
  expect_refused(run_command(kStage + kRun + " --resume " + checkpoints), "the file is truncated");

  testing_support::write_file(shard, shard_bytes);
  testing_support::write_file(manifest, manifest_text.substr(0, manifest_text.size() / 2));
  expect_refused(run_command(kStage + kRun + " --resume " + checkpoints), "is not valid JSON");

  testing_support::write_file(manifest, manifest_text);
  EXPECT_EQ(run_command(kStage + kRun + " --resume " + checkpoints).exit_code, 0) << "repaired, it resumes";
}

}  // namespace
}  // namespace ladder
