// Stage 01's memory, read from the accountant: exactly 4 + 4 + 8 bytes per (padded) parameter.
#include <gtest/gtest.h>

#include "01_fp32_baseline/fp32_training.hpp"
#include "tests/stage_test_support.hpp"

namespace ladder {
namespace {

using testing_support::MemorySnapshot;

TEST(Stage01Memory, ParametersGradientsAndAdamStateAre4And4And8BytesPerParameter) {
  const MemorySnapshot memory;
  const GPTConfig config = named_config("small", 16);
  {
    stage01::Fp32Training training(config, AdamWConfig{}, 4, 32);
    // small at V=16: every tensor is a multiple of 16 elements, so the layout has no padding and the
    // padded size is the formula's count (see kSmallParameterCountAtV16).
    const std::int64_t parameters = testing_support::kSmallParameterCountAtV16;
    ASSERT_EQ(training.model.layout().padded_size(), parameters);
    EXPECT_EQ(memory.added(MemoryCategory::Parameters), 4 * parameters);
    EXPECT_EQ(memory.added(MemoryCategory::Gradients), 4 * parameters);
    EXPECT_EQ(memory.added(MemoryCategory::OptimizerState), 8 * parameters);
    EXPECT_EQ(memory.added(MemoryCategory::MasterWeights), 0);
    EXPECT_EQ(memory.added(MemoryCategory::CommBuffers), 0);
    EXPECT_EQ(stage01::kBytesPerParameter, 16);
    EXPECT_GT(memory.added(MemoryCategory::Activations), 0);
  }
  // Everything is returned when the stage's state goes away.
  memory.expect_all_returned();
}

TEST(Stage01Memory, ActivationBytesFollowTheFormula) {
  // Per token and layer: ln1, qkv(3C), attention out, proj, residual, ln2, fc(4C), gelu(4C), mlp proj, residual
  // = 18C values, plus 4 statistics and H·T attention probabilities. Outside the blocks: embedded, lnf, logits,
  // 2 statistics, the loss, 2 token ids, and backward scratch of C + C + 3C + 4C + 4C.
  const GPTConfig config = named_config("tiny", 13);
  const MemorySnapshot memory;
  GPT model(config, DType::F32, 2, 8);
  const std::int64_t bytes = memory.added(MemoryCategory::Activations);
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
