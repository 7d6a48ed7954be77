// Every collective of the NCCL communicator against the same plain reference as the MPI one, with the data in GPU
// memory: filled on the host, copied up, reduced by NCCL, copied back and compared in double.
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

namespace ladder {
namespace {

using collective_checks::kFloatTypes;
using collective_checks::kOddSizes;
using collective_checks::tolerance;
using collective_checks::value_of;
using collective_checks::Values;

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

// A GPU array with a host mirror: set() on the host, upload(), run the collective, download(), get().
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

// Sum over all ranks of value_of(r, index), in double.
double sum_over_ranks(int N, std::int64_t index) {
  double sum = 0;
  for (int r = 0; r < N; ++r) sum += value_of(r, index);
  return sum;
}

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
  const int N = world().world_size(), rank = world().rank();
  for (DType dtype : kFloatTypes) {
    for (std::int64_t size : kOddSizes) {
      for (Reduction reduction : {Reduction::Sum, Reduction::Average}) {
        DeviceValues data(dtype, size);
        for (std::int64_t i = 0; i < size; ++i) data.set(i, value_of(rank, i));
        data.upload();
        world().all_reduce(data.tensor(), reduction);
        data.download();
        for (std::int64_t i = 0; i < size; ++i) {
          double expected = sum_over_ranks(N, i);
          if (reduction == Reduction::Average) expected /= N;
          ASSERT_NEAR(data.get(i), expected, tolerance(dtype, expected) + (reduction == Reduction::Average ? 1e-6 : 0))
              << dtype_name(dtype) << " size " << size << " element " << i;
        }
      }
    }
  }
}

TEST_F(NcclCollectives, AllReduceOfIntegersIsExact) {
  DeviceValues data(DType::I32, 5);
  for (std::int64_t i = 0; i < 5; ++i) data.set(i, world().rank() * 100 + i);
  data.upload();
  world().all_reduce(data.tensor(), Reduction::Sum);
  data.download();
  const int N = world().world_size();
  for (std::int64_t i = 0; i < 5; ++i) EXPECT_EQ(data.get(i), 100.0 * N * (N - 1) / 2 + N * i);
}

TEST_F(NcclCollectives, ReduceScatterGivesEachRankItsShardOfTheSum) {
  const int N = world().world_size(), rank = world().rank();
  for (DType dtype : kFloatTypes) {
    for (std::int64_t shard : kOddSizes) {
      DeviceValues input(dtype, shard * N), output(dtype, shard);
      for (std::int64_t i = 0; i < shard * N; ++i) input.set(i, value_of(rank, i));
      input.upload();
      world().reduce_scatter(output.tensor(), input.tensor(), Reduction::Sum);
      output.download();
      for (std::int64_t i = 0; i < shard; ++i) {
        const double expected = sum_over_ranks(N, rank * shard + i);
        ASSERT_NEAR(output.get(i), expected, tolerance(dtype, expected)) << dtype_name(dtype) << " shard " << shard;
      }
    }
  }
}

TEST_F(NcclCollectives, AllGatherPlacesRankRAtRTimesK) {
  const int N = world().world_size(), rank = world().rank();
  for (DType dtype : kFloatTypes) {
    for (std::int64_t shard : kOddSizes) {
      DeviceValues input(dtype, shard), output(dtype, shard * N);
      for (std::int64_t i = 0; i < shard; ++i) input.set(i, value_of(rank, i));
      input.upload();
      world().all_gather(output.tensor(), input.tensor());
      output.download();
      for (int r = 0; r < N; ++r) {
        for (std::int64_t i = 0; i < shard; ++i) {
          ASSERT_EQ(output.get(r * shard + i), value_of(r, i)) << dtype_name(dtype);
        }
      }
    }
  }
}

TEST_F(NcclCollectives, BroadcastCopiesTheRootsValues) {
  const int N = world().world_size();
  for (int root : {0, N - 1}) {
    DeviceValues data(DType::F32, 7);
    for (std::int64_t i = 0; i < 7; ++i) data.set(i, value_of(world().rank(), i));
    data.upload();
    world().broadcast(data.tensor(), root);
    data.download();
    for (std::int64_t i = 0; i < 7; ++i) EXPECT_EQ(data.get(i), value_of(root, i)) << "root " << root;
  }
}

TEST_F(NcclCollectives, AsynchronousCollectivesInFlightTogetherFinishCorrectly) {
  const int N = world().world_size(), rank = world().rank();
  DeviceValues first(DType::F32, 1001), second(DType::BF16, 7);
  for (std::int64_t i = 0; i < 1001; ++i) first.set(i, value_of(rank, i));
  for (std::int64_t i = 0; i < 7; ++i) second.set(i, value_of(rank, i + 5));
  first.upload();
  second.upload();
  auto pending_first = world().all_reduce_async(first.tensor(), Reduction::Sum);
  auto pending_second = world().all_reduce_async(second.tensor(), Reduction::Sum);
  pending_second->wait();  // out of order on purpose
  pending_first->wait();
  first.download();
  second.download();
  for (std::int64_t i = 0; i < 1001; ++i) ASSERT_EQ(first.get(i), sum_over_ranks(N, i));
  for (std::int64_t i = 0; i < 7; ++i) {
    const double expected = sum_over_ranks(N, i + 5);
    ASSERT_NEAR(second.get(i), expected, tolerance(DType::BF16, expected));
  }
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
  const int N = world().world_size();
  world().stats().reset();
  DeviceValues gradients(DType::F32, 1000), shard(DType::F32, 10), gathered(DType::F32, 10 * N);
  world().all_reduce(gradients.tensor(), Reduction::Average);
  world().all_gather(gathered.tensor(), shard.tensor());
  const CommStats& stats = world().stats();
  EXPECT_EQ(stats.logical_bytes[static_cast<int>(Collective::AllReduce)], 4000);
  EXPECT_EQ(stats.logical_bytes[static_cast<int>(Collective::AllGather)], 40 * N);
  EXPECT_EQ(stats.calls[static_cast<int>(Collective::AllReduce)], 1);
  EXPECT_DOUBLE_EQ(stats.ring_bytes[static_cast<int>(Collective::AllReduce)], 2.0 * (N - 1) / N * 4000);
  EXPECT_EQ(stats.total_logical_bytes(), 4000 + 40 * N);
}

TEST_F(NcclCollectives, CpuTensorsAreRefusedNamingTheCollective) {
  const int N = world().world_size();
  Values host(DType::F32, 4 * N), host_shard(DType::F32, 4);
  DeviceValues device(DType::F32, 4 * N), device_shard(DType::F32, 4);
  const auto message_of = [](auto&& call) -> std::string {
    try {
      call();
    } catch (const LadderError& error) {
      return error.what();
    }
    return "no error";
  };
  const std::string all_reduce = message_of([&] { world().all_reduce(host.tensor(), Reduction::Sum); });
  EXPECT_NE(all_reduce.find("all-reduce"), std::string::npos) << all_reduce;
  EXPECT_NE(all_reduce.find("CPU memory"), std::string::npos) << all_reduce;
  // Mixed devices are stopped before the backend; a CPU pair reaches it and is refused there.
  EXPECT_THROW(world().reduce_scatter(host_shard.tensor(), device.tensor(), Reduction::Sum), LadderError);
  const std::string reduce_scatter =
      message_of([&] { world().reduce_scatter(host_shard.tensor(), host.tensor(), Reduction::Sum); });
  EXPECT_NE(reduce_scatter.find("reduce-scatter"), std::string::npos) << reduce_scatter;
  const std::string all_gather = message_of([&] { world().all_gather(host.tensor(), host_shard.tensor()); });
  EXPECT_NE(all_gather.find("all-gather"), std::string::npos) << all_gather;
  const std::string broadcast = message_of([&] { world().broadcast(host.tensor(), 0); });
  EXPECT_NE(broadcast.find("broadcast"), std::string::npos) << broadcast;
  // Nothing was started, so the communicator still works.
  device_shard.set(0, 1.0);
  device_shard.upload();
  world().all_reduce(device_shard.tensor(), Reduction::Sum);
  device_shard.download();
  EXPECT_EQ(device_shard.get(0), N);
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
