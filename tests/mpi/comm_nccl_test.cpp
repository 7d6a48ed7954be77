// Every collective of the NCCL communicator against the same plain reference as the MPI one, with the data in GPU
// memory: filled on the host, copied up, reduced by NCCL, copied back and compared in double. The checks are
// tests/mpi/collective_checks.hpp's, run on DeviceValues; this file adds what only a GPU backend has.
// NCCL needs one GPU per rank. Where a node has fewer GPUs than ranks (a machine without a GPU, or one GPU and
// two ranks) the collective tests skip, and one test checks instead that the communicator refuses to start, on
// every rank, with a message that says why and what to use instead.
#include <cuda_runtime.h>
#include <gtest/gtest.h>
#include <mpi.h>

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "common/comm/communicator.hpp"
#include "common/cuda_runtime.hpp"
#include "tests/mpi/collective_checks.hpp"
#include "tests/test_support.hpp"

namespace ladder {
namespace {

using collective_checks::sum_over_ranks;
using collective_checks::value_of;
using collective_checks::Values;
using testing_support::error_message_of;

// What this job has: ranks sharing this node, GPUs visible here, and whether every node has a GPU per rank
// (agreed over all ranks, so that all ranks skip or all run, and none waits alone in a collective).
struct GpuSupply {
  int ranks_on_node = 1;
  int gpus_on_node = 0;
  bool gpu_per_rank_everywhere = false;
  std::string describe() const {
    return make_message(ranks_on_node, " rank(s) on this node but ", gpus_on_node, " GPU(s) visible");
  }
};

const GpuSupply& gpu_supply() {
  static const GpuSupply supply = [] {
    GpuSupply found;
    MPI_Comm node = MPI_COMM_NULL;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
    MPI_Comm_size(node, &found.ranks_on_node);
    MPI_Comm_free(&node);
    found.gpus_on_node = cuda_device_count();
    int enough_here = found.gpus_on_node > 0 && found.gpus_on_node >= found.ranks_on_node ? 1 : 0;
    int enough_everywhere = 0;
    MPI_Allreduce(&enough_here, &enough_everywhere, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    found.gpu_per_rank_everywhere = enough_everywhere == 1;
    return found;
  }();
  return supply;
}

// A GPU array with a host mirror: set() on the host, upload(), run the collective, download(), get(). It is
// a collective_checks::CollectiveArray, so the shared checks run on it.
class DeviceValues {
 public:
  DeviceValues(DType dtype, std::int64_t count)
      : host_(dtype, count), device_(count * dtype_size(dtype), MemoryCategory::CommBuffers, Device::CUDA),
        dtype_(dtype), count_(count) {}
  Tensor tensor() const { return Tensor(device_.data(), dtype_, {count_}, Device::CUDA); }
  void set(std::int64_t i, double value) { host_.set(i, value); }
  double get(std::int64_t i) const { return host_.get(i); }
  void upload() { cuda_copy(device_.data(), host_.tensor().data(), device_.bytes()); }
  void download() { cuda_copy(host_.tensor().data(), device_.data(), device_.bytes()); }

 private:
  Values host_;
  Buffer device_;
  DType dtype_;
  std::int64_t count_;
};

// One NCCL communicator for all the tests, made by the first that runs and destroyed after the last, while MPI
// and the CUDA runtime are still up (a static would be destroyed after main() has finalised MPI).
class NcclCollectives : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!gpu_supply().gpu_per_rank_everywhere) {
      GTEST_SKIP() << "needs one GPU per rank: " << gpu_supply().describe();
    }
    if (!shared_) shared_ = make_communicator("nccl");
  }
  static void TearDownTestSuite() { shared_.reset(); }
  static Communicator& world() { return *shared_; }

 private:
  static inline std::unique_ptr<Communicator> shared_;
};

TEST_F(NcclCollectives, IsTheNcclBackendWithEveryRank) {
  EXPECT_EQ(world().backend(), "nccl");
  int world_size = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &world_size);
  EXPECT_EQ(world().world_size(), world_size);
}

TEST_F(NcclCollectives, AllReduceSumAndAverageOfEveryTypeAndOddSize) {
  collective_checks::check_all_reduce_sum_and_average<DeviceValues>(world());
}

TEST_F(NcclCollectives, AllReduceOfIntegersIsExact) {
  collective_checks::check_all_reduce_of_integers<DeviceValues>(world());
}

TEST_F(NcclCollectives, ReduceScatterGivesEachRankItsShardOfTheSum) {
  collective_checks::check_reduce_scatter<DeviceValues>(world());
}

