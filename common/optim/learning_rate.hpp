/// @file learning_rate.hpp
/// @brief The learning-rate schedule: linear warm-up, then cosine decay to a floor.
#pragma once

#include <cstdint>

namespace ladder {

/// Shape of the schedule.
struct LearningRateSchedule {
  double peak = 1e-3;               ///< lr at the end of warm-up
  double min_ratio = 0.1;           ///< the floor, as a fraction of the peak
  std::int64_t warmup_steps = 20;   ///< steps of linear warm-up
  std::int64_t total_steps = 400;   ///< steps of the whole run
  /// lr for 0-based step `step`: peak·(step+1)/warmup during warm-up, then cosine from peak to peak·min_ratio.
  double at(std::int64_t step) const;
};

}  // namespace ladder
