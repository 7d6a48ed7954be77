/// @file evaluation.hpp
/// @brief Held-out loss and exact-match accuracy: the numbers that say whether training worked.
#pragma once

#include <string>
#include <vector>

#include "common/data/data_source.hpp"
#include "common/model/gpt.hpp"
#include "common/train/training_log.hpp"

namespace ladder {

/// One held-out problem and what the model answered.
struct AnsweredProblem {
  std::string prompt;    ///< decoded prompt, e.g. "07+45="
  std::string expected;  ///< decoded right answer
  std::string answer;    ///< decoded greedy answer
  bool correct = false;  ///< exact match
};

/// Mean loss over the first `batches` held-out batches (all of them if fewer exist).
double held_out_loss(GPT& model, const DataSource& data, int batches);

/// Exact-match results of greedy decoding on the first `count` held-out problems (empty if the data has none).
std::vector<AnsweredProblem> answer_problems(GPT& model, const DataSource& data, int count);

/// Fraction of problems answered exactly right (0 for none).
double accuracy(const std::vector<AnsweredProblem>& answered);

/// The held-out loss over `batches` batches and, where the data has problems, the accuracy on `problems` of them,
/// recorded as of `step` training steps.
EvalMetrics held_out_metrics(GPT& model, const DataSource& data, int batches, int problems, std::int64_t step);

}  // namespace ladder
