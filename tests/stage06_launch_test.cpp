// How a multi-rank stage is launched: --comm's choices and refusals, and the host-file path a cluster uses, tried
// on this one machine (stage 06 stands for 06-09: they share run_with_ranks).
#include <gtest/gtest.h>

#include <string>

#include "tests/run_command.hpp"

namespace ladder {
namespace {

using testing_support::CommandResult;
using testing_support::expect_refused;
using testing_support::run_command;

const std::string kStage = LADDER_STAGE06_BINARY;
const std::string& kQuick = testing_support::kQuickRunFlags;

TEST(Stage06Launch, AloneTheAutomaticChoiceIsLocalAndSaysSo) {
  const CommandResult result = run_command(kStage + kQuick);
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("communicator local: one rank"), std::string::npos) << result.output;
}

TEST(Stage06Launch, AnUnknownCommunicatorIsRefusedByName) {
  expect_refused(run_command(kStage + kQuick + " --comm carrier-pigeon"), "carrier-pigeon");
}

#ifndef LADDER_WITH_NCCL
TEST(Stage06Launch, NcclInABuildWithoutItSaysWhatIsMissing) {
  expect_refused(run_command(kStage + kQuick + " --comm nccl"), "no NCCL backend");
}
#endif

#ifdef LADDER_MPIEXEC
// Open MPI needs these to start ranks as root and more ranks than cores; MPICH ignores them.
const std::string kEnvironment =
    "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 ";

TEST(Stage06Launch, OnTheCpuSeveralRanksChooseMpi) {
  const CommandResult result = run_command(kEnvironment + LADDER_MPIEXEC " 2 " + kStage + kQuick);
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("communicator mpi: 2 ranks on the CPU"), std::string::npos) << result.output;
  expect_refused(run_command(kEnvironment + LADDER_MPIEXEC " 2 " + kStage + kQuick + " --comm local"),
                 "--comm local, but the launcher started 2 ranks");
}

TEST(Stage06Launch, TwoRanksStartThroughAHostFileAsOnACluster) {
  // The cluster path: the launcher reads the machines and their slots from a file. Here the file names this
  // machine twice over; on a cluster it names several, and every rank finds its GPU by its place on its node.
  testing_support::TempFolder folder("ladder-hostfile");
  const std::string launcher = std::string(LADDER_MPIEXEC).substr(0, std::string(LADDER_MPIEXEC).find(' '));
  const bool open_mpi = run_command(launcher + " --version").output.find("Open MPI") != std::string::npos;
  const std::string hosts = folder / "hosts";
  testing_support::write_file(hosts, open_mpi ? "localhost slots=2\n" : "localhost:2\n");
  const std::string command = kEnvironment + launcher + (open_mpi ? " --hostfile " : " -f ") + hosts + " -n 2 " +
                              kStage + kQuick;
  const CommandResult result = run_command(command);
  ASSERT_EQ(result.exit_code, 0) << command << "\n" << result.output;
  EXPECT_NE(result.output.find("over 2 ranks (mpi)"), std::string::npos) << result.output;
}
#endif

}  // namespace
}  // namespace ladder
