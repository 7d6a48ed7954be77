// Every layer op's backward against central finite differences of its forward, in double precision (F64), by the
// method and with the tolerance described in tests/ops_test_support.hpp. (Attention has its own file,
// ops_attention_test.cpp, with the same method.)
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/ops/ops.hpp"
#include "common/random.hpp"
#include "tests/ops_test_support.hpp"

namespace ladder {
namespace {

using testing_support::expect_gradient;
using testing_support::numerical_gradient;
using testing_support::random_values;
using testing_support::weighted_sum;

// An F64 view of a vector; the vector must hold exactly the shape's elements.
Tensor view(std::vector<double>& values, std::initializer_list<std::int64_t> shape) {
  Tensor tensor(values.data(), DType::F64, shape);
  EXPECT_EQ(tensor.numel(), static_cast<std::int64_t>(values.size())) << "test set-up: shape " << tensor.shape_string();
  return tensor;
}

TEST(GradientCheck, Embedding) {
  Random random(101);
  const std::int64_t B = 2, T = 3, C = 4, V = 5, max_T = 4;
  std::vector<std::int32_t> tokens = {1, 3, 1, 4, 1, 0};  // token 1 three times, token 2 never
  std::vector<double> wte = random_values(random, V * C), wpe = random_values(random, max_T * C);
  std::vector<double> out(B * T * C), weights = random_values(random, B * T * C);
  const Tensor token_view(tokens.data(), DType::I32, {B, T});
  auto loss = [&] {
    ops::embedding_forward(view(out, {B, T, C}), token_view, view(wte, {V, C}), view(wpe, {max_T, C}));
    return weighted_sum(out, weights);
  };
  const std::vector<double> numerical_wte = numerical_gradient(wte, loss);
  const std::vector<double> numerical_wpe = numerical_gradient(wpe, loss);
  std::vector<double> dwte = random_values(random, V * C), dwpe = random_values(random, max_T * C);
  const std::vector<double> initial_dwte = dwte, initial_dwpe = dwpe;
  ops::embedding_backward(view(dwte, {V, C}), view(dwpe, {max_T, C}), view(weights, {B, T, C}), token_view);
  expect_gradient(dwte, initial_dwte, numerical_wte, "dwte");
  expect_gradient(dwpe, initial_dwpe, numerical_wpe, "dwpe");
}

void check_layernorm(std::int64_t rows, std::int64_t C, std::uint64_t seed) {
  Random random(seed);
  std::vector<double> inp = random_values(random, rows * C, 2.0);
  std::vector<double> weight = random_values(random, C), bias = random_values(random, C);
  std::vector<double> out(rows * C), mean(rows), rstd(rows), weights = random_values(random, rows * C);
  auto loss = [&] {
    ops::layernorm_forward(view(out, {rows, C}), view(mean, {rows}), view(rstd, {rows}), view(inp, {rows, C}),
                           view(weight, {C}), view(bias, {C}));
    return weighted_sum(out, weights);
  };
  const std::vector<double> numerical_inp = numerical_gradient(inp, loss);
  const std::vector<double> numerical_weight = numerical_gradient(weight, loss);
  const std::vector<double> numerical_bias = numerical_gradient(bias, loss);
  loss();  // mean and rstd of the unperturbed input, for the backward
  std::vector<double> dinp = random_values(random, rows * C), dweight = random_values(random, C);
  std::vector<double> dbias = random_values(random, C);
  const std::vector<double> initial_dinp = dinp, initial_dweight = dweight, initial_dbias = dbias;
  ops::layernorm_backward(view(dinp, {rows, C}), view(dweight, {C}), view(dbias, {C}), view(weights, {rows, C}),
                          view(inp, {rows, C}), view(weight, {C}), view(mean, {rows}), view(rstd, {rows}));
  expect_gradient(dinp, initial_dinp, numerical_inp, "dinp");
  expect_gradient(dweight, initial_dweight, numerical_weight, "dweight");
  expect_gradient(dbias, initial_dbias, numerical_bias, "dbias");
}

TEST(GradientCheck, LayerNorm) {
  check_layernorm(3, 6, 102);
  check_layernorm(1, 1, 103);  // one channel: the output is the bias, every other gradient is zero
  check_layernorm(5, 13, 104);
}

void check_matmul(std::int64_t N, std::int64_t C, std::int64_t OC, bool with_bias, std::uint64_t seed) {
  Random random(seed);
  std::vector<double> inp = random_values(random, N * C), weight = random_values(random, OC * C);
  std::vector<double> bias = with_bias ? random_values(random, OC) : std::vector<double>{};
  std::vector<double> out(N * OC), weights = random_values(random, N * OC);
  const std::int64_t bias_extent = with_bias ? OC : 0;  // an empty bias means none
  auto loss = [&] {
    ops::matmul_forward(view(out, {N, OC}), view(inp, {N, C}), view(weight, {OC, C}), view(bias, {bias_extent}));
    return weighted_sum(out, weights);
  };
  const std::vector<double> numerical_inp = numerical_gradient(inp, loss);
  const std::vector<double> numerical_weight = numerical_gradient(weight, loss);
  const std::vector<double> numerical_bias = numerical_gradient(bias, loss);
  std::vector<double> dinp = random_values(random, N * C), dweight = random_values(random, OC * C);
  std::vector<double> dbias = with_bias ? random_values(random, OC) : std::vector<double>{};
  const std::vector<double> initial_dinp = dinp, initial_dweight = dweight, initial_dbias = dbias;
  ops::matmul_backward(view(dinp, {N, C}), view(dweight, {OC, C}), view(dbias, {bias_extent}), view(weights, {N, OC}),
                       view(inp, {N, C}), view(weight, {OC, C}));
  expect_gradient(dinp, initial_dinp, numerical_inp, "dinp");
  expect_gradient(dweight, initial_dweight, numerical_weight, "dweight");
  expect_gradient(dbias, initial_dbias, numerical_bias, "dbias");
}

TEST(GradientCheck, Matmul) {
  check_matmul(4, 5, 3, /*with_bias=*/true, 105);
  check_matmul(6, 3, 7, /*with_bias=*/false, 106);
  check_matmul(1, 1, 1, /*with_bias=*/true, 107);
}

TEST(GradientCheck, Gelu) {
  Random random(108);
  const std::int64_t count = 40;
  std::vector<double> inp = random_values(random, count, 3.0);  // reaches the flat tails and the curved middle
  std::vector<double> out(count), weights = random_values(random, count);
  auto loss = [&] {
    ops::gelu_forward(view(out, {count}), view(inp, {count}));
    return weighted_sum(out, weights);
  };
  const std::vector<double> numerical = numerical_gradient(inp, loss);
  std::vector<double> dinp = random_values(random, count);
  const std::vector<double> initial = dinp;
  ops::gelu_backward(view(dinp, {count}), view(inp, {count}), view(weights, {count}));
  expect_gradient(dinp, initial, numerical, "dinp");
}

TEST(GradientCheck, Residual) {
  Random random(109);
  const std::int64_t rows = 3, C = 4;
  std::vector<double> a = random_values(random, rows * C), b = random_values(random, rows * C);
  std::vector<double> out(rows * C), weights = random_values(random, rows * C);
  auto loss = [&] {
    ops::residual_forward(view(out, {rows, C}), view(a, {rows, C}), view(b, {rows, C}));
    return weighted_sum(out, weights);
  };
  const std::vector<double> numerical_a = numerical_gradient(a, loss), numerical_b = numerical_gradient(b, loss);
  std::vector<double> da = random_values(random, rows * C), db = random_values(random, rows * C);
  const std::vector<double> initial_da = da, initial_db = db;
  ops::residual_backward(view(da, {rows, C}), view(db, {rows, C}), view(weights, {rows, C}));
  expect_gradient(da, initial_da, numerical_a, "da");
  expect_gradient(db, initial_db, numerical_b, "db");
}

// The loss backward OVERWRITES (its output may alias the logits): the garbage it starts from must vanish.
TEST(GradientCheck, CrossEntropyIncludingPaddingColumnsAndIgnoredTargets) {
  Random random(110);
  const std::int64_t N = 5, padded = 7, vocab = 5;
  std::vector<double> logits = random_values(random, N * padded, 2.0);
  std::vector<std::int32_t> targets = {2, -1, 0, 4, 1};
  const Tensor target_view(targets.data(), DType::I32, {N});
  std::vector<double> losses(N);
  const double dloss = 0.37;  // the same for every row, as ops.hpp defines it
  auto loss = [&] {
    ops::softmax_cross_entropy_forward(view(losses, {N}), view(logits, {N, padded}), target_view, vocab);
    double sum = 0;
    for (double row_loss : losses) sum += dloss * row_loss;
    return sum;
  };
  const std::vector<double> numerical = numerical_gradient(logits, loss);
  std::vector<double> dlogits(N * padded, 1e3);
  ops::softmax_cross_entropy_backward(view(dlogits, {N, padded}), view(logits, {N, padded}), target_view, vocab, dloss);
  expect_gradient(dlogits, std::vector<double>(N * padded, 0.0), numerical, "dlogits");
  for (std::int64_t n = 0; n < N; ++n) {
    for (std::int64_t v = 0; v < padded; ++v) {
      if (v >= vocab || targets[n] < 0) {
        EXPECT_EQ(dlogits[n * padded + v], 0.0) << "row " << n << ", column " << v << " must be exactly zero";
      }
    }
  }
  EXPECT_EQ(losses[1], 0.0) << "an ignored row has no loss";

  // Writing the gradient over the logits themselves gives the same numbers.
  std::vector<double> in_place = logits;
  ops::softmax_cross_entropy_backward(view(in_place, {N, padded}), view(in_place, {N, padded}), target_view, vocab,
                                      dloss);
  EXPECT_EQ(in_place, dlogits);
}

}  // namespace
}  // namespace ladder
