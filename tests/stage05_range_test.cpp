// What stage 05 fixes: bf16 has fp32's exponent range, so values beyond fp16's largest (65504) stay finite.
// The same weights and batch go through three models: fp32 (stage 01), fp16 with master weights (stage 03) and bf16
// (stage 05). Each case first checks on fp32 that it really exceeds 65504, then that fp16 breaks and bf16 does not.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <vector>

#include "01_fp32_baseline/fp32_training.hpp"
#include "03_master_weights/master_weights.hpp"
#include "05_bf16/bf16_training.hpp"
#include "common/data/data_source.hpp"
#include "tests/stage_test_support.hpp"

namespace ladder {
namespace {

using testing_support::as_floats;

constexpr std::uint64_t kSeed = 1337;
constexpr int kBatchSize = 8;
constexpr int kSequenceLength = 10;
constexpr double kFp16Largest = 65504;
constexpr double kUnitRoundoff = stage05::kBf16UnitRoundoff;  // 2^-8

std::int64_t non_finite_count(Tensor tensor) {
  const std::vector<float> values = as_floats(tensor);
  return std::count_if(values.begin(), values.end(), [](float v) { return !std::isfinite(v); });
}

double largest_magnitude(Tensor tensor) {
  double largest = 0;
  for (float v : as_floats(tensor)) largest = std::max(largest, double(std::abs(v)));
  return largest;
}

// The three precisions from the same fp32 weights: the fp16 and bf16 masters hold them exactly, the models hold
// them rounded, as after any step of the recipe.
struct ThreePrecisions {
  std::unique_ptr<DataSource> data = make_data_source("addition", DataSlice{0, 1, kBatchSize, kSequenceLength}, kSeed);
  GPTConfig config = named_config("tiny", data->vocab_size());
  stage01::Fp32Training fp32{config, AdamWConfig{}, kBatchSize, kSequenceLength};
  stage03::MasterWeightsTraining fp16{config, AdamWConfig{}, kBatchSize, kSequenceLength, DType::F16};
  stage05::Bf16Training bf16{config, AdamWConfig{}, kBatchSize, kSequenceLength};

