// Flash-style causal attention on the CPU against the materialised attention (ops_attention_test.cpp checks that
// one against a textbook formula and finite differences), through the Tensor-level ops.
//
// Tolerances, and why (observed worst cases in brackets):
// - F64 forward: out within 1e-12 absolute (values of order 1; only the summation order differs) [7e-16], lse
//   within 1e-12 of log Σ exp(scaled scores) computed here directly [9e-16].
// - F64 backward: every dqkv entry within 1e-10·max(|flash|, |materialised|) + 1e-12 [6e-13 relative]: the two
//   compute Σ p·dp differently (D = dout·out here), so entries that cancel lose a few digits to rounding.
// - F32 and BF16 against the F64 flash run on the same (already rounded) inputs. F32 arithmetic errs by about
//   1e-7 relative per operation, so 1e-5 on these O(1) values is loose but catches any wrong term [1.3e-6].
//   BF16 rounds each stored output once, by at most 2^-9 relative: out is held to 2^-8·|reference| + 1e-6
//   [0.0019·|reference|]. Backward also reads the rounded out (for D) and rounds dqkv after adding to its start
//   value, so dqkv gets 2e-2·(1 + |reference|) [0.0044·(1 + |reference|)]. lse is fp32 either way (1e-5).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "common/dtype.hpp"
#include "common/ops/ops.hpp"
#include "common/random.hpp"
#include "tests/ops_test_support.hpp"

namespace ladder {
namespace {

using testing_support::random_values;

// One attention problem: the sizes and random F64 inputs (qkv, the upstream gradient dout, a starting dqkv).
struct Problem {
  std::int64_t B, T, C, heads;
  std::vector<double> qkv, dout, initial_dqkv;

