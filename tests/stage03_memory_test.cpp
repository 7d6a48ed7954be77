// Stage 03's memory, read from the accountant: 2 + 2 + 4 + 8 = 16 bytes per parameter, as much as stage 01.
#include <gtest/gtest.h>

#include "03_master_weights/master_weights.hpp"

namespace ladder {
namespace {

TEST(Stage03Memory, Fp16WeightsAndGradientsFp32MasterAndFp32AdamStateAre2And2And4And8BytesPerParameter) {
  const MemoryAccountant before = memory_accountant();
  const GPTConfig config = named_config("small", 16);
  {
    stage03::MasterWeightsTraining training(config, AdamWConfig{}, 4, 32);
    const MemoryAccountant& now = memory_accountant();
    auto added = [&](MemoryCategory category) {
      return now.usage(Device::CPU, category).current - before.usage(Device::CPU, category).current;
    };
    // small at V=16 has no padding (see stage 01's memory test): the padded size is the parameter count.
    const std::int64_t parameters = 2 * 16 * 128 + 64 * 128 + 4 * (12 * 128 * 128 + 13 * 128) + 2 * 128;
    ASSERT_EQ(training.model.layout().padded_size(), parameters);
    EXPECT_EQ(added(MemoryCategory::Parameters), 2 * parameters);      // fp16 working weights
    EXPECT_EQ(added(MemoryCategory::Gradients), 2 * parameters);       // fp16 gradients: no fp32 gradient copy
    EXPECT_EQ(added(MemoryCategory::MasterWeights), 4 * parameters);   // the fp32 master
    EXPECT_EQ(added(MemoryCategory::OptimizerState), 8 * parameters);  // fp32 m and v
    EXPECT_EQ(added(MemoryCategory::CommBuffers), 0);
    EXPECT_EQ(added(MemoryCategory::Workspace), 0);
    EXPECT_EQ(stage03::kBytesPerParameter, 16);
    EXPECT_GT(added(MemoryCategory::Activations), 0);
  }
  for (int c = 0; c < kMemoryCategoryCount; ++c) {
    const auto category = static_cast<MemoryCategory>(c);
    EXPECT_EQ(memory_accountant().usage(Device::CPU, category).current, before.usage(Device::CPU, category).current)
        << category_name(category);
  }
}

}  // namespace
}  // namespace ladder
