// Stage 01's memory, read from the accountant: exactly 4 + 4 + 8 bytes per (padded) parameter.
#include <gtest/gtest.h>

#include "01_fp32_baseline/fp32_training.hpp"

namespace ladder {
namespace {

TEST(Stage01Memory, ParametersGradientsAndAdamStateAre4And4And8BytesPerParameter) {
  const MemoryAccountant before = memory_accountant();
  const GPTConfig config = named_config("small", 16);
  {
    stage01::Fp32Training training(config, AdamWConfig{}, 4, 32);
    const MemoryAccountant& now = memory_accountant();
    auto added = [&](MemoryCategory category) {
      return now.usage(Device::CPU, category).current - before.usage(Device::CPU, category).current;
    };
    // small at V=16: every tensor is a multiple of 16 elements, so the layout has no padding and the
    // padded size is the formula's count: 2·16·128 + 64·128 + 4·(12·128² + 13·128) + 2·128.
    const std::int64_t parameters = 2 * 16 * 128 + 64 * 128 + 4 * (12 * 128 * 128 + 13 * 128) + 2 * 128;
    ASSERT_EQ(training.model.layout().padded_size(), parameters);
    EXPECT_EQ(added(MemoryCategory::Parameters), 4 * parameters);
    EXPECT_EQ(added(MemoryCategory::Gradients), 4 * parameters);
    EXPECT_EQ(added(MemoryCategory::OptimizerState), 8 * parameters);
    EXPECT_EQ(added(MemoryCategory::MasterWeights), 0);
    EXPECT_EQ(added(MemoryCategory::CommBuffers), 0);
    EXPECT_EQ(stage01::kBytesPerParameter, 16);
    EXPECT_GT(added(MemoryCategory::Activations), 0);
  }
  // Everything is returned when the stage's state goes away.
  for (int c = 0; c < kMemoryCategoryCount; ++c) {
    const auto category = static_cast<MemoryCategory>(c);
    EXPECT_EQ(memory_accountant().usage(Device::CPU, category).current, before.usage(Device::CPU, category).current)
        << category_name(category);
  }
}

TEST(Stage01Memory, ActivationBytesFollowTheFormula) {
  // Per token and layer: ln1, qkv(3C), attention out, proj, residual, ln2, fc(4C), gelu(4C), mlp proj, residual
  // = 18C values, plus 4 statistics and H·T attention probabilities. Outside the blocks: embedded, lnf, logits,
  // 2 statistics, the loss, 2 token ids, and backward scratch of C + C + 3C + 4C + 4C.
  const GPTConfig config = named_config("tiny", 13);
  const std::int64_t before = memory_accountant().usage(Device::CPU, MemoryCategory::Activations).current;
  GPT model(config, DType::F32, 2, 8);
  const std::int64_t bytes = memory_accountant().usage(Device::CPU, MemoryCategory::Activations).current - before;
  const std::int64_t BT = 16, C = config.channels, H = config.head_count, T = 8, L = config.layer_count;
  // Each view starts on a 64-byte boundary; every element here is 4 bytes (fp32 values, fp32 statistics, int32 ids).
  auto aligned = [](std::int64_t values) { return (values * 4 + 63) / 64 * 64; };
  const std::int64_t per_layer = 7 * aligned(BT * C) + aligned(BT * 3 * C) + 2 * aligned(BT * 4 * C) + 4 * aligned(BT) +
                                 aligned(2 * H * T * T);
  const std::int64_t outside = 2 * aligned(BT)                                     // tokens, targets
                               + 2 * aligned(BT * C) + 2 * aligned(BT)             // embedded, lnf + its statistics
                               + aligned(BT * config.padded_vocab_size) + aligned(BT)  // logits, losses
                               + 2 * aligned(BT * C) + aligned(BT * 3 * C) + 2 * aligned(BT * 4 * C);  // backward scratch
  EXPECT_EQ(bytes, L * per_layer + outside);
}

}  // namespace
}  // namespace ladder
