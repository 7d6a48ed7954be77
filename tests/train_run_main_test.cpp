// run_main: the exit code and the exact stderr text for each way a stage's body can end.
#include <gtest/gtest.h>

#include <new>
#include <stdexcept>
#include <string>

#include "common/error.hpp"
#include "common/train/options.hpp"
#include "common/train/run_main.hpp"

namespace ladder {
namespace {

/// What run_main returned and what it printed on each stream.
struct Outcome {
  int exit_code = -1;
  std::string out;
  std::string err;
};

Outcome run(const std::function<void()>& body) {
  ::testing::internal::CaptureStdout();
  ::testing::internal::CaptureStderr();
  Outcome outcome;
  outcome.exit_code = run_main("03_master_weights", body);
  outcome.err = ::testing::internal::GetCapturedStderr();
  outcome.out = ::testing::internal::GetCapturedStdout();
  return outcome;
}

TEST(RunMain, SuccessReturnsZeroAndPrintsNothing) {
  bool ran = false;
  const Outcome outcome = run([&] { ran = true; });
  EXPECT_TRUE(ran);
  EXPECT_EQ(outcome.exit_code, 0);
  EXPECT_EQ(outcome.err, "");
  EXPECT_EQ(outcome.out, "");
}

TEST(RunMain, LadderErrorIsAUserErrorWithExitCodeOne) {
  const Outcome outcome = run([] { throw LadderError("--steps 0: expected an integer >= 1"); });
  EXPECT_EQ(outcome.exit_code, 1);
  EXPECT_EQ(outcome.err, "03_master_weights: error: --steps 0: expected an integer >= 1\n");
  EXPECT_EQ(outcome.out, "");
}

TEST(RunMain, EarlyExitReturnsItsCodeSilently) {
  const Outcome help = run([] { throw EarlyExit{0}; });
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_EQ(help.err, "");
  const Outcome other = run([] { throw EarlyExit{3}; });
  EXPECT_EQ(other.exit_code, 3);
  EXPECT_EQ(other.err, "");
}

TEST(RunMain, OtherExceptionsAreInternalErrorsWithExitCodeTwo) {
  const Outcome runtime = run([] { throw std::runtime_error("index 7 out of range"); });
  EXPECT_EQ(runtime.exit_code, 2);
  EXPECT_EQ(runtime.err, "03_master_weights: internal error: index 7 out of range\n");

  const Outcome allocation = run([] { throw std::bad_alloc(); });
  EXPECT_EQ(allocation.exit_code, 2);
  EXPECT_EQ(allocation.err, "03_master_weights: internal error: std::bad_alloc\n");

  const Outcome unknown = run([] { throw 42; });
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_EQ(unknown.err, "03_master_weights: internal error: an exception of unknown type\n");
}

TEST(RunMain, OutputPrintedBeforeTheErrorIsKept) {
  const Outcome outcome = run([] {
    std::cout << "step 1/10\n";
    throw LadderError("disk full");
  });
  EXPECT_EQ(outcome.exit_code, 1);
  EXPECT_EQ(outcome.out, "step 1/10\n");
  EXPECT_EQ(outcome.err, "03_master_weights: error: disk full\n");
}

}  // namespace
}  // namespace ladder
