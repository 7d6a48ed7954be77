// Stage 04 against stage 03 and fp32: the same updates when the scale is 1 and nothing overflows, the gradients
// that fp16 flushes to zero without a scale and keeps with one, an overflowed step that leaves everything as it
// was, and the memory (the scaler adds none).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <vector>

#include "03_master_weights/master_weights.hpp"
#include "04_loss_scaling/loss_scaler.hpp"
#include "common/data/data_source.hpp"
#include "common/ops/ops.hpp"
#include "tests/stage_test_support.hpp"

namespace ladder {
namespace {

using testing_support::as_floats;
using testing_support::MemorySnapshot;

constexpr int kBatchSize = 4;
constexpr int kSequenceLength = 10;  // one addition problem per row
constexpr std::uint64_t kSeed = 1337;

std::unique_ptr<DataSource> addition_data() {
  return make_data_source("addition", DataSlice{0, 1, kBatchSize, kSequenceLength}, kSeed);
}

std::unique_ptr<stage03::MasterWeightsTraining> tiny_training(const DataSource& data) {
  auto training = std::make_unique<stage03::MasterWeightsTraining>(named_config("tiny", data.vocab_size()),
                                                                   AdamWConfig{}, kBatchSize, kSequenceLength);
  training->model.initialize(kSeed);
  training->master.copy_from(training->model);
  return training;
}

/// Stage 04's step exactly as main.cpp takes it. `tamper` runs between backward and the overflow check (to inject
/// an overflow). Returns whether the step was skipped.
bool loss_scaled_step(stage03::MasterWeightsTraining& training, stage04::DynamicLossScaler& scaler, const Batch& batch,
                      double learning_rate, const std::function<void(GPT&)>& tamper = {}) {
  GPT& model = training.model;
  model.forward(batch);
  model.zero_gradients();
  model.backward(scaler.scale());
  if (tamper) tamper(model);
  const bool found_inf = stage04::has_inf_or_nan(model.gradients());
  if (!found_inf) training.master.step(training.optimizer, model, learning_rate, 1.0 / scaler.scale());
  scaler.update(found_inf);
  return found_inf;
}

/// Stage 03's step as its main.cpp takes it.
void master_weights_step(stage03::MasterWeightsTraining& training, const Batch& batch, double learning_rate) {
  training.model.forward(batch);
  training.model.zero_gradients();
  training.model.backward();
  training.master.step(training.optimizer, training.model, learning_rate);
}

bool same_bits(Tensor a, Tensor b) {
  return a.bytes() == b.bytes() && std::memcmp(a.data(), b.data(), static_cast<std::size_t>(a.bytes())) == 0;
}

/// A copy of a tensor's bytes, to compare bit for bit later (== on floats would call -0 and +0 equal).
std::vector<std::uint8_t> bits_of(Tensor values) {
  const auto* first = static_cast<const std::uint8_t*>(values.data());
  return std::vector<std::uint8_t>(first, first + values.bytes());
}

TEST(Stage04Training, WithTheScaleFixedAtOneTheUpdatesAreStage03sBitForBit) {
  // S = 1 multiplies and divides by exactly 1, and the overflow check only reads: nothing may differ from stage 03.
  const auto data = addition_data();
  auto with_scaler = tiny_training(*data);
  auto without = tiny_training(*data);
  stage04::LossScalerConfig config;
  config.initial_scale = 1.0;
  config.fixed = true;
  stage04::DynamicLossScaler scaler(config);
  for (int step = 0; step < 5; ++step) {
    const Batch batch = data->train_batch(step);
    const double learning_rate = 1e-3 * (step + 1);
    ASSERT_FALSE(loss_scaled_step(*with_scaler, scaler, batch, learning_rate)) << "step " << step << " overflowed";
    master_weights_step(*without, batch, learning_rate);
    ASSERT_TRUE(same_bits(with_scaler->model.gradients(), without->model.gradients())) << "step " << step;
    ASSERT_TRUE(same_bits(with_scaler->model.parameters(), without->model.parameters())) << "step " << step;
    ASSERT_TRUE(same_bits(with_scaler->master.weights(), without->master.weights())) << "step " << step;
    ASSERT_TRUE(same_bits(with_scaler->optimizer.first_moment(), without->optimizer.first_moment())) << "step " << step;
    ASSERT_TRUE(same_bits(with_scaler->optimizer.second_moment(), without->optimizer.second_moment())) << "step " << step;
  }
  EXPECT_EQ(with_scaler->optimizer.step_count(), 5);
  EXPECT_EQ(without->optimizer.step_count(), 5);
  EXPECT_EQ(scaler.skipped_steps(), 0);
}

/// How a gradient compares with the fp32 one: relative L2 error, and the share of the fp32 gradient's non-zero
/// entries that came out exactly zero.
struct GradientComparison {
  double relative_error = 0;
  double flushed_fraction = 0;
};

GradientComparison compare(const std::vector<float>& gradient, const std::vector<float>& reference) {
  double error = 0, norm = 0;
  std::int64_t nonzero = 0, flushed = 0;
  for (std::size_t i = 0; i < reference.size(); ++i) {
    error += std::pow(static_cast<double>(gradient[i]) - reference[i], 2);
    norm += std::pow(static_cast<double>(reference[i]), 2);
    if (reference[i] != 0) {
      ++nonzero;
      if (gradient[i] == 0) ++flushed;
    }
  }
  return {std::sqrt(error / norm), static_cast<double>(flushed) / static_cast<double>(nonzero)};
}

TEST(Stage04Training, GradientsThatUnderflowWithoutAScaleSurviveWithOne) {
  // A loss multiplied by 2^-20 (as a loss summed over a million tokens and divided by their count once too often
  // would be) puts the tiny model's gradients around fp16's smallest subnormal, 2^-24 ≈ 6e-8: stage 03's backward
  // flushes them to zero. Stage 04 multiplies the loss by S = 2^16 first and divides by S in fp32 afterwards.
  const double multiplier = std::ldexp(1.0, -20);
  const auto data = addition_data();
  const Batch batch = data->train_batch(0);
  const GPTConfig config = named_config("tiny", data->vocab_size());

  GPT half(config, DType::F16, kBatchSize, kSequenceLength);
  half.initialize(kSeed);
  GPT full(config, DType::F32, kBatchSize, kSequenceLength);
  ops::convert(full.parameters(), half.parameters());  // the same (fp16-representable) weights in fp32
  full.forward(batch);
  full.zero_gradients();
  full.backward(multiplier);
  const std::vector<float> reference = as_floats(full.gradients());

  half.forward(batch);
  half.zero_gradients();
  half.backward(multiplier);  // stage 03: no scale
  const GradientComparison unscaled = compare(as_floats(half.gradients()), reference);

  const stage04::DynamicLossScaler scaler;
  half.forward(batch);  // backward consumes the forward's logits, so the same forward runs again
  half.zero_gradients();
  half.backward(multiplier * scaler.scale());  // stage 04, then unscaled in fp32 as AdamW reads them
  ASSERT_FALSE(stage04::has_inf_or_nan(half.gradients()));
  const GradientComparison scaled = compare(as_floats(half.gradients(), 1.0 / scaler.scale()), reference);

  // Measured: without a scale 99.0% of the non-zero fp32 gradient entries come out exactly 0 and the relative
  // L2 error is 0.93; with S = 2^16, 0.49% are 0 (entries 2^4 times smaller than fp16's smallest even after
  // scaling) and the error is 5.4e-4, about one fp16 rounding (2^-11 ≈ 4.9e-4): what fp16 costs with no
  // underflow at all (the same model with the loss unmultiplied measures 3.9e-4).
  EXPECT_GT(unscaled.flushed_fraction, 0.9);
  EXPECT_GT(unscaled.relative_error, 0.5);
  // Bounds with headroom over the measured values, and far from the unscaled ones: 1% flushed, 4 fp16 roundings.
  EXPECT_LT(scaled.flushed_fraction, 0.01);
  EXPECT_LT(scaled.relative_error, 2e-3);
  std::printf("without a scale: relative error %.3g, flushed %.4f; with S = 2^16: relative error %.3g, flushed %.4f\n",
              unscaled.relative_error, unscaled.flushed_fraction, scaled.relative_error, scaled.flushed_fraction);
}

TEST(Stage04Training, AnOverflowSkipsTheStepLeavesEverythingAsItWasAndHalvesTheScale) {
  const auto data = addition_data();
  auto training = tiny_training(*data);
  stage04::LossScalerConfig config;
  config.initial_scale = 1024.0;  // small enough that the tiny model's gradients fit in fp16 at every step here
  stage04::DynamicLossScaler scaler(config);
  // Two clean steps first, so that Adam's moments and step count are not trivially zero.
  ASSERT_FALSE(loss_scaled_step(*training, scaler, data->train_batch(0), 1e-3));
  ASSERT_FALSE(loss_scaled_step(*training, scaler, data->train_batch(1), 1e-3));

  const float overflows[] = {std::numeric_limits<float>::infinity(), std::numeric_limits<float>::quiet_NaN()};
  double expected_scale = 1024.0;
  int step = 2;
  for (float overflow : overflows) {
    const auto weights = bits_of(training->model.parameters());
    const auto master = bits_of(training->master.weights());
    const auto first = bits_of(training->optimizer.first_moment());
    const auto second = bits_of(training->optimizer.second_moment());
    const std::int64_t adam_steps = training->optimizer.step_count();

    const bool skipped = loss_scaled_step(*training, scaler, data->train_batch(step++), 1e-3, [&](GPT& model) {
      model.gradient("blocks.1.mlp.fc.weight").as<Half>()[5] = Half(overflow);  // one entry of thousands
    });
    expected_scale /= 2;
    EXPECT_TRUE(skipped) << overflow;
    EXPECT_TRUE(bits_of(training->model.parameters()) == weights) << "fp16 weights moved after " << overflow;
    EXPECT_TRUE(bits_of(training->master.weights()) == master) << "master weights moved after " << overflow;
    EXPECT_TRUE(bits_of(training->optimizer.first_moment()) == first) << "Adam's m moved after " << overflow;
    EXPECT_TRUE(bits_of(training->optimizer.second_moment()) == second) << "Adam's v moved after " << overflow;
    EXPECT_EQ(training->optimizer.step_count(), adam_steps) << "AdamW's bias correction must not see the skip";
    EXPECT_EQ(scaler.scale(), expected_scale);
    EXPECT_EQ(scaler.growth_tracker(), 0);
  }
  EXPECT_EQ(scaler.skipped_steps(), 2);

  // The next clean step is taken as usual, at the halved scale.
  const std::vector<float> before = as_floats(training->master.weights());
  ASSERT_FALSE(loss_scaled_step(*training, scaler, data->train_batch(step), 1e-3));
  EXPECT_NE(as_floats(training->master.weights()), before);
  EXPECT_EQ(training->optimizer.step_count(), 3);
  EXPECT_EQ(scaler.growth_tracker(), 1);
}

TEST(Stage04Training, AWeightThatOverflowsFp16SkipsEveryStepAndTheScaleStopsAtTheFloor) {
  // No injection this time: one head weight at fp16's largest value makes logits, loss and gradients overflow in
  // the model itself. No step may touch the weights, and the scale backs off to the floor and stays there.
  const auto data = addition_data();
  auto training = tiny_training(*data);
  training->model.parameter("lm_head.weight").as<Half>()[0] = Half(65504.0f);
  training->master.copy_from(training->model);
  stage04::LossScalerConfig config;
  config.initial_scale = 8.0;
  config.min_scale = 2.0;
  stage04::DynamicLossScaler scaler(config);
  const auto master = bits_of(training->master.weights());
  const std::vector<double> expected_scales = {4, 2, 2, 2};
  for (std::size_t step = 0; step < expected_scales.size(); ++step) {
    EXPECT_TRUE(loss_scaled_step(*training, scaler, data->train_batch(static_cast<std::int64_t>(step)), 1e-3));
    EXPECT_EQ(scaler.scale(), expected_scales[step]) << "after step " << step;
  }
  EXPECT_EQ(scaler.skipped_steps(), 4);
  EXPECT_EQ(training->optimizer.step_count(), 0);
  EXPECT_TRUE(bits_of(training->master.weights()) == master);
}

TEST(Stage04Memory, TheScalerAddsNothing2And2And4And8BytesPerParameter) {
  const MemorySnapshot memory;
  const GPTConfig config = named_config("small", 16);
  {
    stage03::MasterWeightsTraining training(config, AdamWConfig{}, 4, 32);
    const stage04::DynamicLossScaler scaler;
    // small at V=16 has no padding: the padded size is the parameter count (805,632).
    const std::int64_t parameters = testing_support::kSmallParameterCountAtV16;
    ASSERT_EQ(training.model.layout().padded_size(), parameters);
    EXPECT_EQ(memory.added(MemoryCategory::Parameters), 2 * parameters);      // fp16 working weights
    EXPECT_EQ(memory.added(MemoryCategory::Gradients), 2 * parameters);       // fp16 (scaled) gradients
    EXPECT_EQ(memory.added(MemoryCategory::MasterWeights), 4 * parameters);   // fp32 master weights
    EXPECT_EQ(memory.added(MemoryCategory::OptimizerState), 8 * parameters);  // fp32 m and v
    EXPECT_EQ(memory.added(MemoryCategory::CommBuffers), 0);
    EXPECT_EQ(memory.added(MemoryCategory::Workspace), 0) << "no fp32 gradient copy: AdamW unscales as it reads";
    EXPECT_EQ(stage04::kBytesPerParameter, 16);
  }
  memory.expect_all_returned();
}

}  // namespace
}  // namespace ladder
