/// @file metrics_continuation.hpp
/// @brief A resumed run continues the metrics file of the run it resumes, so that the file reads as one run.
#pragma once

#include <cstdint>
#include <string>

namespace ladder {

/// Prepares the --metrics file `path` of a run resumed from the checkpoint after `step` steps: when it holds that
/// checkpoint's record, everything after the record is cut off (the steps the stopped run took past its last
/// checkpoint, its summary), and the resumed run appends: true. When it does not (another file, a first run
/// without --metrics, a pipe or /dev/null), nothing is touched and the run writes it anew: false.
bool continue_metrics_after(const std::string& path, std::int64_t step);

}  // namespace ladder
