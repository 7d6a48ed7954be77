// Stage 10's adapters on the tiny model: zero B changes no bit of the base, merging computes what the adapters
// computed, unmerging gives W0 back, PEFT's initialisation, and a frozen base that training leaves untouched.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "05_bf16/bf16_training.hpp"
#include "tests/stage10_test_support.hpp"
#include "tests/stage_test_support.hpp"
#include "tests/test_support.hpp"

namespace ladder {
namespace {

using testing_support::all_logits;
using testing_support::as_floats;
using testing_support::largest_magnitude;
using testing_support::lora_on_tiny_base;
using testing_support::lora_settings;
using testing_support::lora_test_batch;
using testing_support::lora_test_config;
using testing_support::randomize_adapters;

const std::vector<std::string> kAllTargets = {"q", "k", "v", "o", "fc", "proj"};
constexpr std::uint64_t kBaseSeed = 11;

TEST(Stage10Adapters, ZeroBLeavesEveryLogitBitOfTheBase) {
  // The base alone, and the same weights with adapters on all six targets at their initialisation (A random, B = 0):
  // the term added is zero, and adding zero to a value already rounded to its dtype changes no bit.
  for (const DType dtype : {DType::BF16, DType::F32}) {
    GPT base(lora_test_config(), dtype, 2, 5);
    base.initialize(kBaseSeed);
    auto lora = lora_on_tiny_base(lora_settings(kAllTargets, 4), dtype, kBaseSeed);
    EXPECT_GT(testing_support::largest_magnitude(as_floats(lora->adapters.weights())), 0.0) << "A is not zero";
    const Batch batch = lora_test_batch(13, 2, 5, 3);
    const double base_loss = base.forward(batch);
    const double adapted_loss = lora->model.forward(batch);
    const std::vector<float> expected = all_logits(base, 2, 5), actual = all_logits(lora->model, 2, 5);
    ASSERT_EQ(expected.size(), actual.size());
    EXPECT_EQ(0, std::memcmp(expected.data(), actual.data(), expected.size() * sizeof(float))) << dtype_name(dtype);
    EXPECT_EQ(base_loss, adapted_loss) << dtype_name(dtype);

    // And the adapters are really in the path: non-zero B moves the logits.
    randomize_adapters(*lora, 5);
    lora->model.forward(batch);
    EXPECT_NE(all_logits(lora->model, 2, 5), expected) << dtype_name(dtype);
  }
}

// Logits of the adapted model before merging, then after merging (adapters off): the same function computed two ways.
std::pair<std::vector<float>, std::vector<float>> unmerged_and_merged_logits(DType dtype) {
  auto lora = lora_on_tiny_base(lora_settings(kAllTargets, 4, 8), dtype, kBaseSeed);
  randomize_adapters(*lora, 21);
  const Batch batch = lora_test_batch(13, 2, 5, 4);
  lora->model.forward(batch);
  std::vector<float> unmerged = all_logits(lora->model, 2, 5);
  lora->merge();
  lora->model.forward(batch);
  return {unmerged, all_logits(lora->model, 2, 5)};
}

TEST(Stage10Adapters, MergedForwardMatchesTheAdaptersInFp32) {
  // In fp32 the two ways differ only by fp32 rounding in a different order: 1e-5 of the largest logit (measured:
  // below 1e-6). A merge that put B·A in the wrong rows, transposed or unscaled would be off by the term itself.
  const auto [unmerged, merged] = unmerged_and_merged_logits(DType::F32);
  const double largest = largest_magnitude(unmerged);
  for (std::size_t i = 0; i < merged.size(); ++i) ASSERT_NEAR(merged[i], unmerged[i], 1e-5 * largest) << i;
}

TEST(Stage10Adapters, MergedForwardMatchesTheAdaptersWithinBf16Rounding) {
  // In bf16 the merged weight W0 + (α/r)·B·A is rounded once to 8 significant bits, while the adapters' path rounds
  // x·Aᵀ, its product with B and the sum into the output separately. Stated tolerance: 8 bf16 unit roundoffs
  // (8·2^-8) of the largest logit (measured: 4.0); the merge in fp32 above shows the rest is rounding.
  const auto [unmerged, merged] = unmerged_and_merged_logits(DType::BF16);
  const double largest = largest_magnitude(unmerged);
  double worst = 0;
  for (std::size_t i = 0; i < merged.size(); ++i) worst = std::max(worst, std::abs(double(merged[i]) - unmerged[i]));
  EXPECT_LT(worst, 8 * stage05::kBf16UnitRoundoff * largest);
  EXPECT_NE(merged, unmerged) << "bf16 rounding should show somewhere";
}

TEST(Stage10Adapters, UnmergingRecoversW0WithinBf16RoundingAndTouchesNoOtherRow) {
  // Only q adapted: k and v share the fused qkv matrix and must keep every bit; q's rows come back from
  // W0 + ΔW - ΔW to within the two roundings, u·|merged| + u·|recovered| with u = 2^-8.
  auto lora = lora_on_tiny_base(lora_settings({"q"}, 4), DType::BF16, kBaseSeed);
  randomize_adapters(*lora, 8);
  const std::int64_t C = lora_test_config().channels;
  const Tensor qkv = lora->model.parameter("blocks.1.attn.qkv.weight");
  const std::vector<float> original = as_floats(qkv);
  lora->adapters.merge_into(lora->model, lora->master.weights(), +1);
  const std::vector<float> merged = as_floats(qkv);
  lora->adapters.merge_into(lora->model, lora->master.weights(), -1);
  const std::vector<float> recovered = as_floats(qkv);
  int moved = 0;
  for (std::int64_t i = 0; i < 3 * C * C; ++i) {
    if (i >= C * C) {
      ASSERT_EQ(merged[i], original[i]) << "k or v row element " << i << " changed";
      continue;
    }
    moved += merged[i] != original[i];
    const double bound = stage05::kBf16UnitRoundoff * (std::abs(merged[i]) + std::abs(recovered[i]));
    ASSERT_LE(std::abs(double(recovered[i]) - original[i]), bound) << "q element " << i;
  }
  EXPECT_GT(moved, C * C / 2) << "the merge should change most of q's rows";
}

TEST(Stage10Adapters, InitialisationIsPeftsKaimingUniformAandZeroB) {
  // kaiming_uniform_(a=√5) on A (r×k) is U(-1/√k, 1/√k): mean 0, variance 1/(3k). B is zeros. In fp32, so that
  // the draws are seen before any bf16 rounding (which may carry a value a hair past the bound).
  const GPTConfig config = named_config("small", 16);
  stage10::LoraTraining training(config, AdamWConfig{}, lora_settings(kAllTargets, 8), 99, 1, 10, Device::CPU,
                                 DType::F32);
  for (std::size_t i = 0; i < training.adapters.adapters().size(); ++i) {
    const stage10::LoraAdapter& adapter = training.adapters.adapters()[i];
    const std::vector<float> values = as_floats(training.adapters.a_of(training.master.weights(), i));
    const double bound = 1.0 / std::sqrt(static_cast<double>(adapter.columns));
    double sum = 0, squares = 0;
    for (float value : values) {
      ASSERT_LE(std::abs(value), bound) << adapter.name;
      sum += value;
      squares += double(value) * value;
    }
    const double n = static_cast<double>(values.size());
    EXPECT_NEAR(sum / n, 0.0, 4 * bound / std::sqrt(3 * n)) << adapter.name << ": mean within 4 standard errors";
    EXPECT_NEAR(squares / n, bound * bound / 3, 0.15 * bound * bound / 3) << adapter.name;
    for (float value : as_floats(training.adapters.b_of(training.master.weights(), i))) ASSERT_EQ(value, 0.0f);
  }
  // Each adapter draws from its own stream: q's A does not depend on which other weights are adapted.
  stage10::LoraTraining q_only(config, AdamWConfig{}, lora_settings({"q"}, 8), 99, 1, 10, Device::CPU, DType::F32);
  EXPECT_EQ(as_floats(q_only.adapters.a_of(q_only.adapters.weights(), 0)),
            as_floats(training.adapters.a_of(training.adapters.weights(), 0)));
}

TEST(Stage10Adapters, TrainingMovesOnlyTheAdaptersAndLeavesTheBaseBitIdentical) {
  auto lora = lora_on_tiny_base(lora_settings({"q", "v", "fc"}, 2), DType::BF16, kBaseSeed, 4, 8);
  const std::vector<float> base = as_floats(lora->model.parameters());
  const std::vector<float> adapters_before = as_floats(lora->adapters.weights());
  double first_loss = 0, last_loss = 0;
  for (int step = 0; step < 8; ++step) {
    const double loss = lora->model.forward(lora_test_batch(13, 4, 8, 100));
    lora->adapters.zero_gradients();
    lora->model.backward();
    lora->step(1e-2);
    (step == 0 ? first_loss : last_loss) = loss;
  }
  const std::vector<float> base_after = as_floats(lora->model.parameters());
  EXPECT_EQ(0, std::memcmp(base.data(), base_after.data(), base.size() * sizeof(float)));
  EXPECT_NE(as_floats(lora->adapters.weights()), adapters_before);
  EXPECT_LT(last_loss, first_loss) << "eight steps on one batch should lower its loss";
}

TEST(Stage10Adapters, AFrozenBaseGivesTheAdaptersTheGradientsATrainableOneGives) {
  // The frozen model skips every weight gradient; the gradients that reach the adapters must not change a bit.
  const stage10::LoraSettings settings = lora_settings(kAllTargets, 3);
  auto frozen = lora_on_tiny_base(settings, DType::BF16, kBaseSeed);
  randomize_adapters(*frozen, 31);
  GPT trainable(lora_test_config(), DType::BF16, 2, 5);
  trainable.initialize(kBaseSeed);
  stage10::LoraAdapters adapters(trainable, settings, 7);
  ops::copy(adapters.weights(), frozen->adapters.weights());
  trainable.set_linear_adapters(&adapters);

  const Batch batch = lora_test_batch(13, 2, 5, 9);
  frozen->model.forward(batch);
  frozen->adapters.zero_gradients();
  frozen->model.backward();
  trainable.forward(batch);
  trainable.zero_gradients();
  adapters.zero_gradients();
  trainable.backward();
  EXPECT_EQ(as_floats(adapters.gradients()), as_floats(frozen->adapters.gradients()));
  EXPECT_GT(largest_magnitude(as_floats(adapters.gradients())), 0.0);
  EXPECT_THROW(frozen->model.gradients(), LadderError) << "a frozen model has no gradients to hand out";
}

TEST(Stage10Settings, TargetsAndRanksAreCheckedAgainstTheModel) {
  EXPECT_EQ(stage10::parse_targets("fc, q,v"), (std::vector<std::string>{"fc", "q", "v"}));
  EXPECT_NE(testing_support::error_message_of([] { stage10::parse_targets("q,,v"); }).find("unknown target ''"),
            std::string::npos);
  // Every target of the tiny model allows r <= C = 16; fc (64×16) and proj (16×64) included.
  EXPECT_NO_THROW(stage10::validate(lora_settings({"fc", "proj"}, 16), lora_test_config()));
  EXPECT_NE(testing_support::error_message_of([] {
              stage10::validate(lora_settings({"proj"}, 17), lora_test_config());
            }).find("--lora-rank 17 is larger than target 'proj' allows: its weight is 16x64, so r <= 16"),
            std::string::npos);
  EXPECT_DOUBLE_EQ(lora_settings({"q"}, 4).scaling(), 1.0) << "α = r by default";
  EXPECT_DOUBLE_EQ(lora_settings({"q"}, 4, 16).scaling(), 4.0);
}

}  // namespace
}  // namespace ladder
