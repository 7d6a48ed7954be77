// Stage 03's MasterWeights: the fp32 copy keeps the updates that stage 02 loses, and the fp16 model only ever holds
// the master rounded once.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "02_fp16_naive/fp16_training.hpp"
#include "03_master_weights/master_weights.hpp"
#include "common/data/data_source.hpp"
#include "common/ops/ops.hpp"

namespace ladder {
namespace {

constexpr std::uint64_t kSeed = 1337;

Tensor view(std::vector<float>& values) { return Tensor(values.data(), DType::F32, {std::int64_t(values.size())}); }

void fill(Tensor destination, float value) {
  std::vector<float> values(static_cast<std::size_t>(destination.numel()), value);
  ops::convert(destination, view(values));
}

// An fp16 model against the fp32 values it should hold rounded once: how many entries are not that rounding
// (should be none), and how many differ from the fp32 value at all (the fp32 copy holds more than the model).
struct RoundingCounts {
  std::int64_t not_rounded_once = 0;
  std::int64_t inexact = 0;
};

RoundingCounts compare_rounding(const Half* working, const std::vector<float>& values) {
  RoundingCounts counts;
  for (std::size_t i = 0; i < values.size(); ++i) {
    counts.not_rounded_once += working[i].bits != Half(values[i]).bits;
    counts.inexact += float(working[i]) != values[i];
  }
  return counts;
}

TEST(Stage03MasterWeights, TheUpdateStage02LosesMovesTheMasterAtOnceAndTheFp16WeightOnceItAddsUp) {
  // Stage 02's lost update, on whole models: every weight 1.0, every gradient 0.005 (global norm below the clip),
  // lr 1e-4 and no weight decay, so each Adam step is lr·g/(|g| + ε) = 1e-4·(1 - 2e-6) per weight.
  // The fp16 neighbours of 1.0 below it are 1 - 2^-11 and 1 - 2^-10, the midpoint 1 - 2^-12 ≈ 1 - 2.44e-4:
  // after 1 and 2 steps the master (1 - 1e-4, 1 - 2e-4) still rounds to 1.0; after 3 (1 - 3e-4) to 1 - 2^-11.
  AdamWConfig adamw;
  adamw.weight_decay = 0.0;
  const GPTConfig config = named_config("tiny", 16);
  stage03::MasterWeightsTraining training(config, adamw, 1, 1);
  stage02::Fp16Training naive(config, adamw, 1, 1);
  std::vector<float> ones(static_cast<std::size_t>(training.model.parameters().numel()), 1.0f);
  training.master.assign(training.model, view(ones));
  fill(naive.model.parameters(), 1.0f);
  fill(training.model.gradients(), 0.005f);
  fill(naive.model.gradients(), 0.005f);

  const float expected_fp16[] = {1.0f, 1.0f, 1.0f - 1.0f / 2048.0f};
  for (int step = 1; step <= 3; ++step) {
    training.master.step(training.optimizer, training.model, 1e-4);
    naive.optimizer.step(naive.model.parameters(), naive.model.gradients(), 1e-4);
    const float* master = training.master.weights().as<float>();
    const Half* working = training.model.parameters().as<Half>();
    const Half* lost = naive.model.parameters().as<Half>();
    std::int64_t master_off = 0, working_off = 0, naive_moved = 0;
    for (const ParameterTensor& tensor : training.model.layout().tensors()) {
      for (std::int64_t i = tensor.offset; i < tensor.offset + tensor.numel; ++i) {
        // 1e-6: fp32's spacing near 1 is 6e-8, so three steps round by at most 2e-7; ε shifts each by 2e-10.
        master_off += std::abs(master[i] - (1.0 - step * 1e-4)) > 1e-6;
        working_off += float(working[i]) != expected_fp16[step - 1];
        naive_moved += float(lost[i]) != 1.0f;
      }
    }
    EXPECT_EQ(master_off, 0) << "master weights not at 1 - " << step << "e-4 after step " << step;
    EXPECT_EQ(working_off, 0) << "fp16 weights not at " << expected_fp16[step - 1] << " after step " << step;
    EXPECT_EQ(naive_moved, 0) << "stage 02's weights should never move: each step is below half an ulp";
  }
}

TEST(Stage03MasterWeights, AssignAndCopyFromRoundTripExactly) {
  stage03::MasterWeightsTraining training(named_config("tiny", 16), AdamWConfig{}, 1, 1);
  const std::int64_t count = training.model.parameters().numel();
  // Values fp16 cannot hold exactly (almost none of sin's values are multiples of fp16's spacing).
  std::vector<float> values(static_cast<std::size_t>(count));
  for (std::int64_t i = 0; i < count; ++i) values[i] = 0.1f * std::sin(0.37f * float(i) + 0.5f);

  // assign(fp32): the master is the values bit for bit; the model is each value rounded to fp16.
  training.master.assign(training.model, view(values));
  EXPECT_EQ(0, std::memcmp(training.master.weights().data(), values.data(), values.size() * sizeof(float)));
  const Half* working = training.model.parameters().as<Half>();
  const RoundingCounts assigned = compare_rounding(working, values);
  EXPECT_EQ(assigned.not_rounded_once, 0);
  EXPECT_GT(assigned.inexact, count / 2);  // the master really holds more than the model

  // copy_from: the master becomes the model's fp16 values, exactly (fp16 → fp32 loses nothing).
  training.master.copy_from(training.model);
  const float* master = training.master.weights().as<float>();
  std::int64_t wrong = 0;
  for (std::int64_t i = 0; i < count; ++i) wrong += master[i] != float(working[i]);
  EXPECT_EQ(wrong, 0);

  // assign(fp16): master and model both hold the fp16 values.
  std::vector<Half> halves(static_cast<std::size_t>(count));
  for (std::int64_t i = 0; i < count; ++i) halves[i] = Half(-2.0f * values[i]);
  training.master.assign(training.model, Tensor(halves.data(), DType::F16, {count}));
  wrong = 0;
  for (std::int64_t i = 0; i < count; ++i) wrong += master[i] != float(halves[i]) || working[i].bits != halves[i].bits;
  EXPECT_EQ(wrong, 0);

  std::vector<float> too_short(10);
  EXPECT_THROW(training.master.assign(training.model, view(too_short)), LadderError);
}

TEST(Stage03MasterWeights, StepIsFp32AdamWOnTheMasterThenOneRoundingIntoTheModel) {
  const auto data = make_data_source("addition", DataSlice{0, 1, 8, 10}, kSeed);
  const GPTConfig config = named_config("tiny", data->vocab_size());
  stage03::MasterWeightsTraining training(config, AdamWConfig{}, 8, 10);
  training.model.initialize(kSeed);
  training.master.copy_from(training.model);
  training.model.forward(data->train_batch(0));
  training.model.zero_gradients();
  training.model.backward();

  // The independent answer: the same AdamW class on a plain fp32 copy of the weights, given the fp16 gradients
  // converted to fp32 by hand.
  const std::int64_t count = training.model.parameters().numel();
  std::vector<float> reference(static_cast<std::size_t>(count)), gradients(static_cast<std::size_t>(count));
  ops::convert(view(reference), training.model.parameters());
  ops::convert(view(gradients), training.model.gradients());
  AdamW reference_optimizer(training.model.layout(), AdamWConfig{}, DType::F32);
  const double reference_norm = reference_optimizer.step(view(reference), view(gradients), 3e-3);

  const double norm = training.master.step(training.optimizer, training.model, 3e-3);
  EXPECT_EQ(norm, reference_norm);
  EXPECT_EQ(0, std::memcmp(training.master.weights().data(), reference.data(), reference.size() * sizeof(float)));
  // The model holds fp16(master), bit for bit: rounded once, from the fp32 master (not, say, updated in fp16).
  const RoundingCounts stepped = compare_rounding(training.model.parameters().as<Half>(), reference);
  EXPECT_EQ(stepped.not_rounded_once, 0);
  EXPECT_GT(stepped.inexact, count / 2);  // after one step most master weights sit between two fp16 values
}

}  // namespace
}  // namespace ladder
