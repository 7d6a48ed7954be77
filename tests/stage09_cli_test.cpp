// Stage 09 launched as a user launches it: mpiexec -n 2, or alone; its flags; its checkpoint, gathered unit by unit
// from the shards, holding the very weights stage 08 saves after the same training.
#include <gtest/gtest.h>

#include "common/train/safetensors.hpp"
#include "tests/sharded_cli_checks.hpp"

namespace ladder {
namespace {

const std::string kStage = LADDER_STAGE09_BINARY;
const std::string kZero2 = LADDER_STAGE08_BINARY;
using testing_support::run_command;

#ifdef LADDER_MPIEXEC
TEST(Stage09Cli, TwoRanksTrainAndRankZeroReports) {
  sharded_cli::expect_two_ranks_train_and_report(
      kStage, {"MixedPrecision(param_dtype=bfloat16, reduce_dtype=float32)", "FULL_SHARD", "over 2 ranks (mpi)"});
}

TEST(Stage09Cli, ARankWithAMissingDataFileEndsTheJobWithItsMessage) {
  sharded_cli::expect_a_failing_rank_ends_the_job(kStage);
}

TEST(Stage09Cli, ItsGatheredCheckpointHoldsStage08sWeightsAndLoadsAtAnotherWorldSize) {
  testing_support::TempFolder folder("ladder-stage09-cli");
  const std::string fsdp = folder / "fsdp.safetensors", zero2 = folder / "zero2.safetensors";
  ASSERT_EQ(run_command(sharded_cli::launch(2) + kStage + testing_support::kQuickRunFlags + " --save " + fsdp).exit_code, 0);
  ASSERT_EQ(run_command(sharded_cli::launch(2) + kZero2 + testing_support::kQuickRunFlags + " --save " + zero2).exit_code, 0);
  const SafetensorsFile a = SafetensorsFile::read(fsdp), b = SafetensorsFile::read(zero2);
  ASSERT_EQ(a.names(), b.names());
  for (const std::string& name : a.names()) EXPECT_EQ(a.get(name).bytes, b.get(name).bytes) << name;
  const auto alone = run_command(kStage + testing_support::kQuickRunFlags + " --load " + fsdp);
  EXPECT_EQ(alone.exit_code, 0) << alone.output;
  EXPECT_NE(alone.output.find("weights loaded from"), std::string::npos) << alone.output;
}
#endif

TEST(Stage09Cli, AloneItIsOneRankWithTheLocalCommunicator) { sharded_cli::expect_alone_it_is_one_rank(kStage); }

TEST(Stage09Cli, FsdpFlagsAreListedAndChecked) {
  sharded_cli::expect_flags_listed_and_checked(
      kStage, {"--reshard-after-forward", "--prefetch", "--reduce-dtype", "--debug-delay-ms"});
  const auto help = testing_support::run_command(kStage + " --help");
  EXPECT_EQ(help.output.find("--bucket-mb"), std::string::npos) << "FSDP reduces unit by unit";
  testing_support::expect_refused(
      testing_support::run_command(kStage + testing_support::kQuickRunFlags + " --prefetch maybe"), "--prefetch");
}

}  // namespace
}  // namespace ladder
