// adamw_update against torch.optim.AdamW written out longhand in double, one scalar at a time.
// Tolerances: F64 storage agrees with the longhand to 1e-14 relative (same formula, same order); F32 to 1e-6
// relative (a few fp32 roundings of 6e-8 each); fp16 moments and parameters to one fp16 unit in the last place
// (the one rounding on store may fall either way of a tie that the double reference resolves differently).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "common/dtype.hpp"
#include "common/error.hpp"
#include "common/ops/ops.hpp"
#include "tests/test_support.hpp"

namespace ladder {
namespace {

// PyTorch's _single_tensor_adamw for one scalar (amsgrad and maximize off), in double.
void longhand_step(double& p, double& m, double& v, double grad, const ops::AdamWStep& hyper) {
  const double g = grad * hyper.gradient_scale;
  p = p * (1 - hyper.learning_rate * hyper.weight_decay);  // param.mul_(1 - lr * weight_decay)
  m = hyper.beta1 * m + (1 - hyper.beta1) * g;
  v = hyper.beta2 * v + (1 - hyper.beta2) * g * g;
  const double bias_correction1 = 1 - std::pow(hyper.beta1, static_cast<double>(hyper.step));
  const double bias_correction2 = 1 - std::pow(hyper.beta2, static_cast<double>(hyper.step));
  const double step_size = hyper.learning_rate / bias_correction1;
  const double denominator = std::sqrt(v) / std::sqrt(bias_correction2) + hyper.epsilon;
  p = p + (-step_size) * (m / denominator);  // param.addcdiv_(exp_avg, denom, value=-step_size)
}

ops::AdamWStep hyper_parameters(std::int64_t step) {
  ops::AdamWStep hyper;
  hyper.learning_rate = 1e-2;
  hyper.beta1 = 0.9;
  hyper.beta2 = 0.95;
  hyper.epsilon = 1e-8;
  hyper.weight_decay = 0.1;
  hyper.step = step;
  return hyper;
}

const std::vector<double> kInitialParams = {0.5, -1.25, 2.0, 0.0, -0.03};
// Gradients of steps 1, 2, 3: signs flip, one entry stays zero, magnitudes differ by 100x.
const std::vector<std::vector<double>> kGradients = {
    {0.1, -0.2, 0.0, 1.5, -0.001}, {0.3, 0.2, 0.0, -0.5, 0.002}, {-0.2, 0.05, 0.0, 0.25, 0.004}};

template <class Storage>
void check_against_longhand(DType dtype, double relative_tolerance) {
  const auto count = static_cast<std::int64_t>(kInitialParams.size());
  std::vector<Storage> params(kInitialParams.begin(), kInitialParams.end()), grads(count);
  std::vector<Storage> m(count, Storage(0)), v(count, Storage(0));
  std::vector<double> expected_p = kInitialParams, expected_m(count, 0.0), expected_v(count, 0.0);
  for (std::int64_t step = 1; step <= 3; ++step) {
    const ops::AdamWStep hyper = hyper_parameters(step);
    for (std::int64_t i = 0; i < count; ++i) {
      grads[i] = static_cast<Storage>(kGradients[step - 1][i]);
      longhand_step(expected_p[i], expected_m[i], expected_v[i], static_cast<double>(grads[i]), hyper);
    }
    ops::adamw_update(Tensor(params.data(), dtype, {count}), Tensor(grads.data(), dtype, {count}),
                      Tensor(m.data(), dtype, {count}), Tensor(v.data(), dtype, {count}), hyper);
    for (std::int64_t i = 0; i < count; ++i) {
      auto near = [&](double ours, double expected) {
        return std::fabs(ours - expected) <= relative_tolerance * std::fabs(expected) + 1e-30;
      };
      EXPECT_TRUE(near(params[i], expected_p[i]))
          << "step " << step << " p[" << i << "] " << params[i] << " vs " << expected_p[i];
      EXPECT_TRUE(near(m[i], expected_m[i]))
          << "step " << step << " m[" << i << "] " << m[i] << " vs " << expected_m[i];
      EXPECT_TRUE(near(v[i], expected_v[i]))
          << "step " << step << " v[" << i << "] " << v[i] << " vs " << expected_v[i];
    }
  }
}

TEST(AdamW, MatchesTheLonghandPyTorchFormulaForThreeSteps) {
  check_against_longhand<double>(DType::F64, 1e-14);
  check_against_longhand<float>(DType::F32, 1e-6);
}

TEST(AdamW, ZeroWeightDecayLeavesTheDecoupledDecayOut) {
  // With zero gradients the moments stay zero and the Adam step is exactly 0: only the decay can move p.
  for (double weight_decay : {0.0, 0.1}) {
    std::vector<double> params = {3.0, -7.0}, grads = {0.0, 0.0}, m = {0.0, 0.0}, v = {0.0, 0.0};
    std::vector<double> expected = params;
    for (std::int64_t step = 1; step <= 3; ++step) {
      ops::AdamWStep hyper = hyper_parameters(step);
      hyper.weight_decay = weight_decay;
      ops::adamw_update(Tensor(params.data(), DType::F64, {2}), Tensor(grads.data(), DType::F64, {2}),
                        Tensor(m.data(), DType::F64, {2}), Tensor(v.data(), DType::F64, {2}), hyper);
      for (double& p : expected) p *= 1 - hyper.learning_rate * weight_decay;
    }
    EXPECT_EQ(params, expected) << "weight decay " << weight_decay;
  }
}

TEST(AdamW, GradientScaleMultipliesEachGradientFirst) {
  const std::int64_t count = 5;
  std::vector<double> scaled_inside = kInitialParams, scaled_outside = kInitialParams, reference = kInitialParams;
  std::vector<double> m1(count), v1(count), m2(count), v2(count), m3(count), v3(count);
  for (std::int64_t step = 1; step <= 3; ++step) {
    std::vector<double> grads = kGradients[step - 1], pre_scaled(count);
    for (std::int64_t i = 0; i < count; ++i) pre_scaled[i] = 0.25 * grads[i];  // exact: a power of two
    ops::AdamWStep hyper = hyper_parameters(step);
    hyper.gradient_scale = 0.25;
    ops::adamw_update(Tensor(scaled_inside.data(), DType::F64, {count}), Tensor(grads.data(), DType::F64, {count}),
                      Tensor(m1.data(), DType::F64, {count}), Tensor(v1.data(), DType::F64, {count}), hyper);
    for (std::int64_t i = 0; i < count; ++i) longhand_step(reference[i], m3[i], v3[i], grads[i], hyper);
    hyper.gradient_scale = 1.0;
    ops::adamw_update(Tensor(scaled_outside.data(), DType::F64, {count}),
                      Tensor(pre_scaled.data(), DType::F64, {count}), Tensor(m2.data(), DType::F64, {count}),
                      Tensor(v2.data(), DType::F64, {count}), hyper);
  }
  EXPECT_EQ(scaled_inside, scaled_outside);
  EXPECT_EQ(m1, m2);
  EXPECT_EQ(v1, v2);
  for (std::int64_t i = 0; i < count; ++i) EXPECT_NEAR(scaled_inside[i], reference[i], 1e-14) << i;
}

// One unit in the last place of the fp16 value nearest `value`.
double half_ulp(double value) {
  if (value == 0) return std::ldexp(1.0, -24);
  int exponent;
  std::frexp(std::fabs(value), &exponent);  // |value| = f·2^exponent with f in [0.5, 1)
  return std::max(std::ldexp(1.0, exponent - 11), std::ldexp(1.0, -24));
}

// Stage 02 keeps parameters, gradients and both moments in fp16; stage 03 mixes dtypes. Each step is checked
// from the state the op left, so a tie resolved differently in one step cannot snowball.
TEST(AdamW, EachOfParamsAndMomentsIsRoundedIntoItsOwnDtype) {
  const std::int64_t count = 5;
  std::vector<Half> half_params(count), half_grads(count), half_m(count), half_v(count);
  std::vector<float> float_params(count), float_v(count);
  std::vector<BFloat16> bf16_grads(count);
  std::vector<Half> mixed_m(count);
  for (std::int64_t i = 0; i < count; ++i) {
    half_params[i] = Half(static_cast<float>(kInitialParams[i]));
    float_params[i] = static_cast<float>(kInitialParams[i]);
  }
  for (std::int64_t step = 1; step <= 3; ++step) {
    const ops::AdamWStep hyper = hyper_parameters(step);
    std::vector<double> p_all(count), m_all(count), v_all(count), p_mixed(count), m_mixed(count), v_mixed(count);
    for (std::int64_t i = 0; i < count; ++i) {
      half_grads[i] = Half(static_cast<float>(kGradients[step - 1][i]));
      bf16_grads[i] = BFloat16(static_cast<float>(kGradients[step - 1][i]));
      p_all[i] = static_cast<float>(half_params[i]);
      m_all[i] = static_cast<float>(half_m[i]);
      v_all[i] = static_cast<float>(half_v[i]);
      longhand_step(p_all[i], m_all[i], v_all[i], static_cast<float>(half_grads[i]), hyper);
      p_mixed[i] = float_params[i];
      m_mixed[i] = static_cast<float>(mixed_m[i]);
      v_mixed[i] = float_v[i];
      longhand_step(p_mixed[i], m_mixed[i], v_mixed[i], static_cast<float>(bf16_grads[i]), hyper);
    }
    ops::adamw_update(Tensor(half_params.data(), DType::F16, {count}), Tensor(half_grads.data(), DType::F16, {count}),
                      Tensor(half_m.data(), DType::F16, {count}), Tensor(half_v.data(), DType::F16, {count}), hyper);
    ops::adamw_update(Tensor(float_params.data(), DType::F32, {count}), Tensor(bf16_grads.data(), DType::BF16, {count}),
                      Tensor(mixed_m.data(), DType::F16, {count}), Tensor(float_v.data(), DType::F32, {count}), hyper);
    for (std::int64_t i = 0; i < count; ++i) {
      EXPECT_LE(std::fabs(static_cast<float>(half_params[i]) - p_all[i]), half_ulp(p_all[i]))
          << "step " << step << " p " << i;
      EXPECT_LE(std::fabs(static_cast<float>(half_m[i]) - m_all[i]), half_ulp(m_all[i]))
          << "step " << step << " m " << i;
      EXPECT_LE(std::fabs(static_cast<float>(half_v[i]) - v_all[i]), half_ulp(v_all[i]))
          << "step " << step << " v " << i;
      EXPECT_NEAR(float_params[i], p_mixed[i], 1e-6 * (1 + std::fabs(p_mixed[i]))) << "step " << step << " p " << i;
      EXPECT_LE(std::fabs(static_cast<float>(mixed_m[i]) - m_mixed[i]), half_ulp(m_mixed[i]))
          << "step " << step << " m " << i;
      EXPECT_NEAR(float_v[i], v_mixed[i], 1e-6 * std::fabs(v_mixed[i]) + 1e-30) << "step " << step << " v " << i;
    }
  }
}

// The master -> working copy made inside the update (stages 03-06 and 10) against the separate convert() the
// stages made before: the same bits in fp16 and bf16, over several threads' chunks and a ragged tail, with
// values spread over many binades (ties, subnormal results, overflow to inf among them).
template <class Working>
void check_rounded_copy_equals_convert(DType working_dtype) {
  const std::int64_t count = 3 * 1024 + 517;
  std::vector<float> fused(count), separate(count), grads(count), m_fused(count, 0.0f), v_fused(count, 0.0f);
  for (std::int64_t i = 0; i < count; ++i) {
    // A deterministic spread: magnitudes from 2^-30 to 2^20 with varying mantissas and both signs.
    const double mantissa = 1.0 + std::fmod(i * 0.618033988749895, 1.0);
    fused[i] = static_cast<float>((i % 2 ? -1 : 1) * std::ldexp(mantissa, static_cast<int>(i % 51) - 30));
    grads[i] = static_cast<float>(std::sin(0.37 * i));
  }
  separate = fused;
  std::vector<float> m_separate = m_fused, v_separate = v_fused;
  std::vector<Working> copy(count), expected(count);
  const auto f32 = [&](std::vector<float>& values) { return Tensor(values.data(), DType::F32, {count}); };
  for (std::int64_t step = 1; step <= 2; ++step) {
    const ops::AdamWStep hyper = hyper_parameters(step);
    ops::adamw_update(f32(fused), f32(grads), f32(m_fused), f32(v_fused), hyper,
                      Tensor(copy.data(), working_dtype, {count}));
    ops::adamw_update(f32(separate), f32(grads), f32(m_separate), f32(v_separate), hyper);
    ops::convert(Tensor(expected.data(), working_dtype, {count}), f32(separate));
    for (std::int64_t i = 0; i < count; ++i) {
      ASSERT_EQ(fused[i], separate[i]) << "step " << step << " parameter " << i;
      ASSERT_EQ(copy[i].bits, expected[i].bits) << "step " << step << " copy of " << separate[i] << " at " << i;
    }
  }
}

TEST(AdamW, RoundedCopyIsTheConvertedUpdateInHalf) { check_rounded_copy_equals_convert<Half>(DType::F16); }

TEST(AdamW, RoundedCopyIsTheConvertedUpdateInBFloat16) { check_rounded_copy_equals_convert<BFloat16>(DType::BF16); }

// Four fp32 spans of `count` elements in arrays of their own, for the argument checks (nothing is computed when
// a check fails, so their values do not matter).
struct SeparateSpans {
  explicit SeparateSpans(std::int64_t count) : storage(4, std::vector<float>(static_cast<std::size_t>(count))) {}
  Tensor span(int which) {
    return Tensor(storage[which].data(), DType::F32, {static_cast<std::int64_t>(storage[which].size())});
  }
  std::vector<std::vector<float>> storage;
};

using testing_support::expect_error_mentioning;

TEST(AdamW, RoundedCopyNeedsFp32ParamsAndAMatchingSpan) {
  SeparateSpans spans(3);
  std::vector<Half> half_three(3), half_two(2);
  const Tensor params = spans.span(0), grads = spans.span(1), m = spans.span(2), v = spans.span(3);
  const Tensor half_span(half_three.data(), DType::F16, {3});
  const ops::AdamWStep hyper = hyper_parameters(1);
  // From fp16 params the copy would round twice (once into the params, once more into the copy).
  std::vector<Half> half_params(3);
  expect_error_mentioning(
      [&] { ops::adamw_update(Tensor(half_params.data(), DType::F16, {3}), grads, m, v, hyper, half_span); },
      {"made from F32 params"});
  expect_error_mentioning(
      [&] { ops::adamw_update(params, grads, m, v, hyper, Tensor(half_two.data(), DType::F16, {2})); },
      {"rounded_copy has shape"});
  std::vector<int> ints(3);
  expect_error_mentioning([&] { ops::adamw_update(params, grads, m, v, hyper, Tensor(ints.data(), DType::I32, {3})); },
                          {"rounded_copy holds"});
}

TEST(AdamW, RejectsBadStepsAndMismatchedSpans) {
  SeparateSpans spans(3);
  const Tensor params = spans.span(0), grads = spans.span(1), m = spans.span(2), v = spans.span(3);
  std::vector<float> two(2);
  std::vector<int> three_ints(3);
  ops::AdamWStep hyper = hyper_parameters(0);
  expect_error_mentioning([&] { ops::adamw_update(params, grads, m, v, hyper); }, {"steps count from 1"});
  hyper.step = 1;
  expect_error_mentioning([&] { ops::adamw_update(params, Tensor(two.data(), DType::F32, {2}), m, v, hyper); },
                          {"grads has shape"});
  expect_error_mentioning([&] { ops::adamw_update(params, Tensor(three_ints.data(), DType::I32, {3}), m, v, hyper); },
                          {"grads holds"});
  hyper.beta2 = 1.0;
  expect_error_mentioning([&] { ops::adamw_update(params, grads, m, v, hyper); }, {"beta2"});
}

TEST(AdamW, RefusesSpansThatShareMemory) {
  // The update reads and writes every span in place: two that overlap would each see the other's writes.
  std::vector<float> block(8);
  SeparateSpans spans(4);
  const Tensor params = spans.span(0), grads = spans.span(1), m = spans.span(2), v = spans.span(3);
  const ops::AdamWStep hyper = hyper_parameters(1);
  const Tensor first_half(block.data(), DType::F32, {4}), middle(block.data() + 2, DType::F32, {4});
  expect_error_mentioning([&] { ops::adamw_update(params, params, m, v, hyper); },
                          {"params and grads share memory"});
  expect_error_mentioning([&] { ops::adamw_update(params, grads, first_half, middle, hyper); },
                          {"first_moment and second_moment share memory"});
  std::vector<Half> working(4);
  expect_error_mentioning(
      [&] { ops::adamw_update(params, grads, m, v, hyper, Tensor(grads.data(), DType::F16, {4})); },
      {"grads and rounded_copy share memory"});
  // Neighbouring slices of one block are separate tensors: ZeRO's shards keep m and v that way.
  const Tensor second_half(block.data() + 4, DType::F32, {4});
  EXPECT_NO_THROW(ops::adamw_update(params, grads, first_half, second_half, hyper,
                                    Tensor(working.data(), DType::F16, {4})));
}

}  // namespace
}  // namespace ladder
