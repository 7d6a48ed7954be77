// main() for tests run under mpiexec: every rank runs the tests, rank 0 prints the usual report, other ranks
// print only their failures, and all ranks agree on one verdict, so a failure on any rank fails every rank and
// no rank exits early while the others wait in a collective.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cstdio>

namespace {

// Prints the failures of a non-zero rank, prefixed with the rank, so they are not lost with the default printer.
class RankFailurePrinter : public ::testing::EmptyTestEventListener {
 public:
  explicit RankFailurePrinter(int rank) : rank_(rank) {}
  void OnTestPartResult(const ::testing::TestPartResult& result) override {
    if (!result.failed()) return;
    std::fprintf(stderr, "[rank %d] %s:%d: failure\n%s\n\n", rank_, result.file_name() ? result.file_name() : "?",
                 result.line_number(), result.summary());
  }

 private:
  int rank_;
};

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (rank != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
    listeners.Append(new RankFailurePrinter(rank));
  }
  const int failed_here = RUN_ALL_TESTS() != 0 ? 1 : 0;
  int failed_anywhere = 0;
  MPI_Allreduce(&failed_here, &failed_anywhere, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  if (failed_anywhere && !failed_here) std::fprintf(stderr, "[rank %d] passed here, but another rank failed\n", rank);
  MPI_Finalize();
  return failed_anywhere;
}
