// Stage 04 used as a user would: its flags are listed and validated by name, the step log carries the scale
// and the skipped-step count, an absurd scale backs off until the gradients fit, and with S fixed at 1 it trains
// exactly as stage 03 does.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "tests/resume_checks.hpp"
#include "tests/run_command.hpp"

namespace ladder {
namespace {

using testing_support::CommandResult;
using testing_support::expect_refused;
using testing_support::run_command;
using testing_support::step_records;
using testing_support::TempFolder;

const std::string kStage = LADDER_STAGE04_BINARY;
const std::string& kTiny = testing_support::kTinyRunFlags;
const std::string& kQuick = testing_support::kQuickRunFlags;

TEST(Stage04Cli, HelpListsTheLossScalingFlags) {
  const CommandResult result = run_command(kStage + " --help");
  EXPECT_EQ(result.exit_code, 0);
  for (const char* flag : {"--loss-scale", "--scale-growth", "--scale-backoff", "--scale-interval", "--min-loss-scale",
                           "--fixed-loss-scale", "--batch-size"}) {
    EXPECT_NE(result.output.find(flag), std::string::npos) << flag << " missing from:\n" << result.output;
  }
}

TEST(Stage04Cli, BadScalerFlagsAreRefusedByName) {
  expect_refused(run_command(kStage + kQuick + " --scale-backoff 1.5"), "--scale-backoff 1.5");
  expect_refused(run_command(kStage + kQuick + " --scale-backoff 0"), "--scale-backoff");
  expect_refused(run_command(kStage + kQuick + " --scale-growth 1"), "--scale-growth");
  expect_refused(run_command(kStage + kQuick + " --scale-interval 0"), "--scale-interval");
  expect_refused(run_command(kStage + kQuick + " --min-loss-scale 0"), "--min-loss-scale");
  expect_refused(run_command(kStage + kQuick + " --loss-scale -4"), "--loss-scale");
  expect_refused(run_command(kStage + kQuick + " --loss-scale inf"), "--loss-scale");
  // Below the default floor of 1: the message names both flags, so the fix is plain.
  const CommandResult below_floor = run_command(kStage + kQuick + " --loss-scale 0.5");
  expect_refused(below_floor, "--loss-scale 0.5");
  EXPECT_NE(below_floor.output.find("--min-loss-scale"), std::string::npos) << below_floor.output;
  expect_refused(run_command(kStage + kQuick + " --scale-backoff half"), "--scale-backoff");
  EXPECT_EQ(run_command(kStage + kQuick + " --loss-scale 0.5 --min-loss-scale 0.25").exit_code, 0);
}

TEST(Stage04Cli, RunsTinyStepsAndLogsTheScaleAndSkippedSteps) {
  TempFolder folder("ladder-stage04-cli-run");
  const CommandResult result = run_command(kStage + kQuick + " --log-every 1 --metrics " + (folder / "run.jsonl"));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("loss_scale"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("skipped_steps"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("bytes/param"), std::string::npos) << "the memory table is printed at the end";
  const auto steps = step_records(testing_support::read_file(folder / "run.jsonl"));
  ASSERT_EQ(steps.size(), 3u);
  for (const auto& step : steps) {
    ASSERT_TRUE(step.contains("loss_scale") && step.contains("skipped_steps")) << step.dump();
    // 3 steps: far from 2000 clean steps, so S can only have stayed at 2^16 or backed off from it.
    const double scale = step.at("loss_scale");
    const double skipped = step.at("skipped_steps");
    EXPECT_EQ(scale, 65536.0 / std::pow(2.0, skipped)) << step.dump();
  }
}

TEST(Stage04Cli, AnAbsurdScaleBacksOffUntilTheGradientsFit) {
  // S = 2^40 scales the loss's gradient (about 1/(number of targets) per logit) far past fp16's 65504, so the
  // first steps overflow and are skipped, each halving S, until the gradients fit; from then on, steps are taken.
  TempFolder folder("ladder-stage04-cli-backoff");
  const double initial = std::ldexp(1.0, 40);
  const CommandResult result = run_command(kStage + kTiny + " --steps 40 --loss-scale 1099511627776 --metrics " +
                                           (folder / "run.jsonl"));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const auto steps = step_records(testing_support::read_file(folder / "run.jsonl"));
  ASSERT_EQ(steps.size(), 40u);
  double previous_skipped = 0, previous_scale = initial;
  bool a_step_was_taken = false;
  for (const auto& step : steps) {
    const double skipped = step.at("skipped_steps"), scale = step.at("loss_scale");
    if (skipped > previous_skipped) {
      EXPECT_FALSE(a_step_was_taken) << "overflow after a clean step at this scale: " << step.dump();
      EXPECT_EQ(scale, previous_scale / 2) << step.dump();
      EXPECT_TRUE(step.at("grad_norm").is_null()) << "a skipped step's norm is inf (JSON null): " << step.dump();
    } else {
      a_step_was_taken = true;
      EXPECT_EQ(scale, previous_scale) << step.dump();
      EXPECT_TRUE(step.at("grad_norm").is_number()) << step.dump();
    }
    previous_skipped = skipped;
    previous_scale = scale;
  }
  // 2^40 / 2^16 = 2^24: at least a dozen halvings are needed before gradients up to about 1 fit below 65504.
  EXPECT_GE(previous_skipped, 12) << result.output;
  EXPECT_TRUE(a_step_was_taken) << result.output;
  EXPECT_EQ(previous_scale, initial / std::pow(2.0, previous_skipped));
}

TEST(Stage04Cli, AFixedScaleThatOverflowsSkipsEveryStep) {
  TempFolder folder("ladder-stage04-cli-fixed");
  const CommandResult result = run_command(kStage + kTiny + " --steps 5 --fixed-loss-scale --loss-scale 1e12 --metrics " +
                                           (folder / "run.jsonl"));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const auto steps = step_records(testing_support::read_file(folder / "run.jsonl"));
  ASSERT_EQ(steps.size(), 5u);
  for (std::size_t i = 0; i < steps.size(); ++i) {
    EXPECT_EQ(steps[i].at("loss_scale").get<double>(), 1e12);
    EXPECT_EQ(steps[i].at("skipped_steps").get<double>(), static_cast<double>(i + 1));
    EXPECT_EQ(steps[i].at("unchanged").get<double>(), 1.0) << "a skipped step moves no weight";
  }
}

TEST(Stage04Cli, WithTheScaleFixedAtOneItTrainsExactlyAsStage03) {
  // S = 1 multiplies and divides by exactly 1: each step's loss (which depends on every earlier update) must be
  // stage 03's to the last bit. JSON numbers round-trip doubles, so == is exact.
  TempFolder folder("ladder-stage04-cli-vs03");
  const std::string flags = " --model tiny --steps 8 --batch-size 4 --samples 0 --eval-problems 8 --metrics ";
  const CommandResult scaled = run_command(kStage + flags + (folder / "04.jsonl") + " --loss-scale 1 --fixed-loss-scale");
  ASSERT_EQ(scaled.exit_code, 0) << scaled.output;
  const CommandResult plain = run_command(std::string(LADDER_STAGE03_BINARY) + flags + (folder / "03.jsonl"));
  ASSERT_EQ(plain.exit_code, 0) << plain.output;
  const auto with_scaler = step_records(testing_support::read_file(folder / "04.jsonl"));
  const auto without = step_records(testing_support::read_file(folder / "03.jsonl"));
  ASSERT_EQ(with_scaler.size(), 8u);
  ASSERT_EQ(without.size(), 8u);
  for (std::size_t i = 0; i < with_scaler.size(); ++i) {
    EXPECT_EQ(with_scaler[i].at("loss").get<double>(), without[i].at("loss").get<double>()) << "step " << i + 1;
    EXPECT_EQ(with_scaler[i].at("grad_norm").get<double>(), without[i].at("grad_norm").get<double>()) << "step " << i + 1;
    EXPECT_EQ(with_scaler[i].at("skipped_steps").get<double>(), 0.0);
  }
}

// A run whose scale backed off at a skipped step (step 1: 1e9 overflows, then 1000) and grew twice (every 4 clean
// steps) before the checkpoint: the scale, the growth tracker (1 clean step since the last growth), the skipped-step
// count and AdamW's step count (9 updates in 10 steps) must all come back, or the steps after it differ.
TEST(Stage04Cli, StoppedAndResumedRunHasTheBitsOfAStraightRunAcrossScaleChanges) {
  const auto split = resume_checks::expect_resumed_run_equals_straight_run(
      kStage, " --loss-scale 1e9 --scale-backoff 1e-6 --scale-interval 4");
  const auto& scalars = split.manifest.at("scalars");
  EXPECT_EQ(scalars.at("loss_scaler.skipped_steps"), 1);
  EXPECT_EQ(scalars.at("loss_scaler.scale"), 4000.0);
  EXPECT_EQ(scalars.at("loss_scaler.growth_tracker"), 1);
  EXPECT_EQ(scalars.at("adamw.step_count"), 9);
  ASSERT_EQ(split.straight_records.size(), 24u);
  EXPECT_EQ(split.straight_records[0].at("skipped_steps"), 1) << "the first step overflowed";
  std::set<double> scales;
  for (const auto& record : split.straight_records) {
    if (record.at("type") == "step") scales.insert(record.at("loss_scale").get<double>());
  }
  EXPECT_GE(scales.size(), 3u) << "the scale moved before and after the checkpoint";
}

}  // namespace
}  // namespace ladder
