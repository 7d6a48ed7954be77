#include "04_loss_scaling/loss_scaler.hpp"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cmath>

#include "common/error.hpp"
#include "common/ops/ops.hpp"

namespace ladder::stage04 {
namespace {

/// Throws "<flag> <value>: expected <expectation>", the wording every flag of the ladder uses.
template <class Value>
void require(bool holds, const char* flag, const Value& value, const char* expectation) {
  LADDER_CHECK(holds, flag, " ", value, ": expected ", expectation);
}

}  // namespace

void LossScalerConfig::validate() const {
  // Written as "holds" conditions, so a NaN (for which every comparison is false) is refused too.
  require(std::isfinite(initial_scale) && initial_scale > 0, "--loss-scale", initial_scale, "a finite number > 0");
  require(std::isfinite(min_scale) && min_scale > 0, "--min-loss-scale", min_scale,
          "a finite number > 0 (the scale must never collapse to zero)");
  LADDER_CHECK(initial_scale >= min_scale, "--loss-scale ", initial_scale, ": expected a number >= --min-loss-scale (",
               min_scale, "), the floor the scale is kept above");
  // A factor of 1 would make the scale static under a flag that promises it moves; --fixed-loss-scale says so plainly.
  require(std::isfinite(growth_factor) && growth_factor > 1, "--scale-growth", growth_factor,
          "a finite number > 1 (use --fixed-loss-scale for a scale that never moves)");
  require(backoff_factor > 0 && backoff_factor < 1, "--scale-backoff", backoff_factor,
          "a number in (0, 1) (use --fixed-loss-scale for a scale that never moves)");
  require(growth_interval >= 1, "--scale-interval", growth_interval, "an integer >= 1 (clean steps before growing)");
}

void add_loss_scaler_flags(CLI::App& app, LossScalerConfig& config) {
  const std::string group = "Loss scaling";
  app.add_option("--loss-scale", config.initial_scale, "Initial loss scale S (the loss is multiplied by S)")
      ->group(group);
  app.add_option("--scale-growth", config.growth_factor, "S is multiplied by this after --scale-interval clean steps")
      ->group(group);
  app.add_option("--scale-backoff", config.backoff_factor, "S is multiplied by this after a step that overflowed")
      ->group(group);
  app.add_option("--scale-interval", config.growth_interval, "Consecutive clean steps before S grows")->group(group);
  app.add_option("--min-loss-scale", config.min_scale, "Floor that S never backs off below")->group(group);
  app.add_flag("--fixed-loss-scale", config.fixed, "Keep S at --loss-scale (steps that overflow are still skipped)")
      ->group(group);
  // Checked as soon as parsing ends, so a bad setting is refused before the run builds anything.
  app.final_callback([&config] { config.validate(); });
}

bool has_inf_or_nan(Tensor gradients) { return !ops::all_finite(gradients); }

DynamicLossScaler::DynamicLossScaler(const LossScalerConfig& config) : config_(config), scale_(config.initial_scale) {
  config_.validate();
}

void DynamicLossScaler::update(bool found_inf) {
  if (found_inf) ++skipped_steps_;
  if (config_.fixed) return;
  if (found_inf) {
    // Back off at once: the next step must fit. The floor keeps a run whose loss is itself inf from driving S
    // to zero, where every gradient would underflow instead.
    scale_ = std::max(scale_ * config_.backoff_factor, config_.min_scale);
    growth_tracker_ = 0;
    return;
  }
  if (++growth_tracker_ < config_.growth_interval) return;
  // Probe a larger scale after a long clean run: smaller gradients survive, and an overflow only costs one step.
  const double grown = scale_ * config_.growth_factor;
  if (std::isfinite(grown)) scale_ = grown;
  growth_tracker_ = 0;
}

void DynamicLossScaler::add_to(TrainingState& state) {
  state.add_number(
      "loss_scaler.scale", [this] { return scale_; },
      [this](double scale) {
        LADDER_CHECK(std::isfinite(scale) && scale > 0, "checkpoint: loss scale ", scale, " is not a finite number > 0");
        scale_ = scale;
      });
  state.add_integer(
      "loss_scaler.growth_tracker", [this] { return growth_tracker_; },
      [this](std::int64_t steps) { growth_tracker_ = steps; });
  state.add_integer(
      "loss_scaler.skipped_steps", [this] { return skipped_steps_; },
      [this](std::int64_t steps) { skipped_steps_ = steps; });
}

}  // namespace ladder::stage04
