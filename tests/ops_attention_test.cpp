// Causal self-attention: forward against a naive reference written differently (a full masked score matrix),
// causality itself, and the backward against central finite differences in double precision.
//
// Gradient method and tolerance, as in ops_gradcheck_test.cpp: those of tests/ops_test_support.hpp,
// |analytic - numerical| <= 1e-6 · max(|analytic|, |numerical|) + 1e-8, with step 1e-5.
// Forward tolerance: 1e-12 absolute on values of order 1 (both sides are double; only summation order differs).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
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

constexpr double kForwardTolerance = 1e-12;

// The shapes of one attention call and buffers for its tensors.
struct Attention {
  std::int64_t B, T, C, heads;
  std::vector<double> qkv, out, att;

  Attention(std::int64_t batch, std::int64_t length, std::int64_t channels, std::int64_t head_count, Random& random)
      : B(batch),
        T(length),
        C(channels),
        heads(head_count),
        qkv(random_values(random, B * T * 3 * C)),
        out(B * T * C),
        att(B * heads * T * T) {}

  Tensor qkv_view(std::vector<double>& values) { return Tensor(values.data(), DType::F64, {B, T, 3 * C}); }
  Tensor out_view(std::vector<double>& values) { return Tensor(values.data(), DType::F64, {B, T, C}); }
  Tensor att_view() { return Tensor(att.data(), DType::F64, {B, heads, T, T}); }
  void forward() { ops::attention_forward(out_view(out), att_view(), qkv_view(qkv), static_cast<int>(heads)); }
};

// The textbook form: S = QKᵀ/sqrt(d) with -inf above the diagonal, P = softmax(S) row by row, out = P·V.
void naive_attention(const Attention& a, std::vector<double>& out, std::vector<double>& probabilities) {
  const std::int64_t d = a.C / a.heads;
  out.assign(a.B * a.T * a.C, 0.0);
  probabilities.assign(a.B * a.heads * a.T * a.T, 0.0);
  auto element = [&](std::int64_t b, std::int64_t t, std::int64_t part, std::int64_t h, std::int64_t i) {
    return a.qkv[(b * a.T + t) * 3 * a.C + part * a.C + h * d + i];
  };
  for (std::int64_t b = 0; b < a.B; ++b) {
    for (std::int64_t h = 0; h < a.heads; ++h) {
      std::vector<double> scores(a.T * a.T, -std::numeric_limits<double>::infinity());
      for (std::int64_t t = 0; t < a.T; ++t) {
        for (std::int64_t s = 0; s <= t; ++s) {
          double dot = 0;
          for (std::int64_t i = 0; i < d; ++i) dot += element(b, t, 0, h, i) * element(b, s, 1, h, i);
          scores[t * a.T + s] = dot / std::sqrt(static_cast<double>(d));
        }
      }
      for (std::int64_t t = 0; t < a.T; ++t) {
        double normaliser = 0;
        for (std::int64_t s = 0; s < a.T; ++s) normaliser += std::exp(scores[t * a.T + s]);  // exp(-inf) = 0
        for (std::int64_t s = 0; s < a.T; ++s) {
          const double p = std::exp(scores[t * a.T + s]) / normaliser;
          probabilities[((b * a.heads + h) * a.T + t) * a.T + s] = p;
          for (std::int64_t i = 0; i < d; ++i) out[(b * a.T + t) * a.C + h * d + i] += p * element(b, s, 2, h, i);
        }
      }
    }
  }
}

TEST(Attention, ForwardMatchesTheMaskedSoftmaxFormula) {
  Random random(201);
  for (std::int64_t T : {1, 4, 7}) {
    Attention a(2, T, 8, 2, random);
    a.forward();
    std::vector<double> out, probabilities;
    naive_attention(a, out, probabilities);
    for (std::size_t i = 0; i < out.size(); ++i)
      ASSERT_NEAR(a.out[i], out[i], kForwardTolerance) << "T=" << T << " out " << i;
    for (std::size_t i = 0; i < probabilities.size(); ++i) {
      ASSERT_NEAR(a.att[i], probabilities[i], kForwardTolerance) << "T=" << T << " att " << i;
    }
  }
}

TEST(Attention, AnOutputDoesNotDependOnLaterTokens) {
  Random random(202);
  const std::int64_t T = 6, changed = 3;
  Attention a(1, T, 8, 2, random);
  a.forward();
  const std::vector<double> before = a.out;
  // Perturb q, k and v of position `changed`: outputs before it must not move by a single bit.
  for (std::int64_t i = 0; i < 3 * a.C; ++i) a.qkv[changed * 3 * a.C + i] += 0.5;
  a.forward();
  for (std::int64_t t = 0; t < T; ++t) {
    bool moved = false;
    for (std::int64_t c = 0; c < a.C; ++c) moved = moved || a.out[t * a.C + c] != before[t * a.C + c];
    if (t < changed)
      EXPECT_FALSE(moved) << "output at " << t << " changed when position " << changed << " did";
    else
      EXPECT_TRUE(moved) << "output at " << t << " ignored a change at position " << changed;
  }
}

void check_attention_gradient(std::int64_t B, std::int64_t T, std::int64_t C, std::int64_t heads, std::uint64_t seed) {
  Random random(seed);
  Attention a(B, T, C, heads, random);
  std::vector<double> weights = random_values(random, a.out.size());
  auto loss = [&] {
    a.forward();
    return weighted_sum(a.out, weights);
  };
  const std::vector<double> numerical = numerical_gradient(a.qkv, loss);
  loss();                                                          // att of the unperturbed input, for the backward
  std::vector<double> dqkv = random_values(random, a.qkv.size());  // backward must add to this
  const std::vector<double> initial = dqkv;
  ops::attention_backward(a.qkv_view(dqkv), a.out_view(weights), a.qkv_view(a.qkv), a.att_view(),
                          static_cast<int>(heads));
  expect_gradient(dqkv, initial, numerical,
                  "B=" + std::to_string(B) + " T=" + std::to_string(T) + " C=" + std::to_string(C) +
                      " heads=" + std::to_string(heads) + ": dqkv");
}

TEST(Attention, BackwardMatchesFiniteDifferences) {
  check_attention_gradient(2, 1, 8, 2, 203);  // a single position: softmax of one score is constant
  check_attention_gradient(2, 3, 8, 2, 204);
  check_attention_gradient(1, 5, 8, 4, 205);  // non-power-of-two length, head size 2
  check_attention_gradient(2, 4, 6, 3, 206);
}

}  // namespace
}  // namespace ladder
