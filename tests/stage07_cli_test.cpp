// Stage 07 launched as a user launches it: mpiexec -n 2, or alone; its flags; a world size too large for the model.
#include <gtest/gtest.h>

#include "07_zero1/sharded_optimizer.hpp"
#include "tests/sharded_cli_checks.hpp"

namespace ladder {
namespace {

const std::string kStage = LADDER_STAGE07_BINARY;

#ifdef LADDER_MPIEXEC
TEST(Stage07Cli, TwoRanksTrainAndRankZeroReports) {
  sharded_cli::expect_two_ranks_train_and_report(kStage, {"reduce-scattered in F32 over 2 ranks (mpi)"});
}

TEST(Stage07Cli, ARankWithAMissingDataFileEndsTheJobWithItsMessage) {
  sharded_cli::expect_a_failing_rank_ends_the_job(kStage);
}
#endif

TEST(Stage07Cli, AloneItIsOneRankWithTheLocalCommunicator) { sharded_cli::expect_alone_it_is_one_rank(kStage); }

TEST(Stage07Cli, DataParallelFlagsAreListedAndChecked) {
  sharded_cli::expect_flags_listed_and_checked(kStage, {"--bucket-mb", "--reduce-dtype", "--debug-delay-ms"});
}

TEST(Stage07Cli, AWorldSizeThatWouldMostlyShardPaddingIsRefusedWithTheFigures) {
  const GPTConfig tiny = named_config("tiny", 16);
  EXPECT_NO_THROW(stage07::require_sensible_world_size(tiny, 4));
  const std::string message = testing_support::error_message_of([&] { stage07::require_sensible_world_size(tiny, 256); });
  EXPECT_NE(message.find("over 256 ranks"), std::string::npos) << message;
  EXPECT_NE(message.find("use at most"), std::string::npos) << message;
}

}  // namespace
}  // namespace ladder
