// The step log's zero_grads and unchanged extras, and the end-of-run summary, on hand-made cases with known answers.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "02_fp16_naive/fp16_training.hpp"
#include "tests/stage_test_support.hpp"

namespace ladder {
namespace {

// The tiny model at V=13 has padded vocabulary rows (real parameters) and, with shard_multiple 2, padding between
// units (not parameters), so the fractions' denominator must be the tensors' total, not the buffer's length.
class Stage02Diagnostics : public ::testing::Test {
 protected:
  Stage02Diagnostics() : model_(named_config("tiny", 13), DType::F16, 1, 1, /*shard_multiple=*/2) {}
  void SetUp() override {
    for (const ParameterTensor& tensor : model_.layout().tensors()) real_ += tensor.numel;
    // Every real weight and gradient 1.0; padding stays 0.
    for (const ParameterTensor& tensor : model_.layout().tensors()) {
      for (std::int64_t i = 0; i < tensor.numel; ++i) {
        weights()[tensor.offset + i] = Half(1.0f);
        gradients()[tensor.offset + i] = Half(1.0f);
      }
    }
  }
  Half* weights() { return model_.parameters().as<Half>(); }
  Half* gradients() { return model_.gradients().as<Half>(); }
  std::int64_t offset_of(const std::string& name) const { return model_.layout().tensor(name).offset; }

  GPT model_;
  std::int64_t real_ = 0;
};

TEST_F(Stage02Diagnostics, TheLayoutHasPaddingThatMustNotCount) {
  // Otherwise the tests below could not tell the two denominators apart.
  ASSERT_GT(model_.layout().padded_size(), real_);
}

TEST_F(Stage02Diagnostics, ZeroGradientsCountBothSignsOfZeroAndNothingElse) {
  stage02::UpdateDiagnostics diagnostics(model_.layout(), model_.parameters());
  EXPECT_EQ(diagnostics.zero_gradient_fraction(model_.gradients()), 0.0);  // padding zeros do not count
  const std::int64_t first = offset_of("wte"), last = offset_of("lm_head.weight");
  gradients()[first].bits = 0x0000;      // +0
  gradients()[first + 1].bits = 0x8000;  // -0: an underflowed negative gradient
  gradients()[last].bits = 0x0001;       // the smallest subnormal, 2^-24: tiny but not zero
  EXPECT_DOUBLE_EQ(diagnostics.zero_gradient_fraction(model_.gradients()), 2.0 / static_cast<double>(real_));
}

TEST_F(Stage02Diagnostics, UnchangedComparesBitsWithTheLastMeasurement) {
  stage02::UpdateDiagnostics diagnostics(model_.layout(), model_.parameters());
  EXPECT_EQ(diagnostics.unchanged_fraction(), 1.0);
  const std::int64_t first = offset_of("wte");
  weights()[first] = Half(1.0009765625f);  // one ulp up: a change
  weights()[first + 1].bits = 0x3c00;      // 1.0 written again: no change
  weights()[first + 2] = Half(-1.0f);
  EXPECT_DOUBLE_EQ(diagnostics.unchanged_fraction(), 1.0 - 2.0 / static_cast<double>(real_));
  // measure() reports that step, then compares the next one with the weights as they are now.
  const auto extras = diagnostics.measure(2.5, model_.gradients());
  ASSERT_EQ(extras.size(), 2u);
  EXPECT_EQ(extras[0].first, "zero_grads");
  EXPECT_EQ(extras[0].second, 0.0);
  EXPECT_EQ(extras[1].first, "unchanged");
  EXPECT_DOUBLE_EQ(extras[1].second, 1.0 - 2.0 / static_cast<double>(real_));
  EXPECT_EQ(diagnostics.unchanged_fraction(), 1.0);
  // Bits, not values: +0 → -0 is a change although the two compare equal; a NaN that stays NaN is not one.
  weights()[first].bits = 0x0000;
  weights()[first + 1].bits = 0x7e00;  // NaN
  diagnostics.remember_weights();
  weights()[first].bits = 0x8000;
  EXPECT_DOUBLE_EQ(diagnostics.unchanged_fraction(), 1.0 - 1.0 / static_cast<double>(real_));
}

TEST_F(Stage02Diagnostics, SummarySaysWhenTheLossFirstBrokeAndHowManyWeightsAreGone) {
  stage02::UpdateDiagnostics diagnostics(model_.layout(), model_.parameters());
  diagnostics.measure(2.0, model_.gradients());
  diagnostics.measure(1.5, model_.gradients());
  EXPECT_EQ(diagnostics.summary(), "all 2 step losses were finite");
  // Half of the real weights (rounded down) become inf or NaN.
  std::int64_t broken = 0;
  for (const ParameterTensor& tensor : model_.layout().tensors()) {
    for (std::int64_t i = 0; i < tensor.numel && broken < real_ / 2; ++i, ++broken) {
      weights()[tensor.offset + i].bits = broken % 2 ? 0x7c00 : 0x7e00;  // +inf, NaN
    }
  }
  EXPECT_DOUBLE_EQ(diagnostics.nonfinite_fraction(), static_cast<double>(real_ / 2) / static_cast<double>(real_));
  diagnostics.measure(std::numeric_limits<double>::quiet_NaN(), model_.gradients());
  diagnostics.measure(std::numeric_limits<double>::infinity(), model_.gradients());
  const std::string summary = diagnostics.summary();
  EXPECT_NE(summary.find("first at step 3 (2 of 4 steps)"), std::string::npos) << summary;
  EXPECT_NE(summary.find("50.0% of the weights"), std::string::npos) << summary;
}

TEST_F(Stage02Diagnostics, TheSnapshotIsAccountedAsWorkspace) {
  const testing_support::MemorySnapshot memory;
  stage02::UpdateDiagnostics diagnostics(model_.layout(), model_.parameters());
  EXPECT_EQ(memory.added(MemoryCategory::Workspace), model_.parameters().bytes());
}

TEST_F(Stage02Diagnostics, WrongSizesAndTypesAreRefusedByName) {
  std::vector<float> short_buffer(10);
  const Tensor too_short(short_buffer.data(), DType::F32, {10});
  EXPECT_THROW(stage02::UpdateDiagnostics(model_.layout(), too_short), LadderError);
  stage02::UpdateDiagnostics diagnostics(model_.layout(), model_.parameters());
  try {
    diagnostics.zero_gradient_fraction(too_short);
    FAIL() << "a gradient tensor of the wrong size was accepted";
  } catch (const LadderError& error) {
    EXPECT_NE(std::string(error.what()).find("10"), std::string::npos) << error.what();
  }
  const std::int64_t count = model_.layout().padded_size();
  std::vector<std::int32_t> ids(static_cast<std::size_t>(count));
  EXPECT_THROW(stage02::UpdateDiagnostics(model_.layout(), Tensor(ids.data(), DType::I32, {count})), LadderError);
}

}  // namespace
}  // namespace ladder
