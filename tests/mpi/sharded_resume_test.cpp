// Stages 07-09 stopped and resumed as users launch them (mpiexec -n 2 and -n 4): every rank writes its own file, rank
// 0 the manifest once all are written, and the resumed job continues with the bits of one that never stopped. A
// damaged checkpoint (a file truncated, corrupted or missing, a manifest of another world size) ends the job with a
// clear message and a non-zero exit, never a hang: each job runs under `timeout`, and a hang would show as its code.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <tuple>

#include "tests/resume_checks.hpp"
#include "tests/sharded_cli_checks.hpp"

namespace ladder {
namespace {

using testing_support::CommandResult;
using testing_support::run_command;
using testing_support::TempFolder;

/// Exit code of `timeout` when the job it watched did not end in time.
constexpr int kTimedOut = 124;

/// mpiexec for `ranks` ranks, ended (and reported as 124) if it ever hangs.
std::string launch(int ranks) { return "timeout -k 10 120 env " + sharded_cli::launch(ranks); }

std::string binary_of(const std::string& stage) {
  if (stage == "07_zero1") return LADDER_STAGE07_BINARY;
  if (stage == "08_zero2") return LADDER_STAGE08_BINARY;
  return LADDER_STAGE09_BINARY;
}

class ShardedResume : public ::testing::TestWithParam<std::tuple<std::string, int>> {};

TEST_P(ShardedResume, StoppedAndResumedRunHasTheBitsOfAStraightRun) {
  const auto& [stage, ranks] = GetParam();
  const auto split = resume_checks::expect_resumed_run_equals_straight_run(launch(ranks) + binary_of(stage));
  EXPECT_EQ(split.manifest.at("world_size"), ranks);
  EXPECT_EQ(split.manifest.at("files").size(), static_cast<std::size_t>(ranks)) << "a file per rank";
  for (const auto& tensor : split.manifest.at("tensors")) {
    // 07 and 08 keep the whole bf16 weights on every rank (rank 0 writes them); 09 shards them too.
    const bool replicated = tensor.at("name") == "weights" && stage != "09_fsdp";
    EXPECT_EQ(tensor.at("scope"), replicated ? "replicated" : "sharded") << tensor.dump();
  }
}

INSTANTIATE_TEST_SUITE_P(StagesAndRanks, ShardedResume,
                         ::testing::Combine(::testing::Values("07_zero1", "08_zero2", "09_fsdp"), ::testing::Values(2, 4)),
                         [](const auto& info) {
                           return std::get<0>(info.param).substr(0, 2) + "_np" + std::to_string(std::get<1>(info.param));
                         });

/// A checkpoint of `stage` at 2 ranks after step 10, damaged by `damage(step folder)`, then resumed with `ranks`:
/// the job must fail with `message`, not hang.
void expect_damage_refused(const std::string& stage, const std::function<void(const std::string&)>& damage,
                           const std::string& message, int ranks = 2) {
  TempFolder folder("ladder-sharded-damage");
  const std::string checkpoints = folder / "checkpoints";
  const std::string command = binary_of(stage) + resume_checks::kResumeFlags;
  const CommandResult stopped = run_command(launch(2) + command + " --checkpoint-dir " + checkpoints + " --stop-at-step 10");
  ASSERT_EQ(stopped.exit_code, 0) << stopped.output;
  damage(checkpoints + "/step-00000010");
  const CommandResult resumed = run_command(launch(ranks) + command + " --resume " + checkpoints);
  EXPECT_NE(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.exit_code, kTimedOut) << "the job hung:\n" << resumed.output;
  EXPECT_NE(resumed.output.find(message), std::string::npos) << "expected '" << message << "' in:\n" << resumed.output;
}

TEST(ShardedResumeDamage, ATruncatedShardIsRefused) {
  expect_damage_refused("07_zero1", [](const std::string& step) {
    const std::string shard = step + "/rank-1-of-2.safetensors";
    std::filesystem::resize_file(shard, std::filesystem::file_size(shard) - 64);
  }, "rank-1-of-2.safetensors is");
}

TEST(ShardedResumeDamage, ACorruptedShardIsRefusedOnEveryRank) {
  expect_damage_refused("09_fsdp", [](const std::string& step) {
    const std::string shard = step + "/rank-1-of-2.safetensors";
    std::string bytes = testing_support::read_file(shard);
    bytes[bytes.size() - 5] ^= 0x01;
    testing_support::write_file(shard, bytes);
  }, "does not match its checksum in the manifest");
}

TEST(ShardedResumeDamage, AMissingShardIsRefused) {
  expect_damage_refused("08_zero2", [](const std::string& step) {
    std::filesystem::remove(step + "/rank-1-of-2.safetensors");
  }, "rank 1's file rank-1-of-2.safetensors is missing");
}

TEST(ShardedResumeDamage, AnotherWorldSizeIsRefused) {
  expect_damage_refused("07_zero1", [](const std::string&) {}, "was written by 2 ranks, and this run has 4", 4);
}

TEST(ShardedResumeDamage, AManifestNamingAnotherWorldSizeIsRefused) {
  expect_damage_refused("09_fsdp", [](const std::string& step) {
    const std::string manifest = step + "/manifest.json";
    std::string text = testing_support::read_file(manifest);
    text.replace(text.find("\"world_size\": 2"), 15, "\"world_size\": 4");
    testing_support::write_file(manifest, text);
  }, "was written by 4 ranks, and this run has 2");
}

}  // namespace
}  // namespace ladder
