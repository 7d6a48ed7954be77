// Stage 10's memory, read from the accountant: the frozen base costs its bf16 weights alone (2 bytes a parameter),
// the adapters stage 05's 2 + 2 + 4 + 8, and nothing else holds model state.
#include <gtest/gtest.h>

#include "10_lora/lora_training.hpp"
#include "tests/stage10_test_support.hpp"
#include "tests/stage_test_support.hpp"

namespace ladder {
namespace {

using testing_support::lora_settings;
using testing_support::MemorySnapshot;

// Σ over layers and targets of r·(d + k): q, k, v, o are C×C, fc 4C×C, proj C×4C.
std::int64_t adapter_parameters(int layers, int rank, std::int64_t C, int square_targets, bool fc, bool proj) {
  return layers * rank * (square_targets * 2 * C + (fc ? 5 * C : 0) + (proj ? 5 * C : 0));
}

void expect_stage10_bytes(const stage10::LoraSettings& settings, std::int64_t adapters) {
  const MemorySnapshot memory;
  const GPTConfig config = named_config("small", 16);
  {
    stage10::LoraTraining training(config, AdamWConfig{}, settings, 1, 4, 10);
    const std::int64_t base = testing_support::kSmallParameterCountAtV16;
    ASSERT_EQ(training.model.layout().padded_size(), base);
    ASSERT_EQ(training.adapters.parameter_count(), adapters);
    EXPECT_EQ(memory.added(MemoryCategory::Parameters), 2 * base + 2 * adapters) << "bf16 base and bf16 adapters";
    EXPECT_EQ(memory.added(MemoryCategory::Gradients), 2 * adapters) << "bf16 gradients of A and B only";
    EXPECT_EQ(memory.added(MemoryCategory::MasterWeights), 4 * adapters) << "fp32 master of A and B only";
    EXPECT_EQ(memory.added(MemoryCategory::OptimizerState), 8 * adapters) << "fp32 moments of A and B only";
    EXPECT_EQ(memory.added(MemoryCategory::CommBuffers), 0);
    EXPECT_GT(memory.added(MemoryCategory::Activations), 0);
  }
  memory.expect_all_returned();
}

TEST(Stage10Memory, DefaultTargetsQAndVCostTheBase2BytesAndTheAdapters16) {
  // q and v of 4 layers at r = 8: 4·8·(2·256) = 16,384 adapter parameters, 2.0% of the base's 805,632.
  expect_stage10_bytes(lora_settings({"q", "v"}, 8), adapter_parameters(4, 8, 128, 2, false, false));
  EXPECT_EQ(stage10::kBytesPerBaseParameter, 2);
  EXPECT_EQ(stage10::kBytesPerAdapterParameter, 2 + 2 + 4 + 8);
}

TEST(Stage10Memory, EveryTargetAtRankFour) {
  expect_stage10_bytes(lora_settings({"q", "k", "v", "o", "fc", "proj"}, 4), adapter_parameters(4, 4, 128, 4, true, true));
}

}  // namespace
}  // namespace ladder
