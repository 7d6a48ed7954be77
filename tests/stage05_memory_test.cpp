// Stage 05's memory, read from the accountant: bf16 weights and gradients are 2 bytes like fp16's, so the table is
// stage 03's: 2 + 2 bytes of working copy and gradient, 4 of fp32 master weights, 8 of fp32 Adam moments.
#include <gtest/gtest.h>

#include "05_bf16/bf16_training.hpp"
#include "tests/stage_test_support.hpp"

namespace ladder {
namespace {

using testing_support::MemorySnapshot;

TEST(Stage05Memory, Bf16WeightsAndGradientsFp32MasterAndMomentsAre2And2And4And8BytesPerParameter) {
  const MemorySnapshot memory;
  const GPTConfig config = named_config("small", 16);
  {
    stage05::Bf16Training training(config, AdamWConfig{}, 4, 32);
    // small at V=16 has no padding: the padded size is the parameter count (805,632).
    const std::int64_t parameters = testing_support::kSmallParameterCountAtV16;
    ASSERT_EQ(training.model.layout().padded_size(), parameters);
    EXPECT_EQ(training.model.dtype(), DType::BF16);
    EXPECT_EQ(training.master.weights().dtype(), DType::F32);
    EXPECT_EQ(training.optimizer.first_moment().dtype(), DType::F32);
    EXPECT_EQ(training.optimizer.second_moment().dtype(), DType::F32);
    EXPECT_EQ(memory.added(MemoryCategory::Parameters), 2 * parameters);
    EXPECT_EQ(memory.added(MemoryCategory::Gradients), 2 * parameters);
    EXPECT_EQ(memory.added(MemoryCategory::MasterWeights), 4 * parameters);
    EXPECT_EQ(memory.added(MemoryCategory::OptimizerState), 8 * parameters);
    EXPECT_EQ(memory.added(MemoryCategory::CommBuffers), 0);
    EXPECT_EQ(stage05::kBytesPerParameter, 16);
    EXPECT_GT(memory.added(MemoryCategory::Activations), 0);
  }
  // Everything is returned when the stage's state goes away.
  memory.expect_all_returned();
}

}  // namespace
}  // namespace ladder
