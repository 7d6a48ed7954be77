// Runs a program and captures its exit code and output, for tests that use a stage as a user would, and reads
// what a run reports: a refusal's message, the records of its JSONL metrics file.
// Includes tests/test_support.hpp (temporary folders, file reads and writes).
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "tests/test_support.hpp"

namespace ladder::testing_support {

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

inline CommandResult run_command(const std::string& command) {
  CommandResult result;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return result;
  std::array<char, 4096> chunk;
  while (std::fgets(chunk.data(), static_cast<int>(chunk.size()), pipe) != nullptr) result.output += chunk.data();
  const int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

/// Flags for a stage run with no steps given: the tiny model, 2 rows a batch, a one-batch evaluation of 4
/// problems and no samples.
inline const std::string kTinyRunFlags = " --model tiny --batch-size 2 --eval-problems 4 --eval-batches 1 --samples 0";
/// kTinyRunFlags for 3 steps: a whole run that takes well under a second.
inline const std::string kQuickRunFlags = kTinyRunFlags + " --steps 3";

/// Expects a run that failed (exit code not 0) with a message that mentions `must_mention`.
inline void expect_refused(const CommandResult& result, const std::string& must_mention) {
  EXPECT_NE(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find(must_mention), std::string::npos)
      << "message should mention '" << must_mention << "':\n" << result.output;
}

/// Every line of a JSONL metrics file, parsed (a line that is not JSON throws).
inline std::vector<nlohmann::json> jsonl_records(const std::string& jsonl) {
  std::vector<nlohmann::json> records;
  std::istringstream lines(jsonl);
  for (std::string line; std::getline(lines, line);) records.push_back(nlohmann::json::parse(line));
  return records;
}

/// The step records (type "step") of a JSONL metrics file, in order.
inline std::vector<nlohmann::json> step_records(const std::string& jsonl) {
  std::vector<nlohmann::json> steps;
  for (nlohmann::json& record : jsonl_records(jsonl)) {
    if (record.at("type") == "step") steps.push_back(std::move(record));
  }
  return steps;
}

/// One number of every step record, in order: step_values(jsonl, "loss") is the loss curve.
inline std::vector<double> step_values(const std::string& jsonl, const std::string& field) {
  std::vector<double> values;
  for (const nlohmann::json& step : step_records(jsonl)) values.push_back(step.at(field).get<double>());
  return values;
}

}  // namespace ladder::testing_support