  Problem(std::int64_t batch, std::int64_t length, std::int64_t channels, std::int64_t head_count, std::uint64_t seed)
      : B(batch), T(length), C(channels), heads(head_count) {
    Random random(seed);
    qkv = random_values(random, B * T * 3 * C);
    dout = random_values(random, B * T * C);
    initial_dqkv = random_values(random, B * T * 3 * C);  // backward must add to this
  }
  std::string name() const {
    return "B=" + std::to_string(B) + " T=" + std::to_string(T) + " C=" + std::to_string(C) +
           " heads=" + std::to_string(heads);
  }
};

// The shapes the tests run: T not a multiple of any block size, several head sizes (2 to 32), one head and many.
const std::vector<Problem>& problems() {
  static const std::vector<Problem> all = {
      {2, 7, 12, 3, 301}, {1, 33, 32, 2, 302}, {2, 1, 8, 2, 303}, {1, 70, 16, 1, 304}, {3, 17, 24, 4, 305},
  };
  return all;
}

// Results of one flash forward and backward in storage type S, converted back to double.
struct FlashResult {
  std::vector<double> out, lse, dqkv;
};

// The inputs rounded to storage type S and back: what an S run actually computes on.
std::vector<double> rounded(const std::vector<double>& values, DType dtype) {
  std::vector<double> result(values.size());
  std::vector<double> storage(values.size());  // 8 bytes per element holds any dtype
  const auto count = static_cast<std::int64_t>(values.size());
  Tensor source(const_cast<double*>(values.data()), DType::F64, {count});
  Tensor narrow(storage.data(), dtype, {count});
  ops::convert(narrow, source);
  ops::convert(Tensor(result.data(), DType::F64, {count}), narrow);
  return result;
}

// Runs ops::flash_attention_forward and _backward with tensors of `dtype` (lse in its compute type).
FlashResult run_flash(const Problem& p, DType dtype) {
  const std::int64_t qkv_count = p.B * p.T * 3 * p.C, out_count = p.B * p.T * p.C, lse_count = p.B * p.heads * p.T;
  const DType lse_dtype = dtype == DType::F64 ? DType::F64 : DType::F32;
  // Storage of 8 bytes per element fits every dtype; the tensors view it with their own element size.
  std::vector<double> qkv(qkv_count), dout(out_count), out(out_count), lse(lse_count), dqkv(qkv_count);
  auto view = [&](std::vector<double>& storage, DType type, std::initializer_list<std::int64_t> shape) {
    return Tensor(storage.data(), type, shape);
  };
  auto from_double = [&](const std::vector<double>& values, Tensor destination) {
    ops::convert(destination, Tensor(const_cast<double*>(values.data()), DType::F64, {destination.numel()}));
  };
  const Tensor qkv_tensor = view(qkv, dtype, {p.B, p.T, 3 * p.C});
  const Tensor dout_tensor = view(dout, dtype, {p.B, p.T, p.C});
  const Tensor out_tensor = view(out, dtype, {p.B, p.T, p.C});
  const Tensor lse_tensor = view(lse, lse_dtype, {p.B, p.heads, p.T});
  const Tensor dqkv_tensor = view(dqkv, dtype, {p.B, p.T, 3 * p.C});
  from_double(p.qkv, qkv_tensor);
  from_double(p.dout, dout_tensor);
  from_double(p.initial_dqkv, dqkv_tensor);
  ops::flash_attention_forward(out_tensor, lse_tensor, qkv_tensor, static_cast<int>(p.heads));
  ops::flash_attention_backward(dqkv_tensor, dout_tensor, qkv_tensor, out_tensor, lse_tensor,
                                static_cast<int>(p.heads));

  auto to_double = [](Tensor source) {
    std::vector<double> values(source.numel());
    ops::convert(Tensor(values.data(), DType::F64, {source.numel()}), source.reshaped({source.numel()}));
    return values;
  };
  return {to_double(out_tensor), to_double(lse_tensor), to_double(dqkv_tensor)};
}

// log Σ_{s<=t} exp(q_t·k_s / sqrt(d)) of every (b, h, t), straight from the definition (with the max shifted
// out for range).
std::vector<double> reference_lse(const Problem& p) {
  const std::int64_t d = p.C / p.heads;
  std::vector<double> lse(p.B * p.heads * p.T);
  for (std::int64_t b = 0; b < p.B; ++b) {
    for (std::int64_t h = 0; h < p.heads; ++h) {
      for (std::int64_t t = 0; t < p.T; ++t) {
        std::vector<double> scores(t + 1);
        for (std::int64_t s = 0; s <= t; ++s) {
          double dot = 0;
          for (std::int64_t i = 0; i < d; ++i) {
            dot += p.qkv[(b * p.T + t) * 3 * p.C + h * d + i] * p.qkv[(b * p.T + s) * 3 * p.C + p.C + h * d + i];
          }
          scores[s] = dot / std::sqrt(static_cast<double>(d));
        }
        const double max_score = *std::max_element(scores.begin(), scores.end());
        double sum = 0;
        for (double score : scores) sum += std::exp(score - max_score);
        lse[(b * p.heads + h) * p.T + t] = max_score + std::log(sum);
      }
    }
  }
  return lse;
}

// Expects |actual - expected| <= absolute + relative·|expected| everywhere; reports the first five misses.
void expect_close(const std::vector<double>& actual, const std::vector<double>& expected, double absolute,
                  double relative, const std::string& name) {
  ASSERT_EQ(actual.size(), expected.size()) << name;
  int misses = 0;
  for (std::size_t i = 0; i < actual.size(); ++i) {
    const double tolerance = absolute + relative * std::fabs(expected[i]);
    if (!(std::fabs(actual[i] - expected[i]) <= tolerance) && ++misses <= 5) {
      ADD_FAILURE() << name << "[" << i << "]: " << actual[i] << ", expected " << expected[i];
    }
  }
  EXPECT_EQ(misses, 0) << name;
}

TEST(FlashAttention, ForwardMatchesTheMaterialisedAttentionAndLogSumExp) {
  for (const Problem& p : problems()) {
    std::vector<double> qkv = p.qkv, out(p.B * p.T * p.C), att(p.B * p.heads * p.T * p.T);
    ops::attention_forward(Tensor(out.data(), DType::F64, {p.B, p.T, p.C}),
                           Tensor(att.data(), DType::F64, {p.B, p.heads, p.T, p.T}),
                           Tensor(qkv.data(), DType::F64, {p.B, p.T, 3 * p.C}), static_cast<int>(p.heads));
    const FlashResult flash = run_flash(p, DType::F64);
    expect_close(flash.out, out, 1e-12, 0.0, p.name() + ": out");
    expect_close(flash.lse, reference_lse(p), 1e-12, 0.0, p.name() + ": lse");
  }
}

TEST(FlashAttention, BackwardMatchesTheMaterialisedAttention) {
  for (const Problem& p : problems()) {
    std::vector<double> qkv = p.qkv, dout = p.dout, dqkv = p.initial_dqkv;
    std::vector<double> out(p.B * p.T * p.C), att(p.B * p.heads * p.T * p.T);
    const Tensor qkv_tensor(qkv.data(), DType::F64, {p.B, p.T, 3 * p.C});
    const Tensor att_tensor(att.data(), DType::F64, {p.B, p.heads, p.T, p.T});
    ops::attention_forward(Tensor(out.data(), DType::F64, {p.B, p.T, p.C}), att_tensor, qkv_tensor,
                           static_cast<int>(p.heads));
    ops::attention_backward(Tensor(dqkv.data(), DType::F64, {p.B, p.T, 3 * p.C}),
                            Tensor(dout.data(), DType::F64, {p.B, p.T, p.C}), qkv_tensor, att_tensor,
                            static_cast<int>(p.heads));
    const FlashResult flash = run_flash(p, DType::F64);
    ASSERT_EQ(flash.dqkv.size(), dqkv.size());
    int misses = 0;
    for (std::size_t i = 0; i < dqkv.size(); ++i) {
      const double tolerance = 1e-10 * std::max(std::fabs(flash.dqkv[i]), std::fabs(dqkv[i])) + 1e-12;
      if (!(std::fabs(flash.dqkv[i] - dqkv[i]) <= tolerance) && ++misses <= 5) {
        ADD_FAILURE() << p.name() << ": dqkv[" << i << "] flash " << flash.dqkv[i] << ", materialised " << dqkv[i];
      }
    }
    EXPECT_EQ(misses, 0) << p.name();
  }
}

// A reduced-precision run against F64 on the same rounded inputs, within the tolerances of the file comment.
void check_precision(DType dtype, double out_absolute, double out_relative, double gradient_tolerance) {
  for (const Problem& original : problems()) {
    Problem p = original;
    p.qkv = rounded(p.qkv, dtype);
    p.dout = rounded(p.dout, dtype);
    p.initial_dqkv = rounded(p.initial_dqkv, dtype);
    const FlashResult reference = run_flash(p, DType::F64);
    const FlashResult result = run_flash(p, dtype);
    const std::string name = std::string(dtype_name(dtype)) + " " + p.name();
    expect_close(result.out, reference.out, out_absolute, out_relative, name + ": out");
    expect_close(result.lse, reference.lse, 1e-5, 1e-6, name + ": lse");
    expect_close(result.dqkv, reference.dqkv, gradient_tolerance, gradient_tolerance, name + ": dqkv");
  }
}

TEST(FlashAttention, Float32MatchesFloat64) { check_precision(DType::F32, 1e-5, 0.0, 1e-5); }

TEST(FlashAttention, BFloat16MatchesFloat64WithinItsRounding) {
  check_precision(DType::BF16, 1e-6, std::ldexp(1.0, -8), 2e-2);
}

}  // namespace
}  // namespace ladder
