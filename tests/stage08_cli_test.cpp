// Stage 08 launched as a user launches it: mpiexec -n 2, or alone; its flags, with ZeRO-2's smaller bucket default.
#include <gtest/gtest.h>

#include "tests/sharded_cli_checks.hpp"

namespace ladder {
namespace {

const std::string kStage = LADDER_STAGE08_BINARY;

#ifdef LADDER_MPIEXEC
TEST(Stage08Cli, TwoRanksTrainAndRankZeroReports) {
  sharded_cli::expect_two_ranks_train_and_report(kStage, {"bucket of up to 0.5 MiB", "over 2 ranks (mpi)",
                                                          "gradient buckets"});
}

TEST(Stage08Cli, ARankWithAMissingDataFileEndsTheJobWithItsMessage) {
  sharded_cli::expect_a_failing_rank_ends_the_job(kStage);
}
#endif

TEST(Stage08Cli, AloneItIsOneRankWithTheLocalCommunicator) { sharded_cli::expect_alone_it_is_one_rank(kStage); }

TEST(Stage08Cli, DataParallelFlagsAreListedWithZero2sBucketDefault) {
  sharded_cli::expect_flags_listed_and_checked(kStage, {"--bucket-mb", "--reduce-dtype", "--debug-delay-ms"});
  const auto help = testing_support::run_command(kStage + " --help");
  EXPECT_NE(help.output.find("--bucket-mb FLOAT=0.5"), std::string::npos) << help.output;
}

}  // namespace
}  // namespace ladder
