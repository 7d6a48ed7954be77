// Every collective of the MPI communicator against a plain reference: each rank's input is a known function of
// (rank, index), so the expected result is computed here, in double, without any communication.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "common/comm/communicator.hpp"
#include "tests/mpi/collective_checks.hpp"

namespace ladder {
namespace {

using collective_checks::kFloatTypes;
using collective_checks::kOddSizes;
using collective_checks::tolerance;
using collective_checks::value_of;
using collective_checks::Values;

Communicator& world() {
  static std::unique_ptr<Communicator> communicator = make_communicator("mpi");
  return *communicator;
}

TEST(MpiCollectives, AllReduceSumAndAverageOfEveryTypeAndOddSize) {
  const int N = world().world_size(), rank = world().rank();
  for (DType dtype : kFloatTypes) {
    for (std::int64_t size : kOddSizes) {
      for (Reduction reduction : {Reduction::Sum, Reduction::Average}) {
        Values data(dtype, size);
        for (std::int64_t i = 0; i < size; ++i) data.set(i, value_of(rank, i));
        world().all_reduce(data.tensor(), reduction);
        for (std::int64_t i = 0; i < size; ++i) {
          double expected = 0;
          for (int r = 0; r < N; ++r) expected += value_of(r, i);
          if (reduction == Reduction::Average) expected /= N;
          ASSERT_NEAR(data.get(i), expected, tolerance(dtype, expected) + (reduction == Reduction::Average ? 1e-6 : 0))
              << dtype_name(dtype) << " size " << size << " element " << i;
        }
      }
    }
  }
}

TEST(MpiCollectives, AllReduceOfIntegersIsExact) {
  Values data(DType::I32, 5);
  for (std::int64_t i = 0; i < 5; ++i) data.set(i, world().rank() * 100 + i);
  world().all_reduce(data.tensor(), Reduction::Sum);
  const int N = world().world_size();
  for (std::int64_t i = 0; i < 5; ++i) EXPECT_EQ(data.get(i), 100.0 * N * (N - 1) / 2 + N * i);
}

TEST(MpiCollectives, ReduceScatterGivesEachRankItsShardOfTheSum) {
  const int N = world().world_size(), rank = world().rank();
  for (DType dtype : kFloatTypes) {
    for (std::int64_t shard : kOddSizes) {
      Values input(dtype, shard * N), output(dtype, shard);
      for (std::int64_t i = 0; i < shard * N; ++i) input.set(i, value_of(rank, i));
      world().reduce_scatter(output.tensor(), input.tensor(), Reduction::Sum);
      for (std::int64_t i = 0; i < shard; ++i) {
        double expected = 0;
        for (int r = 0; r < N; ++r) expected += value_of(r, rank * shard + i);
        ASSERT_NEAR(output.get(i), expected, tolerance(dtype, expected)) << dtype_name(dtype) << " shard " << shard;
      }
    }
  }
}

TEST(MpiCollectives, AllGatherPlacesRankRAtRTimesK) {
  const int N = world().world_size(), rank = world().rank();
  for (DType dtype : kFloatTypes) {
    for (std::int64_t shard : kOddSizes) {
      Values input(dtype, shard), output(dtype, shard * N);
      for (std::int64_t i = 0; i < shard; ++i) input.set(i, value_of(rank, i));
      world().all_gather(output.tensor(), input.tensor());
      for (int r = 0; r < N; ++r) {
        for (std::int64_t i = 0; i < shard; ++i) ASSERT_EQ(output.get(r * shard + i), value_of(r, i)) << dtype_name(dtype);
      }
    }
  }
}

TEST(MpiCollectives, BroadcastCopiesTheRootsValues) {
  const int N = world().world_size();
  for (int root : {0, N - 1}) {
    Values data(DType::F32, 7);
    for (std::int64_t i = 0; i < 7; ++i) data.set(i, value_of(world().rank(), i));
    world().broadcast(data.tensor(), root);
    for (std::int64_t i = 0; i < 7; ++i) EXPECT_EQ(data.get(i), value_of(root, i)) << "root " << root;
  }
}

TEST(MpiCollectives, AsynchronousCollectivesInFlightTogetherFinishCorrectly) {
  const int N = world().world_size(), rank = world().rank();
  Values first(DType::F32, 1001), second(DType::BF16, 7);
  for (std::int64_t i = 0; i < 1001; ++i) first.set(i, value_of(rank, i));
  for (std::int64_t i = 0; i < 7; ++i) second.set(i, value_of(rank, i + 5));
  auto pending_first = world().all_reduce_async(first.tensor(), Reduction::Sum);
  auto pending_second = world().all_reduce_async(second.tensor(), Reduction::Sum);
  pending_second->wait();  // out of order on purpose
  pending_first->wait();
  for (std::int64_t i = 0; i < 1001; ++i) {
    double expected = 0;
    for (int r = 0; r < N; ++r) expected += value_of(r, i);
    ASSERT_EQ(first.get(i), expected);
  }
  for (std::int64_t i = 0; i < 7; ++i) {
    double expected = 0;
    for (int r = 0; r < N; ++r) expected += value_of(r, i + 5);
    ASSERT_NEAR(second.get(i), expected, tolerance(DType::BF16, expected));
  }
}

TEST(MpiCollectives, StatsCountLogicalAndRingBytes) {
  const int N = world().world_size();
  world().stats().reset();
  Values gradients(DType::F32, 1000), shard(DType::F32, 10), gathered(DType::F32, 10 * N);
  world().all_reduce(gradients.tensor(), Reduction::Average);
  world().all_gather(gathered.tensor(), shard.tensor());
  const CommStats& stats = world().stats();
  EXPECT_EQ(stats.logical_bytes[static_cast<int>(Collective::AllReduce)], 4000);
  EXPECT_EQ(stats.logical_bytes[static_cast<int>(Collective::AllGather)], 40 * N);
  EXPECT_EQ(stats.calls[static_cast<int>(Collective::AllReduce)], 1);
  EXPECT_DOUBLE_EQ(stats.ring_bytes[static_cast<int>(Collective::AllReduce)], 2.0 * (N - 1) / N * 4000);
  EXPECT_EQ(stats.total_logical_bytes(), 4000 + 40 * N);
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
