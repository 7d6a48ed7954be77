// A run's results do not depend on its thread count: stages 01 (fp32) and 05 (bf16 with fp32 master weights),
// used as a user would, write bit-identical weights after a few steps at --threads 1 and --threads 2. The small
// model at the default batch of 64 rows, so that every GEMM of the step is cut into several blocks and the
// elementwise ops are large enough to be spread over the threads. Each run also names its GEMM path in its log.
#include <gtest/gtest.h>

#include <string>

#include "tests/run_command.hpp"

namespace ladder {
namespace {

using testing_support::CommandResult;
using testing_support::read_file;
using testing_support::run_command;
using testing_support::TempFolder;

const std::string kSteps = " --steps 4 --eval-every 0 --eval-problems 4 --eval-batches 1 --samples 0";

void expect_same_weights_at_one_and_two_threads(const std::string& stage, const std::string& name) {
  TempFolder folder("ladder-threads-" + name);
  std::string weights[2];
  for (const int threads : {1, 2}) {
    const std::string path = folder / (name + "_" + std::to_string(threads) + ".safetensors");
    const CommandResult result = run_command(stage + kSteps + " --threads " + std::to_string(threads) + " --save " + path);
    ASSERT_EQ(result.exit_code, 0) << result.output;
    EXPECT_NE(result.output.find("cpu gemm: OpenBLAS sgemm"), std::string::npos) << result.output;
    EXPECT_NE(result.output.find("over " + std::to_string(threads) + " thread"), std::string::npos) << result.output;
    weights[threads - 1] = read_file(path);
  }
  ASSERT_FALSE(weights[0].empty());
  EXPECT_TRUE(weights[0] == weights[1]) << name << ": the weights after 4 steps differ between 1 and 2 threads";
}

TEST(Threads, Stage01WritesTheSameWeightsAtOneAndTwoThreads) {
  expect_same_weights_at_one_and_two_threads(LADDER_STAGE01_BINARY, "stage01");
}

TEST(Threads, Stage05WritesTheSameWeightsAtOneAndTwoThreads) {
  expect_same_weights_at_one_and_two_threads(LADDER_STAGE05_BINARY, "stage05");
}

}  // namespace
}  // namespace ladder
