// Stage 01 used as a user would: bad input is refused with a message naming it, runs are reproducible, and
// the default run learns.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/run_command.hpp"

namespace ladder {
namespace {

using testing_support::CommandResult;
using testing_support::expect_refused;
using testing_support::run_command;
using testing_support::step_values;
using testing_support::TempFolder;

const std::string kStage = LADDER_STAGE01_BINARY;
const std::string& kQuick = testing_support::kQuickRunFlags;

TEST(Stage01Cli, UnknownFlagIsRefusedByName) {
  expect_refused(run_command(kStage + " --no-such-flag 3"), "--no-such-flag");
}

TEST(Stage01Cli, HelpExitsZeroAndListsFlags) {
  const CommandResult result = run_command(kStage + " --help");
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_NE(result.output.find("--batch-size"), std::string::npos) << result.output;
}

// The CPU suite runs with no GPU visible (tests/CMakeLists.txt hides it), so this holds on every machine.
TEST(Stage01Cli, CudaWithoutAVisibleGpuIsRefusedWithTheReason) {
  const CommandResult result = run_command(kStage + kQuick + " --device cuda");
  expect_refused(result, "--device cuda: no CUDA GPU is visible");
  expect_refused(run_command(kStage + kQuick + " --device cpu --tf32"), "--tf32");
}

TEST(Stage01Cli, MissingDataFileIsNamed) {
  expect_refused(run_command(kStage + kQuick + " --data text:/no/such/file.txt"), "/no/such/file.txt");
}

TEST(Stage01Cli, EmptyAndTooShortTextFilesAreRefused) {
  TempFolder folder("ladder-stage01-cli-text");
  testing_support::write_file(folder / "empty.txt", "");
  testing_support::write_file(folder / "short.txt", "hello");
  expect_refused(run_command(kStage + kQuick + " --data text:" + (folder / "empty.txt")), "empty.txt");
  expect_refused(run_command(kStage + kQuick + " --data text:" + (folder / "short.txt")), "short.txt");
}

TEST(Stage01Cli, HeadsThatDoNotDivideTheWidthAreRefused) {
  const CommandResult result = run_command(kStage + kQuick + " --heads 3");
  expect_refused(result, "heads");
  EXPECT_NE(result.output.find("16"), std::string::npos) << result.output;  // the width it failed to divide
}

TEST(Stage01Cli, TruncatedAndCorruptedCheckpointsAreRefused) {
  TempFolder folder("ladder-stage01-cli-checkpoint");
  const std::string good = folder / "good.safetensors";
  const CommandResult saved = run_command(kStage + kQuick + " --save " + good);
  ASSERT_EQ(saved.exit_code, 0) << saved.output;
  EXPECT_EQ(run_command(kStage + kQuick + " --load " + good).exit_code, 0);

  const std::string content = testing_support::read_file(good);
  testing_support::write_file(folder / "truncated.safetensors", content.substr(0, content.size() / 2));
  expect_refused(run_command(kStage + kQuick + " --load " + (folder / "truncated.safetensors")), "truncated.safetensors");

  std::string corrupted = content;
  corrupted[10] = '#';  // inside the JSON header
  testing_support::write_file(folder / "corrupted.safetensors", corrupted);
  expect_refused(run_command(kStage + kQuick + " --load " + (folder / "corrupted.safetensors")), "corrupted.safetensors");

  // A checkpoint of another shape is refused by the field that differs.
  expect_refused(run_command(kStage + kQuick + " --channels 32 --load " + good), "channels");
}

TEST(Stage01Cli, SavingIntoAMissingFolderFailsBeforeTraining) {
  expect_refused(run_command(kStage + kQuick + " --save /no/such/folder/model.safetensors"), "/no/such/folder");
}

TEST(Stage01Cli, SameSeedGivesBitIdenticalLosses) {
  TempFolder folder("ladder-stage01-cli-seed");
  const std::string flags = " --model tiny --steps 8 --batch-size 4 --samples 0 --eval-problems 8";
  ASSERT_EQ(run_command(kStage + flags + " --metrics " + (folder / "a.jsonl")).exit_code, 0);
  ASSERT_EQ(run_command(kStage + flags + " --metrics " + (folder / "b.jsonl")).exit_code, 0);
  ASSERT_EQ(run_command(kStage + flags + " --seed 7 --metrics " + (folder / "c.jsonl")).exit_code, 0);
  const auto a = step_values(testing_support::read_file(folder / "a.jsonl"), "loss");
  const auto b = step_values(testing_support::read_file(folder / "b.jsonl"), "loss");
  const auto c = step_values(testing_support::read_file(folder / "c.jsonl"), "loss");
  ASSERT_EQ(a.size(), 8u);
  EXPECT_EQ(a, b);  // exact: JSON numbers round-trip doubles
  EXPECT_NE(a, c);
}

TEST(Stage01Cli, DefaultRunLearnsAdditionWithinAboutAMinute) {
  // The README's default configuration, unchanged: small GPT, addition task.
  TempFolder folder("ladder-stage01-cli-learn");
  const CommandResult result = run_command(kStage + " --metrics " + (folder / "run.jsonl"));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  double first_loss = -1, last_loss = -1, accuracy = -1;
  const std::string jsonl = testing_support::read_file(folder / "run.jsonl");
  for (const nlohmann::json& record : testing_support::jsonl_records(jsonl)) {
    if (record.at("type") == "step") {
      if (first_loss < 0) first_loss = record.at("loss");
      last_loss = record.at("loss");
    } else if (record.at("type") == "eval" && record.contains("accuracy")) {
      accuracy = record.at("accuracy");
    }
  }
  // Start: ln(16) ≈ 2.77 nats over 16 tokens. "Well below" is under a third of it.
  EXPECT_GT(first_loss, 2.0);
  EXPECT_LT(last_loss, first_loss / 3) << result.output;
  // Chance on an exact 3-digit answer is about 1 in 1000; the default run reaches about 100% (seeds 7, 42, 1337).
  EXPECT_GT(accuracy, 0.5) << result.output;
  EXPECT_NE(result.output.find("bytes/param"), std::string::npos) << "the memory table is printed at the end";
}

}  // namespace
}  // namespace ladder
