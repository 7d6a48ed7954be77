// The adapters' gradients against central finite differences in double: every target alone at both rank edges
// (r = 1 and r = min(d, k)), all six together, and with dropout (a fixed mask, so the loss is a function of A and B).
// Measured worst errors: below 2e-7 of each tensor's largest gradient, against a tolerance of 1e-6.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <tuple>
#include <vector>

#include "tests/ops_test_support.hpp"
#include "tests/stage10_test_support.hpp"

namespace ladder {
namespace {

using testing_support::fill_uniform;
using testing_support::lora_on_tiny_base;
using testing_support::lora_settings;
using testing_support::lora_test_batch;
using testing_support::lora_test_config;

constexpr double kBaseScale = 3.0;

// Worst |analytic - numeric| over every A and B entry, relative to the largest numeric gradient of its tensor.
double worst_gradient_error(const stage10::LoraSettings& settings, bool with_dropout = false) {
  auto lora = lora_on_tiny_base(settings, DType::F64, 5);
  GPT& model = lora->model;
  // Base weights three times GPT-2's scale and random A and B make every path carry a visible gradient (ten times
  // would saturate the tiny model's softmaxes, leaving q and k with almost none).
  double* base = model.parameters().as<double>();
  for (std::int64_t i = 0; i < model.parameters().numel(); ++i) base[i] *= kBaseScale;
  fill_uniform(lora->adapters.weights(), 77, 0.5);
  if (with_dropout) lora->adapters.enable_dropout(3);  // one mask, the same in every forward below
  const Batch batch = lora_test_batch(13, 2, 5, 12);

  model.forward(batch);
  lora->adapters.zero_gradients();
  model.backward();
  const Tensor gradients = lora->adapters.gradients();
  double* weights = lora->adapters.weights().as<double>();

  // Central differences in double: truncation ~h², rounding ~1e-16/h, both far below 1e-7 at h = 1e-5.
  double worst = 0;
  for (std::size_t index = 0; index < lora->adapters.adapters().size(); ++index) {
    for (const Tensor& values : {lora->adapters.a_of(lora->adapters.weights(), index),
                                 lora->adapters.b_of(lora->adapters.weights(), index)}) {
      const std::int64_t offset = static_cast<double*>(values.data()) - weights;
      const std::vector<double> numeric = testing_support::numerical_gradient(
          weights + offset, static_cast<std::size_t>(values.numel()), [&] { return model.forward(batch); });
      double largest = 0;
      for (double value : numeric) largest = std::max(largest, std::abs(value));
      EXPECT_GT(largest, 1e-3) << lora->adapters.adapters()[index].name << ": a visible gradient to check";
      for (std::int64_t i = 0; i < values.numel(); ++i) {
        const double analytic = gradients.as<double>()[offset + i];
        worst = std::max(worst, std::abs(analytic - numeric[static_cast<std::size_t>(i)]) / std::max(largest, 1e-3));
      }
    }
  }
  return worst;
}

// Every adapted block of the tiny model is d×k with min(d, k) = C = 16: q, k, v, o (16×16), fc (64×16), proj (16×64).
constexpr int kFullRank = 16;

class Stage10GradcheckEdge : public ::testing::TestWithParam<std::tuple<std::string, int>> {};

TEST_P(Stage10GradcheckEdge, TargetAtRankEdgeMatchesCentralDifferences) {
  const auto& [target, rank] = GetParam();
  ASSERT_EQ(lora_test_config().channels, kFullRank);
  // α = 2r, so the scaling α/r = 2 is in the path.
  EXPECT_LT(worst_gradient_error(lora_settings({target}, rank, 2.0 * rank)), 1e-6);
}

INSTANTIATE_TEST_SUITE_P(EveryTargetBothEdges, Stage10GradcheckEdge,
                         ::testing::Combine(::testing::Values("q", "k", "v", "o", "fc", "proj"),
                                            ::testing::Values(1, kFullRank)),
                         [](const auto& info) {
                           return std::get<0>(info.param) + "_rank" + std::to_string(std::get<1>(info.param));
                         });

TEST(Stage10Gradcheck, AllTargetsTogether) {
  // q, k and v add into the same qkv output and their gradients come from one d_qkv: each must take its own rows.
  EXPECT_LT(worst_gradient_error(lora_settings({"q", "k", "v", "o", "fc", "proj"}, 3, 5.0)), 1e-6);
}

TEST(Stage10Gradcheck, WithDropoutOnTheAdaptersInput) {
  stage10::LoraSettings settings = lora_settings({"v", "proj"}, 2);
  settings.dropout = 0.3;
  EXPECT_LT(worst_gradient_error(settings, true), 1e-6);
}

}  // namespace
}  // namespace ladder
