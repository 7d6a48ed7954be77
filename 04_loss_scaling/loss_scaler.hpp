/// @file loss_scaler.hpp
/// @brief Stage 04's technique: a dynamic loss scale that lifts small fp16 gradients out of underflow, and the
/// overflow check that skips a step whose scaled gradients did not fit.
#pragma once

#include <cstdint>

#include "03_master_weights/master_weights.hpp"
#include "common/tensor.hpp"
#include "common/train/training_state.hpp"

namespace CLI {
class App;
}

/// Stage 04: dynamic loss scaling.
namespace ladder::stage04 {

/// Bytes each parameter costs in this stage: the same as stage 03, since the scaler is a handful of numbers.
inline constexpr int kBytesPerParameter = stage03::kBytesPerParameter;

/// The loss scaler's settings. The defaults are torch.amp.GradScaler's, plus a floor it does not have.
struct LossScalerConfig {
  double initial_scale = 65536.0;        ///< --loss-scale: the scale of the first step (2^16)
  double growth_factor = 2.0;            ///< --scale-growth: multiplies the scale after growth_interval clean steps
  double backoff_factor = 0.5;           ///< --scale-backoff: multiplies the scale after a step that overflowed
  std::int64_t growth_interval = 2000;   ///< --scale-interval: consecutive clean steps before the scale grows
  double min_scale = 1.0;                ///< --min-loss-scale: the floor no backoff goes below
  bool fixed = false;                    ///< --fixed-loss-scale: keep initial_scale (overflowed steps are still skipped)

  /// Throws LadderError naming the flag of the first bad setting and the range it expected.
  void validate() const;
};

/// Registers --loss-scale, --scale-growth, --scale-backoff, --scale-interval, --min-loss-scale and
/// --fixed-loss-scale on a stage's parser, writing into `config`; the values are validated once parsing ends.
void add_loss_scaler_flags(CLI::App& app, LossScalerConfig& config);

/// True when any element of `gradients` (any float dtype) is inf or NaN: such a step must not reach the optimizer.
bool has_inf_or_nan(Tensor gradients);

/// The loss scale S and its schedule, as torch.amp.GradScaler keeps it: the loss is multiplied by S before
/// backward, so that fp16 gradients S times larger stay above fp16's smallest numbers; the optimizer divides them
/// by S again in fp32. A step whose scaled gradients overflowed (inf or NaN) is skipped and S shrinks; after
/// growth_interval clean steps in a row S grows again, so it settles just below the largest scale that fits.
class DynamicLossScaler {
 public:
  /// Starts at config.initial_scale; throws LadderError (naming the flag) on a bad setting.
  explicit DynamicLossScaler(const LossScalerConfig& config = {});

  /// The scale to multiply the loss by in the next backward pass.
  double scale() const { return scale_; }
  /// Moves the schedule on by one step. found_inf: the step's gradients overflowed and its update was skipped,
  /// so S backs off (never below min_scale) and the clean-step count restarts. Otherwise one more clean step,
  /// and after growth_interval of them S grows (unless growing would overflow a double). A fixed scale never moves.
  void update(bool found_inf);

  /// Clean steps in a row since the scale last changed (GradScaler's "growth tracker"; always 0 for a fixed scale).
  std::int64_t growth_tracker() const { return growth_tracker_; }
  /// Steps skipped so far because their gradients overflowed.
  std::int64_t skipped_steps() const { return skipped_steps_; }
  /// The settings.
  const LossScalerConfig& config() const { return config_; }
  /// Adds what the scaler carries between steps to a checkpoint's state: "loss_scaler.scale", ".growth_tracker"
  /// and ".skipped_steps". A resumed run must continue the schedule where it was, or its first steps would start
  /// again from --loss-scale and differ from the run that never stopped. The settings are flags, checked on resume.
  void add_to(TrainingState& state);

 private:
  LossScalerConfig config_;
  double scale_;
  std::int64_t growth_tracker_ = 0;
  std::int64_t skipped_steps_ = 0;
};

}  // namespace ladder::stage04
