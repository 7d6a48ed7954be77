/// @file update_diagnostics.hpp
/// @brief What the step log shows of the lecture's fp16 failures: underflowed gradients and lost updates.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common/memory.hpp"
#include "common/model/parameter_layout.hpp"
#include "common/tensor.hpp"

namespace ladder {

/// Makes the lecture's two fp16 failures visible in the step log: the fraction of gradient entries that are
/// exactly zero (underflow) and the fraction of weights an update left bit-identical (lost updates). Only the
/// layout's real parameters count: padding is zero and never moves, in any precision. It also notes the steps
/// whose loss was not finite, so that a run that breaks says so at the end instead of only printing "nan".
/// It keeps a copy of the watched weights to compare against (accounted as workspace; a diagnostic, not part
/// of the recipe); stages 07-09 leave it out, so their memory tables show only the technique.
class UpdateDiagnostics {
 public:
  /// Watches `weights` (a flat tensor in `layout`, any float dtype) and remembers their bits now.
  UpdateDiagnostics(const ParameterLayout& layout, Tensor weights);
  /// The step's extras {"zero_grads", "unchanged"} for Experiment::record_step, then remembers the weights
  /// as they are now, so that the next call measures the next step. Call once per step, after the update.
  /// On the meta device (a memory plan) there is nothing to count: no extras.
  std::vector<std::pair<std::string, double>> measure(double loss, Tensor gradients);
  /// Fraction of the real entries of `gradients` (the layout's tensors) that are exactly ±0.
  double zero_gradient_fraction(Tensor gradients) const;
  /// Fraction of the real weights whose bits equal the ones remembered last.
  double unchanged_fraction() const;
  /// Fraction of the real weights that are NaN or ±inf now.
  double nonfinite_fraction() const;
  /// Remembers the watched weights' current bits.
  void remember_weights();
  /// One line for the end of the run: whether every loss was finite, else the first step that was not,
  /// how many were not, and how many weights are NaN or inf now.
  std::string summary() const;

 private:
  const ParameterLayout& layout_;
  Tensor weights_;
  Buffer remembered_storage_;
  Tensor remembered_;
  std::int64_t real_count_ = 0;  // entries of the layout's tensors: the denominator of the fractions
  std::int64_t steps_measured_ = 0;
  std::int64_t nonfinite_losses_ = 0;
  std::int64_t first_nonfinite_step_ = 0;  // 1-based, 0 while every loss was finite
};

}  // namespace ladder
