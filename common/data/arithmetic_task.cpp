#include "common/data/arithmetic_task.hpp"

#include <algorithm>
#include <utility>

#include "common/data/data_slice.hpp"
#include "common/error.hpp"
#include "common/random.hpp"

namespace ladder {
namespace {

// Character of each token id; the position in this string is the id.
constexpr char kVocabularyCharacters[] = "0123456789+-=;*.";
constexpr int kOperandValues = 100;  // two-digit operands: 00..99

bool is_well_ordered(ArithmeticOperation operation, OperandPair pair) {
  // Subtraction keeps answers non-negative, so a - b is only asked with a >= b.
  return operation == ArithmeticOperation::Addition || pair.left >= pair.right;
}

}  // namespace

ArithmeticTask::ArithmeticTask(ArithmeticOperation operation, const DataSlice& slice, std::uint64_t seed)
    : operation_(operation), slice_(slice), seed_(seed) {
  check_data_slice(slice);
  LADDER_CHECK(slice.sequence_length >= kProblemLength, "arithmetic task: sequence length T = ",
               slice.sequence_length, " is too short; a row needs T >= ", kProblemLength,
               " to hold one whole problem");
  for (int left = 0; left < kOperandValues; ++left) {
    for (int right = 0; right < kOperandValues; ++right) {
      const OperandPair pair{left, right};
      if (!is_well_ordered(operation_, pair)) continue;
      if (is_held_out(left, right)) {
        held_out_pairs_.push_back(pair);
      } else {
        ++training_pair_count_;
      }
    }
  }
}

bool ArithmeticTask::is_held_out(int left, int right) {
  return hash_combine(kHeldOutSalt, static_cast<std::uint64_t>(left), static_cast<std::uint64_t>(right)) % 10 == 0;
}

int ArithmeticTask::answer_of(OperandPair pair) const {
  return operation_ == ArithmeticOperation::Addition ? pair.left + pair.right : pair.left - pair.right;
}

std::array<std::int32_t, ArithmeticTask::kProblemLength> ArithmeticTask::problem_tokens(OperandPair pair) const {
  LADDER_CHECK(pair.left >= 0 && pair.left < kOperandValues && pair.right >= 0 && pair.right < kOperandValues,
               "arithmetic task: operands ", pair.left, " and ", pair.right, " must be two-digit (0..99)");
  LADDER_CHECK(is_well_ordered(operation_, pair), "subtraction: ", pair.left, " - ", pair.right,
               " would be negative; the left operand must not be smaller");
  const int answer = answer_of(pair);
  return {pair.left / 10,  pair.left % 10,
          operation_ == ArithmeticOperation::Addition ? kPlus : kMinus,
          pair.right / 10, pair.right % 10,
          kEquals,
          answer % 10,     (answer / 10) % 10, answer / 100,  // ones digit first
          kStop};
}

OperandPair ArithmeticTask::sample_training_pair(std::int64_t step, std::int64_t row, int slot) const {
  const std::uint64_t problem_key = hash_combine(seed_, static_cast<std::uint64_t>(step),
                                                 static_cast<std::uint64_t>(row), static_cast<std::uint64_t>(slot));
  // Rejection sampling keeps the draw uniform over training pairs; about 1 draw in 10 is held out, so the
  // loop ends after 1.1 attempts on average. Each attempt hashes its own counter: no state carries over.
  for (std::uint64_t attempt = 0;; ++attempt) {
    Random draw(hash_combine(problem_key, attempt));
    const auto index = static_cast<int>(draw.below(kOperandValues * kOperandValues));
    OperandPair pair{index / kOperandValues, index % kOperandValues};
    if (!is_well_ordered(operation_, pair)) std::swap(pair.left, pair.right);
    if (!is_held_out(pair.left, pair.right)) return pair;
  }
}

Batch ArithmeticTask::empty_batch() const {
  Batch batch;
  batch.batch_size = slice_.batch_size;
  batch.sequence_length = slice_.sequence_length;
  const std::size_t size = static_cast<std::size_t>(slice_.batch_size) * slice_.sequence_length;
  batch.inputs.assign(size, kPad);
  batch.targets.assign(size, -1);
  return batch;
}

void ArithmeticTask::write_problem(Batch& batch, int row, int slot, OperandPair pair) const {
  const auto tokens = problem_tokens(pair);
  const std::size_t start = static_cast<std::size_t>(row) * slice_.sequence_length +
                            static_cast<std::size_t>(slot) * kProblemLength;
  for (int i = 0; i < kProblemLength; ++i) batch.inputs[start + i] = tokens[i];
  // Only the answer is learnable: '=' predicts the first answer digit, each answer digit the next, the last
  // digit predicts ';'. The operands are random, so predicting them would only add noise to the loss.
  for (int i = kPromptLength - 1; i < kProblemLength - 1; ++i) batch.targets[start + i] = tokens[i + 1];
}

Batch ArithmeticTask::train_batch(std::int64_t step) const {
  LADDER_CHECK(step >= 0, "arithmetic task: training step ", step, " must be non-negative");
  Batch batch = empty_batch();
  for (int row = 0; row < slice_.batch_size; ++row) {
    for (int slot = 0; slot < problems_per_row(); ++slot) {
      write_problem(batch, row, slot, sample_training_pair(step, global_row(slice_, row), slot));
    }
  }
  return batch;
}

Batch ArithmeticTask::eval_batch(std::int64_t index) const {
  LADDER_CHECK(index >= 0 && index < kEvalBatchCount, "arithmetic task: held-out batch index ", index,
               " must lie in [0, ", kEvalBatchCount, ")");
  Batch batch = empty_batch();
  const auto held_out_count = static_cast<std::int64_t>(held_out_pairs_.size());
  for (int row = 0; row < slice_.batch_size; ++row) {
    // Problems are numbered across the whole global batch, so the split over ranks cannot change them; the
    // numbering wraps around the held-out list when the evaluation asks for more problems than it holds.
    const std::int64_t first_problem =
        (index * global_row_count(slice_) + global_row(slice_, row)) * problems_per_row();
    for (int slot = 0; slot < problems_per_row(); ++slot) {
      write_problem(batch, row, slot, held_out_pairs_[(first_problem + slot) % held_out_count]);
    }
  }
  return batch;
}

std::vector<Problem> ArithmeticTask::eval_problems(int count) const {
  LADDER_CHECK(count >= 0, "arithmetic task: number of held-out problems ", count, " must be non-negative");
  const std::size_t returned = std::min(static_cast<std::size_t>(count), held_out_pairs_.size());
  std::vector<Problem> problems;
  problems.reserve(returned);
  for (std::size_t i = 0; i < returned; ++i) {
    const auto tokens = problem_tokens(held_out_pairs_[i]);
    problems.push_back(Problem{{tokens.begin(), tokens.begin() + kPromptLength},
                               {tokens.begin() + kPromptLength, tokens.end()}});
  }
  return problems;
}

std::string ArithmeticTask::describe() const {
  const bool addition = operation_ == ArithmeticOperation::Addition;
  return make_message(addition ? "addition" : "subtraction", ": two-digit operands, answers reversed (",
                      addition ? "\"07+45=250;\"" : "\"45-07=830;\"", "), ", problems_per_row(),
                      (problems_per_row() == 1 ? " problem" : " problems"), " per row of T = ", slice_.sequence_length, ", ", training_pair_count_,
                      " training pairs, ", held_out_pairs_.size(), " held-out pairs, vocabulary ", kVocabSize);
}

std::string ArithmeticTask::decode(const std::vector<std::int32_t>& tokens) const {
  std::string text;
  text.reserve(tokens.size());
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    LADDER_CHECK(tokens[i] >= 0 && tokens[i] < kVocabSize, "arithmetic task: token ", tokens[i], " at position ",
                 i, " is outside the vocabulary [0, ", kVocabSize, ")");
    text += kVocabularyCharacters[tokens[i]];
  }
  return text;
}

std::vector<std::int32_t> ArithmeticTask::encode(const std::string& text) const {
  const std::string vocabulary(kVocabularyCharacters);
  std::vector<std::int32_t> tokens;
  tokens.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const std::size_t id = vocabulary.find(text[i]);
    LADDER_CHECK(id != std::string::npos, "arithmetic task: character '", text[i], "' at position ", i,
                 " of \"", text, "\" is not in the vocabulary \"", vocabulary, "\"");
    tokens.push_back(static_cast<std::int32_t>(id));
  }
  return tokens;
}

}  // namespace ladder
