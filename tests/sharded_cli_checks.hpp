// Stages 07-09 launched as a user launches them (mpiexec -n 2, or alone): they train and report, a failing rank
// ends the whole job with its own message, and their flags are listed and checked. Each stage's CLI test calls these.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/run_command.hpp"

namespace ladder::sharded_cli {

using testing_support::CommandResult;
using testing_support::run_command;

#ifdef LADDER_MPIEXEC
/// mpiexec for `ranks` ranks; Open MPI needs the variables to start ranks as root and more ranks than cores.
inline std::string launch(int ranks) {
  return "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 " +
         std::string(LADDER_MPIEXEC) + " " + std::to_string(ranks) + " ";
}

/// Two ranks train; rank 0 alone prints, its memory table has the sharded stages' lines, and its metrics record the
/// bytes of every collective of each step.
inline void expect_two_ranks_train_and_report(const std::string& stage, const std::vector<std::string>& mentions) {
  testing_support::TempFolder folder("ladder-sharded-cli");
  const std::string metrics = folder / "metrics.jsonl";
  const CommandResult result =
      run_command(launch(2) + stage + testing_support::kQuickRunFlags + " --metrics " + metrics);
  ASSERT_EQ(result.exit_code, 0) << result.output;
  for (const std::string& text : mentions) EXPECT_NE(result.output.find(text), std::string::npos) << text;
  EXPECT_NE(result.output.find("gathered weights"), std::string::npos) << "the memory table is printed";
  const auto steps = testing_support::step_records(testing_support::read_file(metrics));
  ASSERT_EQ(steps.size(), 3u);
  for (const char* field : {"comm_bytes", "comm_ring_bytes", "ring_bytes_reduce_scatter", "ring_bytes_all_gather"}) {
    EXPECT_TRUE(steps.back().contains(field)) << field;
  }
}

/// Rank 1's data file is missing: the job ends non-zero, naming rank 1 and the file, instead of hanging.
inline void expect_a_failing_rank_ends_the_job(const std::string& stage) {
  testing_support::TempFolder folder("ladder-sharded-cli");
  std::string text;
  for (int i = 0; i < 400; ++i) text += "the quick brown fox jumps over the lazy dog. ";
  testing_support::write_file(folder / "shard_0.txt", text);
  const CommandResult result = run_command(launch(2) + stage + testing_support::kQuickRunFlags +
                                           " --seq-len 16 --data text:" + (folder / "shard_{rank}.txt"));
  EXPECT_NE(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("rank 1 of 2"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("shard_1.txt"), std::string::npos) << result.output;
}
#endif

/// Alone, the stage is one rank with the local communicator, and still trains.
inline void expect_alone_it_is_one_rank(const std::string& stage) {
  const CommandResult result = run_command(stage + testing_support::kQuickRunFlags);
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("over 1 rank (local)"), std::string::npos) << result.output;
}

/// --help lists `flags`; a bad --reduce-dtype is refused by name.
inline void expect_flags_listed_and_checked(const std::string& stage, const std::vector<std::string>& flags) {
  const CommandResult help = run_command(stage + " --help");
  EXPECT_EQ(help.exit_code, 0) << help.output;
  for (const std::string& flag : flags) EXPECT_NE(help.output.find(flag), std::string::npos) << flag;
  testing_support::expect_refused(run_command(stage + testing_support::kQuickRunFlags + " --reduce-dtype fp16"),
                                  "fp16");
}

}  // namespace ladder::sharded_cli
