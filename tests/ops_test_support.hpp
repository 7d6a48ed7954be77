// What the tests of the ops share: random inputs, and the check of a backward pass against central finite
// differences of its forward, in double precision (F64).
//
// Each gradient check defines a scalar loss L = Σ out·w with random weights w, so every output element matters,
// and differentiates L numerically with respect to every input element; the backward pass gets dout = w.
// Gradient tensors start from random content that the check subtracts afterwards, so each check also proves the
// accumulate convention: backward adds (+=) to what is there.
//
// Tolerance: |analytic - numerical| <= 1e-6 · max(|analytic|, |numerical|) + 1e-8. Central differences with
// step 1e-5 in double are accurate to about 1e-10 on these sizes (truncation ~h²·f'''/6, rounding ~1e-16·|L|/h),
// so a correct backward passes with a wide margin and a wrong term or index fails by orders of magnitude.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "common/random.hpp"

namespace ladder::testing_support {

/// Step h of the central differences (f(x + h) - f(x - h)) / 2h.
inline constexpr double kFiniteDifferenceStep = 1e-5;
/// Relative part of the gradient tolerance, on the larger of the two magnitudes.
inline constexpr double kGradientRelativeTolerance = 1e-6;
/// Absolute part of the gradient tolerance, for entries near zero.
inline constexpr double kGradientAbsoluteTolerance = 1e-8;

/// `count` standard normal draws from `random`, each multiplied by `scale`.
inline std::vector<double> random_values(Random& random, std::size_t count, double scale = 1.0) {
  std::vector<double> values(count);
  for (double& value : values) value = scale * random.normal();
  return values;
}

/// Σ out[i]·weights[i]: the scalar loss whose gradient with respect to `out` is `weights`.
inline double weighted_sum(const std::vector<double>& out, const std::vector<double>& weights) {
  double sum = 0;
  for (std::size_t i = 0; i < out.size(); ++i) sum += out[i] * weights[i];
  return sum;
}

/// dL/d(input[i]) for the `count` values at `input` by central differences; `loss` must read them afresh each call
/// (they may be a model's weights, read by its forward).
inline std::vector<double> numerical_gradient(double* input, std::size_t count, const std::function<double()>& loss) {
  std::vector<double> gradient(count);
  for (std::size_t i = 0; i < count; ++i) {
    const double original = input[i];
    input[i] = original + kFiniteDifferenceStep;
    const double plus = loss();
    input[i] = original - kFiniteDifferenceStep;
    const double minus = loss();
    input[i] = original;
    gradient[i] = (plus - minus) / (2 * kFiniteDifferenceStep);
  }
  return gradient;
}

/// The same for every element of `input`.
inline std::vector<double> numerical_gradient(std::vector<double>& input, const std::function<double()>& loss) {
  return numerical_gradient(input.data(), input.size(), loss);
}

/// Expects the backward's contribution (what it added to `initial`, giving `after`) to be the numerical gradient
/// within the tolerance; reports the first five entries that are not, under `name`.
inline void expect_gradient(const std::vector<double>& after, const std::vector<double>& initial,
                            const std::vector<double>& numerical, const std::string& name) {
  ASSERT_EQ(after.size(), numerical.size()) << name;
  int failures = 0;
  for (std::size_t i = 0; i < after.size(); ++i) {
    const double analytic = after[i] - initial[i];
    const double tolerance = kGradientRelativeTolerance * std::max(std::fabs(analytic), std::fabs(numerical[i])) +
                             kGradientAbsoluteTolerance;
    if (std::fabs(analytic - numerical[i]) > tolerance && ++failures <= 5) {
      ADD_FAILURE() << name << "[" << i << "]: backward gives " << analytic << ", finite differences " << numerical[i];
    }
  }
  EXPECT_EQ(failures, 0) << name;
}

}  // namespace ladder::testing_support
