// Stage 06 launched as a user launches it: mpiexec -n 2, or alone. A failing rank must end the whole job with
// its own message, never leave the other rank waiting.
#include <gtest/gtest.h>

#include <string>

#include "tests/resume_checks.hpp"
#include "tests/run_command.hpp"

namespace ladder {
namespace {

using testing_support::CommandResult;
using testing_support::expect_refused;
using testing_support::run_command;
using testing_support::TempFolder;

const std::string kStage = LADDER_STAGE06_BINARY;
const std::string& kQuick = testing_support::kQuickRunFlags;

#ifdef LADDER_MPIEXEC
// Open MPI needs these to start ranks as root and more ranks than cores; MPICH ignores them.
const std::string kLaunch = "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 " +
                            std::string(LADDER_MPIEXEC) + " 2 ";

TEST(Stage06Cli, TwoRanksTrainAndRankZeroReports) {
  const CommandResult result = run_command(kLaunch + kStage + kQuick);
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("over 2 ranks (mpi)"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("comm buffers"), std::string::npos) << "the memory table is printed";
}

TEST(Stage06Cli, ARankWithAMissingDataFileEndsTheJobWithItsMessage) {
  TempFolder folder("ladder-stage06-cli");
  std::string text;
  for (int i = 0; i < 400; ++i) text += "the quick brown fox jumps over the lazy dog. ";
  testing_support::write_file(folder / "shard_0.txt", text);  // rank 1's shard_1.txt does not exist
  const CommandResult result =
      run_command(kLaunch + kStage + kQuick + " --seq-len 16 --data text:" + (folder / "shard_{rank}.txt"));
  EXPECT_NE(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("rank 1 of 2"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("shard_1.txt"), std::string::npos) << result.output;
}
#endif

TEST(Stage06Cli, AloneItIsOneRankWithTheLocalCommunicator) {
  const CommandResult result = run_command(kStage + kQuick);
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("over 1 rank (local)"), std::string::npos) << result.output;
}

TEST(Stage06Cli, DataParallelFlagsAreListedAndChecked) {
  const CommandResult help = run_command(kStage + " --help");
  EXPECT_EQ(help.exit_code, 0);
  for (const char* flag : {"--bucket-mb", "--reduce-dtype", "--debug-delay-ms"}) {
    EXPECT_NE(help.output.find(flag), std::string::npos) << flag;
  }
  expect_refused(run_command(kStage + kQuick + " --reduce-dtype fp16"), "fp16");
}

// The replicas are equal, so rank 0 alone writes the state, and every rank reads it back.
#ifdef LADDER_MPIEXEC
TEST(Stage06Cli, StoppedAndResumedRunHasTheBitsOfAStraightRunAtTwoRanks) {
  const auto split = resume_checks::expect_resumed_run_equals_straight_run(kLaunch + kStage);
  EXPECT_EQ(split.manifest.at("world_size"), 2);
  EXPECT_EQ(split.manifest.at("files").size(), 1u) << "rank 0 writes the replicated state alone";
}
#endif

TEST(Stage06Cli, StoppedAndResumedRunHasTheBitsOfAStraightRunAlone) {
  resume_checks::expect_resumed_run_equals_straight_run(kStage);
}

}  // namespace
}  // namespace ladder