TEST_F(NcclCollectives, AllGatherPlacesRankRAtRTimesK) { collective_checks::check_all_gather<DeviceValues>(world()); }

TEST_F(NcclCollectives, BroadcastCopiesTheRootsValues) { collective_checks::check_broadcast<DeviceValues>(world()); }

TEST_F(NcclCollectives, AsynchronousCollectivesInFlightTogetherFinishCorrectly) {
  collective_checks::check_asynchronous_collectives_in_flight_together<DeviceValues>(world());
}

// The input is written by copies still queued on the compute stream when the collective starts; a communication
// stream that did not wait for them would reduce stale zeros.
TEST_F(NcclCollectives, CollectiveWaitsForWorkQueuedOnTheComputeStream) {
  const int N = world().world_size(), rank = world().rank();
  const std::int64_t count = 1 << 20;
  DeviceValues source(DType::F32, count), data(DType::F32, count);
  for (std::int64_t i = 0; i < count; ++i) source.set(i, value_of(rank, i));
  source.upload();
  // A few hundred microseconds of copying ahead of the real input keep the compute stream busy.
  const std::size_t ballast_bytes = std::size_t{128} << 20;
  Buffer ballast_from(ballast_bytes, MemoryCategory::Workspace, Device::CUDA);
  Buffer ballast_to(ballast_bytes, MemoryCategory::Workspace, Device::CUDA);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  for (int repeat = 0; repeat < 8; ++repeat) {
    ASSERT_EQ(cudaMemcpyAsync(ballast_to.data(), ballast_from.data(), ballast_bytes, cudaMemcpyDeviceToDevice,
                              cudaStreamLegacy),
              cudaSuccess);
  }
  ASSERT_EQ(cudaMemcpyAsync(data.tensor().data(), source.tensor().data(), static_cast<std::size_t>(count) * 4,
                            cudaMemcpyDeviceToDevice, cudaStreamLegacy),
            cudaSuccess);
  world().all_reduce(data.tensor(), Reduction::Sum);
  data.download();
  for (std::int64_t i = 0; i < count; ++i) ASSERT_EQ(data.get(i), sum_over_ranks(N, i)) << "element " << i;
}

TEST_F(NcclCollectives, StatsCountLogicalAndRingBytes) {
  collective_checks::check_stats_count_logical_and_ring_bytes<DeviceValues>(world());
}

TEST_F(NcclCollectives, HostTensorsAreStagedThroughTheGpuAndMixedOnesRefused) {
  const int N = world().world_size();
  Values host(DType::F64, 4 * N), host_shard(DType::F64, 4);
  DeviceValues device(DType::F64, 4 * N);
  for (std::int64_t i = 0; i < 4 * N; ++i) host.set(i, collective_checks::value_of(world().rank(), i));
  world().all_reduce(host.tensor(), Reduction::Sum);
  for (std::int64_t i = 0; i < 4 * N; ++i) {
    double expected = 0;
    for (int rank = 0; rank < N; ++rank) expected += collective_checks::value_of(rank, i);
    ASSERT_EQ(host.get(i), expected) << "element " << i;
  }
  for (std::int64_t i = 0; i < 4; ++i) host_shard.set(i, 10.0 * world().rank() + i);
  world().all_gather(host.tensor(), host_shard.tensor());
  for (std::int64_t i = 0; i < 4 * N; ++i) ASSERT_EQ(host.get(i), 10.0 * (i / 4) + i % 4) << "element " << i;
  // Mixed devices are stopped before the backend.
  EXPECT_THROW(world().reduce_scatter(host_shard.tensor(), device.tensor(), Reduction::Sum), LadderError);
}

// Where GPUs are short, the communicator must say so on every rank rather than let NCCL fail or hang.
TEST(NcclStartup, RefusesToStartWithoutAGpuPerRank) {
  if (gpu_supply().gpu_per_rank_everywhere) GTEST_SKIP() << "every rank has a GPU of its own: nothing to refuse";
  // With visibility set per process, this process cannot count the node's GPUs, and the communicator may start.
  if (std::getenv("CUDA_VISIBLE_DEVICES") != nullptr) GTEST_SKIP() << "CUDA_VISIBLE_DEVICES is set";
  try {
    make_communicator("nccl");
    FAIL() << "the NCCL communicator started with " << gpu_supply().describe();
  } catch (const LadderError& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("one GPU per rank"), std::string::npos) << message;
    EXPECT_NE(message.find("--comm mpi"), std::string::npos) << message;
  }
}

}  // namespace
}  // namespace ladder
