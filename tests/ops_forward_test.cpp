// Forward values of the ops against naive references written differently: a triple loop for the matmul, the
// textbook formulas for LayerNorm and cross-entropy, hand-computed values for GELU and the conversions.
// Tolerances: 1e-12 absolute where both sides are double and only the summation order differs; 1e-5 relative
// for the F32 matmul against the double triple loop (fp32 has a 6e-8 unit roundoff and sums of ~10 terms).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "common/ops/ops.hpp"
#include "common/random.hpp"
#include "tests/ops_test_support.hpp"

namespace ladder {
namespace {

using testing_support::random_values;

constexpr double kDoubleTolerance = 1e-12;

TEST(ForwardReference, MatmulIsTheTripleLoopInF64AndF32) {
  Random random(301);
  const std::int64_t B = 2, T = 3, C = 5, OC = 4, N = B * T;
  std::vector<double> inp = random_values(random, N * C), weight = random_values(random, OC * C);
  std::vector<double> bias = random_values(random, OC);
  std::vector<double> expected(N * OC);
  for (std::int64_t n = 0; n < N; ++n) {
    for (std::int64_t o = 0; o < OC; ++o) {
      double sum = bias[o];
      for (std::int64_t c = 0; c < C; ++c) sum += inp[n * C + c] * weight[o * C + c];
      expected[n * OC + o] = sum;
    }
  }
  // inp and out given as (B,T,·): the leading dimensions are flattened into rows.
  std::vector<double> out(N * OC);
  ops::matmul_forward(Tensor(out.data(), DType::F64, {B, T, OC}), Tensor(inp.data(), DType::F64, {B, T, C}),
                      Tensor(weight.data(), DType::F64, {OC, C}), Tensor(bias.data(), DType::F64, {OC}));
  for (std::int64_t i = 0; i < N * OC; ++i) EXPECT_NEAR(out[i], expected[i], kDoubleTolerance) << i;

  std::vector<float> inp32(inp.begin(), inp.end()), weight32(weight.begin(), weight.end());
  std::vector<float> bias32(bias.begin(), bias.end()), out32(N * OC);
  ops::matmul_forward(Tensor(out32.data(), DType::F32, {N, OC}), Tensor(inp32.data(), DType::F32, {N, C}),
                      Tensor(weight32.data(), DType::F32, {OC, C}), Tensor(bias32.data(), DType::F32, {OC}));
  for (std::int64_t i = 0; i < N * OC; ++i)
    EXPECT_NEAR(out32[i], expected[i], 1e-5 * (1 + std::fabs(expected[i]))) << i;

  // Without a bias the product alone remains.
  ops::matmul_forward(Tensor(out.data(), DType::F64, {N, OC}), Tensor(inp.data(), DType::F64, {N, C}),
                      Tensor(weight.data(), DType::F64, {OC, C}), Tensor(nullptr, DType::F64, {0}));
  for (std::int64_t i = 0; i < N * OC; ++i) EXPECT_NEAR(out[i], expected[i] - bias[i % OC], kDoubleTolerance) << i;
}

TEST(ForwardReference, LayerNormIsTheFormula) {
  Random random(302);
  const std::int64_t N = 4, C = 7;
  std::vector<double> inp = random_values(random, N * C, 3.0), weight = random_values(random, C);
  std::vector<double> bias = random_values(random, C), out(N * C), mean(N), rstd(N);
  for (std::int64_t c = 0; c < C; ++c) inp[c] += 100.0;  // an offset row: the mean must come out first
  ops::layernorm_forward(Tensor(out.data(), DType::F64, {N, C}), Tensor(mean.data(), DType::F64, {N}),
                         Tensor(rstd.data(), DType::F64, {N}), Tensor(inp.data(), DType::F64, {N, C}),
                         Tensor(weight.data(), DType::F64, {C}), Tensor(bias.data(), DType::F64, {C}));
  for (std::int64_t n = 0; n < N; ++n) {
    double row_mean = 0;
    for (std::int64_t c = 0; c < C; ++c) row_mean += inp[n * C + c] / C;
    double variance = 0;  // biased (divide by C), as PyTorch's LayerNorm
    for (std::int64_t c = 0; c < C; ++c) variance += (inp[n * C + c] - row_mean) * (inp[n * C + c] - row_mean) / C;
    EXPECT_NEAR(mean[n], row_mean, 1e-12 * (1 + std::fabs(row_mean)));
    EXPECT_NEAR(rstd[n], 1 / std::sqrt(variance + 1e-5), kDoubleTolerance);
    for (std::int64_t c = 0; c < C; ++c) {
      const double expected = (inp[n * C + c] - row_mean) / std::sqrt(variance + 1e-5) * weight[c] + bias[c];
      EXPECT_NEAR(out[n * C + c], expected, kDoubleTolerance) << "row " << n << " channel " << c;
    }
  }
}

TEST(ForwardReference, CrossEntropyIsMinusLogSoftmaxOverTheRealVocabulary) {
  Random random(303);
  const std::int64_t N = 4, padded = 6, vocab = 4;
  std::vector<double> logits = random_values(random, N * padded);
  for (std::int64_t n = 0; n < N; ++n) {
    for (std::int64_t v = vocab; v < padded; ++v) logits[n * padded + v] = 50.0;  // would dominate if counted
  }
  std::vector<std::int32_t> targets = {3, 0, -1, 1};
  std::vector<double> losses(N, -1.0);
  ops::softmax_cross_entropy_forward(Tensor(losses.data(), DType::F64, {N}),
                                     Tensor(logits.data(), DType::F64, {N, padded}),
                                     Tensor(targets.data(), DType::I32, {N}), vocab);
  for (std::int64_t n = 0; n < N; ++n) {
    if (targets[n] < 0) {
      EXPECT_EQ(losses[n], 0.0) << "ignored row " << n;
      continue;
    }
    double normaliser = 0;
    for (std::int64_t v = 0; v < vocab; ++v) normaliser += std::exp(logits[n * padded + v]);
    const double expected = -std::log(std::exp(logits[n * padded + targets[n]]) / normaliser);
    EXPECT_NEAR(losses[n], expected, kDoubleTolerance) << "row " << n;
  }

  // Large logits must not overflow: loss of [1000, 1001, 1002] at target 0 is log(1 + e + e²) = 2.40760596444438.
  std::vector<float> large = {1000.0f, 1001.0f, 1002.0f};
  std::vector<float> large_loss(1);
  std::vector<std::int32_t> first = {0};
  ops::softmax_cross_entropy_forward(Tensor(large_loss.data(), DType::F32, {1}),
                                     Tensor(large.data(), DType::F32, {1, 3}), Tensor(first.data(), DType::I32, {1}),
                                     3);
  EXPECT_NEAR(large_loss[0], 2.40760596444438, 1e-5);
}

TEST(ForwardReference, EmbeddingAddsTheTokenAndPositionRows) {
  Random random(304);
  const std::int64_t B = 2, T = 3, C = 4, V = 6, max_T = 5;
  std::vector<double> wte = random_values(random, V * C), wpe = random_values(random, max_T * C), out(B * T * C);
  std::vector<std::int32_t> tokens = {5, 0, 5, 2, 3, 1};
  ops::embedding_forward(Tensor(out.data(), DType::F64, {B, T, C}), Tensor(tokens.data(), DType::I32, {B, T}),
                         Tensor(wte.data(), DType::F64, {V, C}), Tensor(wpe.data(), DType::F64, {max_T, C}));
  for (std::int64_t b = 0; b < B; ++b) {
    for (std::int64_t t = 0; t < T; ++t) {
      for (std::int64_t c = 0; c < C; ++c) {
        EXPECT_EQ(out[(b * T + t) * C + c], wte[tokens[b * T + t] * C + c] + wpe[t * C + c]);
      }
    }
  }
}

TEST(ForwardReference, GeluMatchesHandComputedValuesAndIsCloseToTheErfForm) {
  // 0.5·x·(1 + tanh(sqrt(2/π)·(x + 0.044715·x³))) evaluated in Python's double precision.
  std::vector<double> inp = {-3.0, -1.0, 0.0, 0.5, 1.0, 2.0};
  const std::vector<double> expected = {-0.0036373920817729943, -0.15880800939172324, 0.0,
                                        0.34571400982514394,    0.8411919906082768,   1.954597694087775};
  std::vector<double> out(inp.size());
  const auto count = static_cast<std::int64_t>(inp.size());
  ops::gelu_forward(Tensor(out.data(), DType::F64, {count}), Tensor(inp.data(), DType::F64, {count}));
  for (std::size_t i = 0; i < inp.size(); ++i) EXPECT_NEAR(out[i], expected[i], 1e-14) << "x = " << inp[i];

  // The tanh form approximates x·Φ(x) to within 5e-4 everywhere on [-6, 6].
  std::vector<double> grid(1201), grid_out(1201);
  for (std::size_t i = 0; i < grid.size(); ++i) grid[i] = -6.0 + 0.01 * static_cast<double>(i);
  ops::gelu_forward(Tensor(grid_out.data(), DType::F64, {1201}), Tensor(grid.data(), DType::F64, {1201}));
  for (std::size_t i = 0; i < grid.size(); ++i) {
    EXPECT_NEAR(grid_out[i], 0.5 * grid[i] * (1 + std::erf(grid[i] / std::sqrt(2.0))), 5e-4) << "x = " << grid[i];
  }
}

TEST(ForwardReference, ResidualScaleAccumulateAndSumOfSquares) {
  std::vector<double> a = {1.0, -2.0, 3.5}, b = {0.25, 4.0, -3.5}, out(3);
  ops::residual_forward(Tensor(out.data(), DType::F64, {3}), Tensor(a.data(), DType::F64, {3}),
                        Tensor(b.data(), DType::F64, {3}));
  EXPECT_EQ(out, (std::vector<double>{1.25, 2.0, 0.0}));
  ops::scale(Tensor(out.data(), DType::F64, {3}), -2.0);
  EXPECT_EQ(out, (std::vector<double>{-2.5, -4.0, 0.0}));
  EXPECT_EQ(ops::sum_of_squares(Tensor(out.data(), DType::F64, {3})), 6.25 + 16.0);

  // accumulate may mix dtypes: fp16 gradients into fp32 ones.
  std::vector<float> destination = {1.0f, 2.0f};
  std::vector<Half> source = {Half(0.5f), Half(-3.0f)};
  ops::accumulate(Tensor(destination.data(), DType::F32, {2}), Tensor(source.data(), DType::F16, {2}));
  EXPECT_EQ(destination, (std::vector<float>{1.5f, -1.0f}));
  EXPECT_EQ(ops::sum_of_squares(Tensor(source.data(), DType::F16, {2})), 9.25);
}

// all_finite, the loss scaler's overflow check, against std::isfinite element by element: a tensor large enough
// to be split over the threads, with one inf, -inf, NaN or the largest finite value at the first element, at a
// chunk boundary, in the middle and at the last element, in every float storage type.
template <class S>
void check_all_finite(DType dtype) {
  const std::int64_t count = 200003;
  std::vector<S> values(static_cast<std::size_t>(count));
  for (std::int64_t i = 0; i < count; ++i) {
    values[static_cast<std::size_t>(i)] = S(0.001f * static_cast<float>(i % 997 - 498));
  }
  Tensor tensor(values.data(), dtype, {count});
  EXPECT_TRUE(ops::all_finite(tensor)) << dtype_name(dtype);
  const float specials[] = {std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                            std::numeric_limits<float>::quiet_NaN(), 60000.0f};
  for (const float special : specials) {
    for (const std::int64_t where : {std::int64_t{0}, std::int64_t{1024}, count / 2, count - 1}) {
      S& element = values[static_cast<std::size_t>(where)];
      const S before = element;
      element = S(special);
      const bool expected = std::isfinite(static_cast<double>(static_cast<float>(element)));
      EXPECT_EQ(ops::all_finite(tensor), expected) << dtype_name(dtype) << ": " << special << " at " << where;
      element = before;
    }
  }
}

TEST(ForwardReference, AllFiniteFindsEveryInfAndNaNInEveryType) {
  check_all_finite<float>(DType::F32);
  check_all_finite<double>(DType::F64);
  check_all_finite<Half>(DType::F16);
  check_all_finite<BFloat16>(DType::BF16);
}

TEST(ForwardReference, ConvertRoundsOnceEvenFromDouble) {
  // 1 + 2^-11 is the midpoint between the halves 1 and 1 + 2^-10; a double a hair above it must round up.
  // Via the nearest float (which is the midpoint itself) it would tie to even and wrongly give 1.
  std::vector<double> source = {1.0 + std::ldexp(1.0, -11) + std::ldexp(1.0, -40), 1.0 + std::ldexp(1.0, -11), -0.1};
  std::vector<Half> halves(3);
  ops::convert(Tensor(halves.data(), DType::F16, {3}), Tensor(source.data(), DType::F64, {3}));
  EXPECT_EQ(halves[0].bits, 0x3C01u);
  EXPECT_EQ(halves[1].bits, 0x3C00u);  // the exact tie goes to the even pattern
  EXPECT_EQ(halves[2].bits, float_to_half_bits(-0.1f));
  // The same for bf16, whose midpoint above 1 is 1 + 2^-8.
  std::vector<double> bf16_source = {1.0 + std::ldexp(1.0, -8) + std::ldexp(1.0, -30)};
  std::vector<BFloat16> bf16(1);
  ops::convert(Tensor(bf16.data(), DType::BF16, {1}), Tensor(bf16_source.data(), DType::F64, {1}));
  EXPECT_EQ(bf16[0].bits, 0x3F81u);
  // Widening is exact.
  std::vector<float> widened(3);
  ops::convert(Tensor(widened.data(), DType::F32, {3}), Tensor(halves.data(), DType::F16, {3}));
  EXPECT_EQ(widened[0], 1.0f + std::ldexp(1.0f, -10));
}

}  // namespace
}  // namespace ladder
