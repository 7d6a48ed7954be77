// Stage 05's memory, read from the accountant: bf16 weights and gradients are 2 bytes like fp16's, so the table is
// stage 03's: 2 + 2 bytes of working copy and gradient, 4 of fp32 master weights, 8 of fp32 Adam moments.
#include <gtest/gtest.h>

#include "05_bf16/bf16_training.hpp"

namespace ladder {
namespace {

TEST(Stage05Memory, Bf16WeightsAndGradientsFp32MasterAndMomentsAre2And2And4And8BytesPerParameter) {
  const MemoryAccountant before = memory_accountant();
  const GPTConfig config = named_config("small", 16);
  {
    stage05::Bf16Training training(config, AdamWConfig{}, 4, 32);
    const MemoryAccountant& now = memory_accountant();
    auto added = [&](MemoryCategory category) {
      return now.usage(Device::CPU, category).current - before.usage(Device::CPU, category).current;
    };
    // small at V=16 has no padding: 2·16·128 + 64·128 + 4·(12·128² + 13·128) + 2·128 = 805,632 parameters.
    const std::int64_t parameters = 2 * 16 * 128 + 64 * 128 + 4 * (12 * 128 * 128 + 13 * 128) + 2 * 128;
    ASSERT_EQ(training.model.layout().padded_size(), parameters);
    EXPECT_EQ(training.model.dtype(), DType::BF16);
    EXPECT_EQ(training.master.weights().dtype(), DType::F32);
    EXPECT_EQ(training.optimizer.first_moment().dtype(), DType::F32);
    EXPECT_EQ(training.optimizer.second_moment().dtype(), DType::F32);
    EXPECT_EQ(added(MemoryCategory::Parameters), 2 * parameters);
    EXPECT_EQ(added(MemoryCategory::Gradients), 2 * parameters);
    EXPECT_EQ(added(MemoryCategory::MasterWeights), 4 * parameters);
    EXPECT_EQ(added(MemoryCategory::OptimizerState), 8 * parameters);
    EXPECT_EQ(added(MemoryCategory::CommBuffers), 0);
    EXPECT_EQ(stage05::kBytesPerParameter, 16);
    EXPECT_GT(added(MemoryCategory::Activations), 0);
  }
  // Everything is returned when the stage's state goes away.
  for (int c = 0; c < kMemoryCategoryCount; ++c) {
    const auto category = static_cast<MemoryCategory>(c);
    EXPECT_EQ(memory_accountant().usage(Device::CPU, category).current, before.usage(Device::CPU, category).current)
        << category_name(category);
  }
}

}  // namespace
}  // namespace ladder
