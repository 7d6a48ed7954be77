#include "common/train/evaluation.hpp"

#include <algorithm>

#include "common/model/generate.hpp"

namespace ladder {

double held_out_loss(GPT& model, const DataSource& data, int batches) {
  const std::int64_t count = std::min<std::int64_t>(batches, data.eval_batch_count());
  double total = 0;
  for (std::int64_t index = 0; index < count; ++index) total += model.forward(data.eval_batch(index));
  return count > 0 ? total / static_cast<double>(count) : 0.0;
}

std::vector<AnsweredProblem> answer_problems(GPT& model, const DataSource& data, int count) {
  const std::vector<Problem> problems = data.eval_problems(count);
  std::vector<std::vector<std::int32_t>> prompts;
  std::size_t longest_answer = 0;
  for (const Problem& problem : problems) {
    prompts.push_back(problem.prompt);
    longest_answer = std::max(longest_answer, problem.answer.size());
  }
  const auto answers = greedy_decode(model, prompts, static_cast<int>(longest_answer), data.stop_token());
  std::vector<AnsweredProblem> answered;
  for (std::size_t i = 0; i < problems.size(); ++i) {
    AnsweredProblem result;
    result.prompt = data.decode(problems[i].prompt);
    result.expected = data.decode(problems[i].answer);
    result.answer = data.decode(answers[i]);
    result.correct = answers[i] == problems[i].answer;
    answered.push_back(result);
  }
  return answered;
}

double accuracy(const std::vector<AnsweredProblem>& answered) {
  if (answered.empty()) return 0.0;
  const auto right = std::count_if(answered.begin(), answered.end(), [](const AnsweredProblem& p) { return p.correct; });
  return static_cast<double>(right) / static_cast<double>(answered.size());
}

EvalMetrics held_out_metrics(GPT& model, const DataSource& data, int batches, int problems, std::int64_t step) {
  EvalMetrics metrics;
  metrics.step = step;
  metrics.loss = held_out_loss(model, data, batches);
  const auto answered = answer_problems(model, data, problems);
  if (!answered.empty()) metrics.accuracy = accuracy(answered);
  return metrics;
}

}  // namespace ladder
