// Stage 02 used as a user would: a run logs the two fp16 diagnostics every step, and a run that breaks (NaN) still
// evaluates, samples, saves, says what happened and exits 0 - breaking is this stage's lesson, not an error.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/resume_checks.hpp"
#include "tests/run_command.hpp"

namespace ladder {
namespace {

using testing_support::CommandResult;
using testing_support::expect_refused;
using testing_support::run_command;
using testing_support::step_records;
using testing_support::TempFolder;

const std::string kStage = LADDER_STAGE02_BINARY;
const std::string kQuick = " --model tiny --batch-size 8 --eval-problems 4 --eval-batches 1";

TEST(Stage02Cli, HelpExitsZeroAndNamesTheStage) {
  const CommandResult result = run_command(kStage + " --help");
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("naive fp16"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("--batch-size"), std::string::npos) << result.output;
}

TEST(Stage02Cli, UnknownFlagIsRefusedByName) {
  // --loss-scale is stage 04's flag, not this one's.
  expect_refused(run_command(kStage + " --loss-scale 1024"), "--loss-scale");
}

TEST(Stage02Cli, EveryStepLogsTheFractionOfZeroGradientsAndOfUnchangedWeights) {
  TempFolder folder("ladder-stage02-cli-extras");
  const CommandResult result =
      run_command(kStage + kQuick + " --steps 5 --samples 0 --metrics " + (folder / "run.jsonl"));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("| zero_grads "), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("| unchanged "), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("all 5 step losses were finite"), std::string::npos) << result.output;
  const std::vector<nlohmann::json> steps = step_records(testing_support::read_file(folder / "run.jsonl"));
  for (const nlohmann::json& step : steps) {
    for (const char* extra : {"zero_grads", "unchanged"}) {
      const double fraction = step.at(extra);
      EXPECT_GE(fraction, 0.0) << extra;
      EXPECT_LE(fraction, 1.0) << extra;
    }
    // At lr ≤ 3e-3 most weights of 0.02 move (half an ulp there is 8e-6), so "unchanged" is far from 1.
    EXPECT_LT(step.at("unchanged").get<double>(), 0.5) << step.dump();
  }
  EXPECT_EQ(steps.size(), 5u);
}

TEST(Stage02Cli, ARunThatTurnsToNaNFinishesReportsItAndExitsZero) {
  // lr 1 on the tiny model: fp16 breaks within a few steps (measured: NaN from step 10 of 12).
  TempFolder folder("ladder-stage02-cli-nan");
  const CommandResult result = run_command(kStage + kQuick + " --steps 12 --lr 1 --samples 2 --save " +
                                           (folder / "broken.safetensors") + " --metrics " + (folder / "run.jsonl"));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("the loss was NaN or inf first at step"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("eval at step 12"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("sample "), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("bytes/param"), std::string::npos) << result.output;
  EXPECT_FALSE(testing_support::read_file(folder / "broken.safetensors").empty());
  // JSON has no NaN: the metrics file writes null, and every line still parses.
  bool saw_null_loss = false;
  for (const nlohmann::json& step : step_records(testing_support::read_file(folder / "run.jsonl"))) {
    if (step.at("loss").is_null()) saw_null_loss = true;
  }
  EXPECT_TRUE(saw_null_loss);
}

// The fp16 weights and fp16 moments come back with every bit, so the run continues as if it had never stopped.
TEST(Stage02Cli, StoppedAndResumedRunHasTheBitsOfAStraightRun) {
  const auto split = resume_checks::expect_resumed_run_equals_straight_run(kStage);
  for (const auto& tensor : split.manifest.at("tensors")) EXPECT_EQ(tensor.at("dtype"), "F16") << tensor.dump();
}

}  // namespace
}  // namespace ladder
