// Two additions for stage 10's frozen base and its adapters: matmul and LayerNorm backward with empty weight
// gradients compute the input's gradient alone (the same bits), and dropout with a counter-based mask.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "common/ops/ops.hpp"
#include "common/random.hpp"
#include "tests/ops_test_support.hpp"
#include "tests/test_support.hpp"

namespace ladder {
namespace {

using testing_support::random_values;

Tensor view(std::vector<float>& values, std::initializer_list<std::int64_t> shape) {
  return Tensor(values.data(), DType::F32, shape);
}

std::vector<float> random_floats(std::uint64_t seed, std::size_t count) {
  Random random(seed);
  std::vector<float> values(count);
  for (float& value : values) value = static_cast<float>(random.normal());
  return values;
}

const Tensor kEmpty(nullptr, DType::F32, {0});

TEST(OpsFrozen, MatmulBackwardWithoutWeightGradientGivesTheSameInputGradient) {
  const std::int64_t N = 6, C = 5, OC = 7;
  std::vector<float> inp = random_floats(1, N * C), weight = random_floats(2, OC * C), dout = random_floats(3, N * OC);
  std::vector<float> dinp_full = random_floats(4, N * C), dinp_frozen = dinp_full;
  std::vector<float> dweight(OC * C, 0.0f), dbias(OC, 0.0f);
  ops::matmul_backward(view(dinp_full, {N, C}), view(dweight, {OC, C}), view(dbias, {OC}), view(dout, {N, OC}),
                       view(inp, {N, C}), view(weight, {OC, C}));
  ops::matmul_backward(view(dinp_frozen, {N, C}), Tensor(), kEmpty, view(dout, {N, OC}), view(inp, {N, C}),
                       view(weight, {OC, C}));
  EXPECT_EQ(dinp_frozen, dinp_full);
}

TEST(OpsFrozen, LayernormBackwardWithoutParameterGradientsGivesTheSameInputGradient) {
  const std::int64_t N = 4, C = 9;
  std::vector<float> inp = random_floats(5, N * C), weight = random_floats(6, C), bias = random_floats(7, C);
  std::vector<float> out(N * C), mean(N), rstd(N), dout = random_floats(8, N * C);
  ops::layernorm_forward(view(out, {N, C}), view(mean, {N}), view(rstd, {N}), view(inp, {N, C}), view(weight, {C}),
                         view(bias, {C}));
  std::vector<float> dinp_full = random_floats(9, N * C), dinp_frozen = dinp_full, dweight(C), dbias(C);
  ops::layernorm_backward(view(dinp_full, {N, C}), view(dweight, {C}), view(dbias, {C}), view(dout, {N, C}),
                          view(inp, {N, C}), view(weight, {C}), view(mean, {N}), view(rstd, {N}));
  ops::layernorm_backward(view(dinp_frozen, {N, C}), Tensor(), Tensor(), view(dout, {N, C}), view(inp, {N, C}),
                          view(weight, {C}), view(mean, {N}), view(rstd, {N}));
  EXPECT_EQ(dinp_frozen, dinp_full);
  // One parameter gradient without the other is a mistake, not a frozen layer.
  const std::string message = testing_support::error_message_of([&] {
    ops::layernorm_backward(view(dinp_frozen, {N, C}), view(dweight, {C}), Tensor(), view(dout, {N, C}),
                            view(inp, {N, C}), view(weight, {C}), view(mean, {N}), view(rstd, {N}));
  });
  EXPECT_NE(message.find("layernorm_backward: dweight and dbias must both be given"), std::string::npos) << message;
}

TEST(OpsDropout, KeepsAboutOneMinusPScalesByItsInverseAndRepeatsItsMask) {
  const std::int64_t count = 20000;
  const double probability = 0.25;
  std::vector<float> inp(count, 1.0f), out(count), again(count), other_seed(count);
  ops::dropout_forward(view(out, {count}), view(inp, {count}), probability, 42);
  ops::dropout_forward(view(again, {count}), view(inp, {count}), probability, 42);
  ops::dropout_forward(view(other_seed, {count}), view(inp, {count}), probability, 43);
  std::int64_t kept = 0;
  for (float value : out) {
    ASSERT_TRUE(value == 0.0f || value == static_cast<float>(1 / (1 - probability))) << value;
    kept += value != 0.0f;
  }
  // Binomial(20000, 0.75): standard deviation 61; 5 of them either way.
  EXPECT_NEAR(static_cast<double>(kept), 0.75 * count, 5 * std::sqrt(count * 0.75 * 0.25));
  EXPECT_EQ(out, again) << "the mask is a function of the seed";
  EXPECT_NE(out, other_seed);
  ops::dropout_forward(view(again, {count}), view(inp, {count}), 0.0, 42);
  EXPECT_EQ(again, inp) << "p = 0 keeps everything unscaled";
}

TEST(OpsDropout, BackwardMatchesCentralDifferencesInDouble) {
  const std::int64_t count = 64;
  Random random(3);
  std::vector<double> inp = random_values(random, count), weights = random_values(random, count);
  std::vector<double> out(count);
  auto loss = [&] {
    ops::dropout_forward(Tensor(out.data(), DType::F64, {count}), Tensor(inp.data(), DType::F64, {count}), 0.4, 9);
    return testing_support::weighted_sum(out, weights);
  };
  const std::vector<double> numerical = testing_support::numerical_gradient(inp, loss);
  const std::vector<double> initial = random_values(random, count);
  std::vector<double> dinp = initial;
  ops::dropout_backward(Tensor(dinp.data(), DType::F64, {count}), Tensor(weights.data(), DType::F64, {count}), 0.4, 9);
  testing_support::expect_gradient(dinp, initial, numerical, "dropout dinp");
}

TEST(OpsDropout, RefusesAProbabilityOutsideZeroToOne) {
  std::vector<float> values(4, 1.0f);
  const std::string message =
      testing_support::error_message_of([&] { ops::dropout_forward(view(values, {4}), view(values, {4}), 1.0, 1); });
  EXPECT_NE(message.find("dropout_forward: probability 1 must lie in [0, 1)"), std::string::npos) << message;
}

}  // namespace
}  // namespace ladder
