// Stage 03's memory, read from the accountant: 2 + 2 + 4 + 8 = 16 bytes per parameter, as much as stage 01.
#include <gtest/gtest.h>

#include "03_master_weights/master_weights.hpp"
#include "tests/stage_test_support.hpp"

namespace ladder {
namespace {

using testing_support::MemorySnapshot;

TEST(Stage03Memory, Fp16WeightsAndGradientsFp32MasterAndFp32AdamStateAre2And2And4And8BytesPerParameter) {
  const MemorySnapshot memory;
  const GPTConfig config = named_config("small", 16);
  {
    stage03::MasterWeightsTraining training(config, AdamWConfig{}, 4, 32);
    // small at V=16 has no padding (see stage 01's memory test): the padded size is the parameter count.
    const std::int64_t parameters = testing_support::kSmallParameterCountAtV16;
    ASSERT_EQ(training.model.layout().padded_size(), parameters);
    EXPECT_EQ(memory.added(MemoryCategory::Parameters), 2 * parameters);      // fp16 working weights
    EXPECT_EQ(memory.added(MemoryCategory::Gradients), 2 * parameters);       // fp16 gradients: no fp32 gradient copy
    EXPECT_EQ(memory.added(MemoryCategory::MasterWeights), 4 * parameters);   // the fp32 master
    EXPECT_EQ(memory.added(MemoryCategory::OptimizerState), 8 * parameters);  // fp32 m and v
    EXPECT_EQ(memory.added(MemoryCategory::CommBuffers), 0);
    EXPECT_EQ(memory.added(MemoryCategory::Workspace), 0);
    EXPECT_EQ(stage03::kBytesPerParameter, 16);
    EXPECT_GT(memory.added(MemoryCategory::Activations), 0);
  }
  memory.expect_all_returned();
}

}  // namespace
}  // namespace ladder