  ThreePrecisions() { fp32.model.initialize(kSeed); }
  void share_fp32_weights() {
    fp16.master.assign(fp16.model, fp32.model.parameters());
    bf16.master.assign(bf16.model, fp32.model.parameters());
  }
  void multiply(const std::string& name, float factor) {
    Tensor weights = fp32.model.parameter(name);
    for (std::int64_t i = 0; i < weights.numel(); ++i) weights.as<float>()[i] *= factor;
  }
};

// A loss multiplied by 2^17 before backward: what a loss scaler one doubling above PyTorch's starting scale
// (GradScaler's 2^16) does, or a loss summed instead of averaged over 2^17 tokens. The largest gradient becomes
// 7.4e4 (fp32), above fp16's 65504.
TEST(Stage05Range, GradientsThatOverflowFp16StayFiniteAndCorrectInBf16) {
  constexpr double kLossMultiplier = 131072;  // 2^17: a power of two, so the multiplication itself is exact
  ThreePrecisions run;
  run.share_fp32_weights();
  const Batch batch = run.data->train_batch(0);
  for (GPT* model : {&run.fp32.model, &run.fp16.model, &run.bf16.model}) {
    model->forward(batch);
    model->zero_gradients();
    model->backward(kLossMultiplier);
  }
  ASSERT_GT(largest_magnitude(run.fp32.model.gradients()), kFp16Largest) << "the case must exceed fp16's range";

  // fp16: the largest gradients overflow to inf (2 of them here); the unscaled norm is inf, and AdamW turns the
  // infinite gradients into non-finite master weights. Stage 04 exists to catch this and skip the step.
  EXPECT_GT(non_finite_count(run.fp16.model.gradients()), 0);
  const double fp16_norm = run.fp16.master.step(run.fp16.optimizer, run.fp16.model, 1e-3, 1 / kLossMultiplier);
  EXPECT_FALSE(std::isfinite(fp16_norm));
  EXPECT_GT(non_finite_count(run.fp16.master.weights()), 0);

  // bf16: every gradient finite; after undoing the multiplier, the norm is fp32's within one u (measured:
  // 2.69538 against 2.69390, 5.5e-4 relative = 0.14 u: a norm over 7k gradients averages their rounding errors).
  EXPECT_EQ(non_finite_count(run.bf16.model.gradients()), 0);
  const double fp32_norm =
      run.fp32.optimizer.step(run.fp32.model.parameters(), run.fp32.model.gradients(), 1e-3, 1 / kLossMultiplier);
  const double bf16_norm = run.bf16.master.step(run.bf16.optimizer, run.bf16.model, 1e-3, 1 / kLossMultiplier);
  EXPECT_NEAR(bf16_norm, fp32_norm, kUnitRoundoff * fp32_norm);
  EXPECT_EQ(non_finite_count(run.bf16.master.weights()), 0);
  EXPECT_EQ(non_finite_count(run.bf16.model.parameters()), 0);
}

TEST(Stage05Range, APowerOfTwoLossScaleChangesNoBitOfBf16Gradients) {
  // Why bf16 needs no scaler: scaling by 2^k commutes with every rounding unless a value leaves the format's range,
  // and bf16's range is fp32's. So the gradients of loss·2^17 are exactly 2^17 times those of the loss, bit for bit:
  // a loss scaler would have nothing to do.
  ThreePrecisions run;
  run.share_fp32_weights();
  const Batch batch = run.data->train_batch(0);
  GPT& model = run.bf16.model;
  model.forward(batch);
  model.zero_gradients();
  model.backward();
  std::vector<float> unscaled = as_floats(model.gradients());
  model.forward(batch);  // backward consumes the logits, so the second backward needs a fresh forward
  model.zero_gradients();
  model.backward(131072);
  const std::vector<float> scaled = as_floats(model.gradients());
  for (float& gradient : unscaled) gradient *= 131072.0f;  // exact in fp32
  EXPECT_EQ(0, std::memcmp(scaled.data(), unscaled.data(), scaled.size() * sizeof(float)));
}

// Logits beyond 65504, from a final LayerNorm gain of 2^9 and a head 2^10 times its initial size (powers of two,
// so every precision holds the same scaled weights): the largest logit is 1.29e5 in fp32. In fp16 that logit is inf
// and the loss NaN; in bf16 the loss is fp32's (measured: 57019 against 57009.9, 1.6e-4 relative = 0.04 u).
TEST(Stage05Range, LogitsThatOverflowFp16StayFiniteInBf16) {
  ThreePrecisions run;
  run.multiply("lnf.weight", 512);
  run.multiply("lm_head.weight", 1024);
  run.share_fp32_weights();
  const Batch batch = run.data->train_batch(0);
  // fp16's weights themselves are in range (lnf gain 512, head entries below 100): only the logits overflow.
  EXPECT_EQ(non_finite_count(run.fp16.model.parameters()), 0);

  const double fp32_loss = run.fp32.model.forward(batch);
  double largest_logit = 0;
  for (int row = 0; row < kBatchSize; ++row) {
    for (int position = 0; position < kSequenceLength; ++position) {
      for (float logit : run.fp32.model.logits_at(row, position)) largest_logit = std::max(largest_logit, double(std::abs(logit)));
    }
  }
  ASSERT_GT(largest_logit, kFp16Largest) << "the case must exceed fp16's range";

  EXPECT_FALSE(std::isfinite(run.fp16.model.forward(batch)));

  // Tolerance u relative: the loss averages 80 tokens' (log-sum-exp − target logit), each moved by bf16 roundings
  // of relative size about u of the logits it is made of.
  const double bf16_loss = run.bf16.model.forward(batch);
  EXPECT_NEAR(bf16_loss, fp32_loss, kUnitRoundoff * fp32_loss);
  run.bf16.model.zero_gradients();
  run.bf16.model.backward();
  EXPECT_EQ(non_finite_count(run.bf16.model.gradients()), 0);
}

}  // namespace
}  // namespace ladder
