// Stage 05 used as a user would: it runs, prints its memory table, and its losses follow stage 01's run of the same
// seed within bf16's rounding.
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "tests/resume_checks.hpp"
#include "tests/run_command.hpp"

namespace ladder {
namespace {

using testing_support::CommandResult;
using testing_support::expect_refused;
using testing_support::run_command;
using testing_support::step_values;
using testing_support::TempFolder;

const std::string kStage = LADDER_STAGE05_BINARY;
const std::string kBaseline = LADDER_STAGE01_BINARY;
// A run small enough to take well under a second.
const std::string kQuick = " --model tiny --steps 8 --batch-size 8 --eval-problems 4 --eval-batches 1 --samples 0";

TEST(Stage05Cli, HelpExitsZeroAndListsFlags) {
  const CommandResult result = run_command(kStage + " --help");
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("--batch-size"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("bf16"), std::string::npos) << "the description names the stage's technique";
}

TEST(Stage05Cli, UnknownFlagIsRefusedByName) {
  expect_refused(run_command(kStage + kQuick + " --no-such-flag 3"), "--no-such-flag");
}

TEST(Stage05Cli, TinyRunExitsZeroAndReportsBf16Memory) {
  const CommandResult result = run_command(kStage + kQuick);
  ASSERT_EQ(result.exit_code, 0) << result.output;
  // The accountant's table: bf16 weights and gradients at 2 bytes, the fp32 master copy at 4, Adam's moments at 8.
  const std::vector<std::pair<std::string, std::string>> expected_rows = {
      {"parameters ", "2.000"}, {"gradients ", "2.000"}, {"master weights ", "4.000"}, {"optimizer state ", "8.000"}};
  int rows_found = 0;
  std::istringstream lines(result.output);
  for (std::string line; std::getline(lines, line);) {
    for (const auto& [row, bytes_per_parameter] : expected_rows) {
      if (line.rfind(row, 0) != 0) continue;
      ++rows_found;
      // The last column is bytes per parameter.
      EXPECT_EQ(line.substr(line.find_last_not_of(' ', line.size() - 1) - 4, 5), bytes_per_parameter) << line;
    }
  }
  EXPECT_EQ(rows_found, 4) << result.output;
}

TEST(Stage05Cli, LossesFollowStage01WithinBf16Rounding) {
  // The executables end to end, same seed and flags: main.cpp's wiring (the master copy taken after initialisation,
  // the step through the master) shows here. Tolerance u = 2^-8 relative per step, as in stage05_precision_test:
  // measured differences stay below 0.11 u in 20 steps of the tiny model.
  TempFolder folder("ladder-stage05-cli");
  ASSERT_EQ(run_command(kBaseline + kQuick + " --metrics " + (folder / "fp32.jsonl")).exit_code, 0);
  ASSERT_EQ(run_command(kStage + kQuick + " --metrics " + (folder / "bf16.jsonl")).exit_code, 0);
  const std::vector<double> fp32 = step_values(testing_support::read_file(folder / "fp32.jsonl"), "loss");
  const std::vector<double> bf16 = step_values(testing_support::read_file(folder / "bf16.jsonl"), "loss");
  ASSERT_EQ(fp32.size(), 8u);
  ASSERT_EQ(bf16.size(), 8u);
  for (std::size_t step = 0; step < fp32.size(); ++step) {
    EXPECT_NEAR(bf16[step], fp32[step], fp32[step] / 256) << "step " << step + 1;
  }
  EXPECT_NE(bf16, fp32) << "bf16 rounding must show somewhere in the losses";
}

TEST(Stage05Cli, StoppedAndResumedRunHasTheBitsOfAStraightRun) {
  resume_checks::expect_resumed_run_equals_straight_run(kStage);
}

// A checkpoint resumes only where it was written: stage 04 refuses stage 05's by name, and even a manifest edited to
// claim stage 03 is refused by the tensor whose type differs.
TEST(Stage05Cli, ACheckpointOfAnotherStageOrTypeIsRefusedByWhatDiffers) {
  TempFolder folder("ladder-stage05-resume-other-stage");
  const std::string checkpoints = folder / "checkpoints";
  const std::string flags = resume_checks::kResumeFlags;
  ASSERT_EQ(run_command(kStage + flags + " --checkpoint-dir " + checkpoints + " --stop-at-step 10").exit_code, 0);
  expect_refused(run_command(std::string(LADDER_STAGE04_BINARY) + flags + " --resume " + checkpoints),
                 "was written by stage 05_bf16, not 04_loss_scaling");
  const std::string manifest = checkpoints + "/step-00000010/manifest.json";
  std::string text = testing_support::read_file(manifest);
  text.replace(text.find("05_bf16"), 7, "03_master_weights");
  testing_support::write_file(manifest, text);
  expect_refused(run_command(std::string(LADDER_STAGE03_BINARY) + flags + " --resume " + checkpoints),
                 "tensor 'weights' is BF16 there and F16 in this run");
}

}  // namespace
}  // namespace ladder
