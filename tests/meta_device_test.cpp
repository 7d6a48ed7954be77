// The meta device, which plans memory without holding any: its buffers are accounted (under "meta") but reserve
// no memory, its ops check their arguments and compute nothing, it reads as zeros from the host, and a simulated
// world counts each collective's bytes as N ranks would.
#include <gtest/gtest.h>

#include <vector>

#include "common/comm/simulated_communicator.hpp"
#include "common/memory.hpp"
#include "common/ops/ops.hpp"
#include "tests/test_support.hpp"

namespace ladder {
namespace {

TEST(MetaDevice, BuffersAreAccountedUnderMetaAndHoldNoMemory) {
  const MemoryAccountant before = memory_accountant();
  {
    // 64 GiB: far more than this machine has; reserving address space for it costs nothing.
    Buffer huge(std::size_t{64} << 30, MemoryCategory::OptimizerState, Device::Meta);
    EXPECT_NE(huge.data(), nullptr) << "views can be cut from it";
    EXPECT_EQ(memory_accountant().usage(Device::Meta, MemoryCategory::OptimizerState).current -
                  before.usage(Device::Meta, MemoryCategory::OptimizerState).current,
              std::int64_t{64} << 30);
    EXPECT_EQ(memory_accountant().current_total(Device::CPU), before.current_total(Device::CPU));
  }
  EXPECT_EQ(memory_accountant().current_total(Device::Meta), before.current_total(Device::Meta));
  EXPECT_STREQ(device_name(Device::Meta), "meta");
}

TEST(MetaDevice, OpsCheckTheirArgumentsButComputeNothing) {
  Buffer a(4 * 6 * 4, MemoryCategory::Activations, Device::Meta), w(4 * 3 * 6, MemoryCategory::Parameters, Device::Meta),
      out(4 * 4 * 3, MemoryCategory::Activations, Device::Meta);
  const Tensor inp = view_of(a, DType::F32).reshaped({4, 6});
  const Tensor weight = view_of(w, DType::F32).reshaped({3, 6});
  const Tensor result = view_of(out, DType::F32).reshaped({4, 3});
  ops::matmul_forward(result, inp, weight, Tensor(nullptr, DType::F32, {0}, Device::Meta));  // touches nothing
  EXPECT_EQ(ops::sum_of_squares(result), 0.0);
  EXPECT_THROW(ops::matmul_forward(result, inp, weight.reshaped({6, 3}), Tensor(nullptr, DType::F32, {0})),
               LadderError);
  std::vector<float> host(12, 7.0f);
  ops::copy(Tensor(host.data(), DType::F32, {12}), result.reshaped({12}));
  for (float value : host) EXPECT_EQ(value, 0.0f) << "the meta device reads as zeros";
  ops::copy(result.reshaped({12}), Tensor(host.data(), DType::F32, {12}));  // written nowhere
}

TEST(MetaDevice, ASimulatedWorldCountsWhatEachRankWouldSend) {
  SimulatedCommunicator world(8);
  EXPECT_EQ(world.rank(), 0);
  EXPECT_EQ(world.world_size(), 8);
  Buffer whole(8 * 100 * 2, MemoryCategory::CommBuffers, Device::Meta), shard(100 * 2, MemoryCategory::CommBuffers,
                                                                               Device::Meta);
  world.reduce_scatter(view_of(shard, DType::BF16), view_of(whole, DType::BF16), Reduction::Average);
  world.all_gather(view_of(whole, DType::BF16), view_of(shard, DType::BF16));
  EXPECT_EQ(world.stats().logical_bytes[static_cast<int>(Collective::ReduceScatter)], 1600);
  EXPECT_EQ(world.stats().ring_bytes[static_cast<int>(Collective::AllGather)], 1600 * 7.0 / 8.0);
  EXPECT_THROW(world.all_gather(view_of(shard, DType::BF16), view_of(shard, DType::BF16)), LadderError)
      << "shapes are still checked";
}

}  // namespace
}  // namespace ladder
