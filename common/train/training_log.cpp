#include "common/train/training_log.hpp"

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>
#include <utility>

#include "common/error.hpp"

namespace ladder {
namespace {

/// printf-style formatting into a std::string, for the fixed-width numbers of the step line.
template <class... Arguments>
std::string format(const char* pattern, Arguments... arguments) {
  char text[128];
  std::snprintf(text, sizeof text, pattern, arguments...);
  return text;
}

/// "850 tok/s", "12.3k tok/s", "1.2M tok/s": three significant figures are all a reader compares.
std::string format_rate(double tokens_per_second) {
  if (tokens_per_second < 1e3) return format("%.0f", tokens_per_second);
  if (tokens_per_second < 1e6) return format("%.1fk", tokens_per_second / 1e3);
  return format("%.1fM", tokens_per_second / 1e6);
}

/// "4.1s" (or "37s" without tenths), then "6m05s", then "2h07m": a duration reads best in its largest units.
std::string format_duration(double seconds, bool show_tenths) {
  if (!(seconds >= 0)) seconds = 0;
  if (seconds < 60) return show_tenths ? format("%.1fs", seconds) : format("%.0fs", seconds);
  const auto whole = static_cast<long long>(std::llround(seconds));
  if (whole < 3600) return format("%lldm%02llds", whole / 60, whole % 60);
  return format("%lldh%02lldm", whole / 3600, (whole % 3600) / 60);
}

/// Extras are small counters and scales (65536, 3): %g prints them without noise digits.
// Whole numbers (byte and step counts) print in full; others in %g (a loss scale of 65536, a fraction of 0.0312).
std::string format_extra(double value) {
  if (value == std::floor(value) && std::abs(value) < 1e15) return format("%.0f", value);
  return format("%g", value);
}

int decimal_digits(std::int64_t value) {
  int digits = 1;
  while (value >= 10) {
    value /= 10;
    ++digits;
  }
  return digits;
}

/// One object per line, flushed at once, so a run that crashes leaves only whole lines behind.
void write_json_line(std::ofstream& file, const nlohmann::json& object) {
  if (!file.is_open()) return;
  // Replace rather than throw on invalid UTF-8 in a name: a stray byte in a label is not worth ending a run.
  file << object.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n' << std::flush;
  LADDER_CHECK(file.good(), "writing the metrics file (--metrics) failed: ", std::strerror(errno));
}

}  // namespace

TrainingLog::TrainingLog(std::string stage, std::int64_t total_steps, std::int64_t log_every,
                         const std::string& metrics_path, bool printing, bool append)
    : stage_(std::move(stage)), total_steps_(total_steps), log_every_(log_every), printing_(printing) {
  LADDER_CHECK(total_steps_ >= 0, "TrainingLog: total steps ", total_steps_, " must be >= 0");
  LADDER_CHECK(log_every_ >= 1, "TrainingLog: log_every ", log_every_, " must be >= 1");
  if (!metrics_path.empty()) {
    metrics_.open(metrics_path, std::ios::out | (append ? std::ios::app : std::ios::trunc));
    LADDER_CHECK(metrics_.is_open(), "cannot create the metrics file '", metrics_path, "': ", std::strerror(errno));
  }
}

void TrainingLog::log_step(const StepMetrics& metrics) {
  total_seconds_ += metrics.step_seconds;
  ++steps_logged_;
  total_tokens_ += metrics.tokens;
  window_seconds_ += metrics.step_seconds;
  window_tokens_ += metrics.tokens;

  nlohmann::json object = {
      {"type", "step"},
      {"stage", stage_},
      {"step", metrics.step},
      {"loss", metrics.loss},
      {"lr", metrics.learning_rate},
      {"grad_norm", metrics.gradient_norm},
      {"tokens", metrics.tokens},
      {"step_seconds", metrics.step_seconds},
      {"tokens_per_second", metrics.step_seconds > 0 ? metrics.tokens / metrics.step_seconds : 0.0},
  };
  for (const auto* numbers : {&metrics.extras, &metrics.records}) {
    for (const auto& [name, value] : *numbers) {
      LADDER_CHECK(!object.contains(name), "step extra '", name, "' clashes with a field of the metrics line");
      object[name] = value;
    }
  }
  write_json_line(metrics_, object);

  // The first step of this process is shown too: a resumed run says at once where it continues.
  const bool due = steps_logged_ == 1 || metrics.step % log_every_ == 0 || metrics.step >= total_steps_;
  if (!due) return;

  // The rate covers only the steps since the last printed line, so a slowdown shows up at once.
  const double window_rate = window_seconds_ > 0 ? window_tokens_ / window_seconds_ : 0.0;
  window_seconds_ = 0;
  window_tokens_ = 0;
  if (!printing_) return;

  const double mean_step_seconds = total_seconds_ / static_cast<double>(steps_logged_);
  const std::int64_t remaining_steps = metrics.step < total_steps_ ? total_steps_ - metrics.step : 0;
  std::string line = stage_ + " | step " +
                     format("%*lld", decimal_digits(total_steps_), static_cast<long long>(metrics.step)) + "/" +
                     std::to_string(total_steps_);
  line += " | loss " + format("%.4f", metrics.loss);
  line += " | lr " + format("%.2e", metrics.learning_rate);
  line += " | norm " + format("%.3f", metrics.gradient_norm);
  line += " | " + format_rate(window_rate) + " tok/s";
  line += " | " + format_duration(total_seconds_, true);
  line += " | ETA " + format_duration(static_cast<double>(remaining_steps) * mean_step_seconds, false);
  for (const auto& [name, value] : metrics.extras) line += " | " + name + " " + format_extra(value);
  std::cout << line << '\n' << std::flush;
}

void TrainingLog::log_eval(const EvalMetrics& metrics) {
  nlohmann::json object = {
      {"type", "eval"},
      {"stage", stage_},
      {"step", metrics.step},
      {"loss", metrics.loss},
  };
  if (metrics.accuracy) object["accuracy"] = *metrics.accuracy;
  write_json_line(metrics_, object);

  if (!printing_) return;
  std::string line = stage_ + " | eval at step " + std::to_string(metrics.step);
  line += " | held-out loss " + format("%.4f", metrics.loss);
  if (metrics.accuracy) line += " | accuracy " + format("%.1f%%", *metrics.accuracy * 100.0);
  std::cout << line << '\n' << std::flush;
}

void TrainingLog::log_memory(const MemoryAccountant& accountant, Device device, std::int64_t parameter_count) {
  nlohmann::json categories = nlohmann::json::object();
  for (int c = 0; c < kMemoryCategoryCount; ++c) {
    const auto category = static_cast<MemoryCategory>(c);
    const CategoryUsage usage = accountant.usage(device, category);
    categories[category_name(category)] = {{"current", usage.current}, {"peak", usage.peak}};
  }
  write_json_line(metrics_, {{"type", "memory"},
                             {"stage", stage_},
                             {"device", device_name(device)},
                             {"parameter_count", parameter_count},
                             {"categories", categories},
                             {"current_total", accountant.current_total(device)},
                             {"peak_total", accountant.peak_total(device)}});
  if (printing_) std::cout << accountant.format_table(device, parameter_count) << std::flush;
}

void TrainingLog::log_summary() {
  write_json_line(metrics_, {{"type", "summary"},
                             {"stage", stage_},
                             {"steps", steps_logged_},
                             {"tokens_per_second", mean_tokens_per_second()},
                             {"train_seconds", total_seconds_}});
}

void TrainingLog::log_checkpoint(std::int64_t step, const std::string& path, double seconds, std::uint64_t bytes,
                                 int files) {
  write_json_line(metrics_, {{"type", "checkpoint"},
                             {"stage", stage_},
                             {"step", step},
                             {"path", path},
                             {"seconds", seconds},
                             {"bytes", bytes},
                             {"files", files}});
  info(stage_ + " | checkpoint after step " + std::to_string(step) + " written to " + path + " in " +
       (seconds < 10 ? format("%.2fs", seconds) : format_duration(seconds, true)) + " (" + std::to_string(files) + (files == 1 ? " file, " : " files, ") +
       format("%.1f MiB", static_cast<double>(bytes) / (1 << 20)) + ")");
}

void TrainingLog::info(const std::string& line) {
  if (printing_) std::cout << line << '\n' << std::flush;
}

double TrainingLog::mean_tokens_per_second() const {
  return total_seconds_ > 0 ? static_cast<double>(total_tokens_) / total_seconds_ : 0.0;
}

}  // namespace ladder
