// Every collective of the MPI communicator against a plain reference: each rank's input is a known function of
// (rank, index), so the expected result is computed here, in double, without any communication. The checks are
// tests/mpi/collective_checks.hpp's, run on host arrays; the NCCL test runs the same ones on GPU arrays.
#include <gtest/gtest.h>

#include <cstdint>
#include <memory>

#include "common/comm/communicator.hpp"
#include "tests/mpi/collective_checks.hpp"

namespace ladder {
namespace {

using collective_checks::Values;

Communicator& world() {
  static std::unique_ptr<Communicator> communicator = make_communicator("mpi");
  return *communicator;
}

TEST(MpiCollectives, AllReduceSumAndAverageOfEveryTypeAndOddSize) {
  collective_checks::check_all_reduce_sum_and_average<Values>(world());
}

TEST(MpiCollectives, AllReduceOfIntegersIsExact) { collective_checks::check_all_reduce_of_integers<Values>(world()); }

TEST(MpiCollectives, ReduceScatterGivesEachRankItsShardOfTheSum) {
  collective_checks::check_reduce_scatter<Values>(world());
}

TEST(MpiCollectives, AllGatherPlacesRankRAtRTimesK) { collective_checks::check_all_gather<Values>(world()); }

TEST(MpiCollectives, BroadcastCopiesTheRootsValues) { collective_checks::check_broadcast<Values>(world()); }

TEST(MpiCollectives, AsynchronousCollectivesInFlightTogetherFinishCorrectly) {
  collective_checks::check_asynchronous_collectives_in_flight_together<Values>(world());
}

TEST(MpiCollectives, StatsCountLogicalAndRingBytes) {
  collective_checks::check_stats_count_logical_and_ring_bytes<Values>(world());
}

TEST(MpiCollectives, MismatchedShapesAreRefusedBeforeAnyCommunication) {
  const int N = world().world_size();
  Values input(DType::F32, 3 * N + 1), output(DType::F32, 3);
  EXPECT_THROW(world().reduce_scatter(output.tensor(), input.tensor(), Reduction::Sum), LadderError);
  Values half(DType::F16, 3);
  EXPECT_THROW(world().all_gather(half.tensor(), output.tensor()), LadderError);
}

}  // namespace
}  // namespace ladder
