/// @file training_log.hpp
/// @brief The step line on the console and the JSONL metrics file.
#pragma once

#include <cstdint>
#include <fstream>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/memory.hpp"

namespace ladder {

/// What one training step measured.
struct StepMetrics {
  std::int64_t step = 0;           ///< 1-based step just finished
  double loss = 0;                 ///< mean training loss of the step
  double learning_rate = 0;        ///< lr used
  double gradient_norm = 0;        ///< global gradient norm before clipping
  std::int64_t tokens = 0;         ///< tokens processed by the step (all ranks)
  double step_seconds = 0;         ///< wall time of the step
  std::vector<std::pair<std::string, double>> extras;  ///< stage-specific numbers (loss scale, skipped steps)
  std::vector<std::pair<std::string, double>> records;  ///< more of them for the metrics file only (bytes per collective)
};

/// What one held-out evaluation measured.
struct EvalMetrics {
  std::int64_t step = 0;            ///< training steps done when evaluated
  double loss = 0;                  ///< mean held-out loss
  std::optional<double> accuracy;   ///< exact-match accuracy in [0,1], where the data has problems
};

/// Writes "step 40/400 | loss 1.2345 | lr 3.00e-03 | norm 0.51 | 12.3k tok/s | 4.1s | ETA 37s" lines every
/// `log_every` steps (and the first and last), and every step and evaluation as one JSON object per line.
class TrainingLog {
 public:
  /// `metrics_path` empty: no JSONL. `printing` false silences the console (non-zero ranks). `append` continues
  /// an existing metrics file (a resumed run) instead of starting it anew.
  /// Throws LadderError naming the path when the metrics file cannot be created.
  TrainingLog(std::string stage, std::int64_t total_steps, std::int64_t log_every, const std::string& metrics_path,
              bool printing = true, bool append = false);
  /// Records one step; prints the step line when due.
  void log_step(const StepMetrics& metrics);
  /// Records and prints one held-out evaluation.
  void log_eval(const EvalMetrics& metrics);
  /// Prints the memory table and records it as {"type":"memory", "categories": {name: {current, peak}}, ...}.
  void log_memory(const MemoryAccountant& accountant, Device device, std::int64_t parameter_count);
  /// Records the run's totals: {"type":"summary", "steps", "tokens_per_second" (mean), "train_seconds"}.
  void log_summary();
  /// Records a checkpoint written after step `step`: "checkpoint after step 10 written to DIR in 0.12s (2 files,
  /// 1.2 MiB)", and {"type":"checkpoint", "step", "path", "seconds", "bytes", "files"}.
  void log_checkpoint(std::int64_t step, const std::string& path, double seconds, std::uint64_t bytes, int files);
  /// Prints a free-form line (console only).
  void info(const std::string& line);
  /// Mean tokens per second over all steps logged so far (0 before the first).
  double mean_tokens_per_second() const;
  /// Seconds spent in logged steps so far.
  double total_step_seconds() const { return total_seconds_; }

 private:
  std::string stage_;
  std::int64_t total_steps_;
  std::int64_t log_every_;
  bool printing_;
  std::ofstream metrics_;
  std::int64_t steps_logged_ = 0;
  double total_seconds_ = 0;
  std::int64_t total_tokens_ = 0;
  double window_seconds_ = 0;
  std::int64_t window_tokens_ = 0;
};

}  // namespace ladder
