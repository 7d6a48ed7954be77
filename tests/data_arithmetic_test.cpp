// The arithmetic tasks: every problem is checked by parsing its text and redoing the sum with plain integers.
#include <gtest/gtest.h>

#include <functional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "common/data/arithmetic_task.hpp"
#include "common/data/data_source.hpp"
#include "common/error.hpp"
#include "tests/data_test_support.hpp"
#include "common/random.hpp"

namespace ladder {
namespace {

using testing_support::row_of;
using testing_support::slice_of;

struct ParsedProblem {
  int left;
  char operation;
  int right;
  int answer;  // read back from the reversed digits
};

int digit(char character) {
  EXPECT_TRUE(character >= '0' && character <= '9') << "expected a digit, got '" << character << "'";
  return character - '0';
}

// Reads "ab+cd=xyz;" by hand, independently of the task's own token layout code.
ParsedProblem parse_problem(const std::string& text) {
  EXPECT_EQ(text.size(), 10u) << text;
  EXPECT_EQ(text[5], '=') << text;
  EXPECT_EQ(text[9], ';') << text;
  return {digit(text[0]) * 10 + digit(text[1]), text[2], digit(text[3]) * 10 + digit(text[4]),
          digit(text[6]) + 10 * digit(text[7]) + 100 * digit(text[8])};
}

// The split as the documentation states it, written out here rather than calling the task.
bool documented_held_out(int left, int right) { return hash_combine(0x5EED, left, right) % 10 == 0; }

// Checks every row of a batch: whole problems that are arithmetically right, then padding, and targets that are
// the next token exactly at '=' and the first three answer digits. Returns the (left, right) pairs seen.
std::vector<std::pair<int, int>> check_batch(const DataSource& source, const Batch& batch, char operation) {
  const int T = batch.sequence_length;
  const int problems = T / 10;
  EXPECT_EQ(batch.inputs.size(), static_cast<std::size_t>(batch.batch_size) * T);
  EXPECT_EQ(batch.targets.size(), batch.inputs.size());
  EXPECT_EQ(batch.valid_target_count(), static_cast<std::int64_t>(batch.batch_size) * problems * 4);
  std::vector<std::pair<int, int>> pairs;
  for (int row = 0; row < batch.batch_size; ++row) {
    const std::string text = source.decode(row_of(batch.inputs, row, T));
    for (int problem = 0; problem < problems; ++problem) {
      const ParsedProblem parsed = parse_problem(text.substr(problem * 10, 10));
      EXPECT_EQ(parsed.operation, operation) << text;
      if (operation == '+') {
        EXPECT_EQ(parsed.answer, parsed.left + parsed.right) << text;
      }
      if (operation == '-') {
        EXPECT_GE(parsed.left, parsed.right) << text;
        EXPECT_EQ(parsed.answer, parsed.left - parsed.right) << text;
      }
      pairs.emplace_back(parsed.left, parsed.right);
    }
    EXPECT_EQ(text.substr(problems * 10), std::string(T - problems * 10, '.')) << text;
    int targets_in_row = 0;
    for (int t = 0; t < T; ++t) {
      const std::int32_t target = batch.targets[static_cast<std::size_t>(row) * T + t];
      const bool answer_position = t < problems * 10 && t % 10 >= 5 && t % 10 <= 8;
      if (!answer_position) {
        EXPECT_EQ(target, -1) << "row " << row << " position " << t;
        continue;
      }
      EXPECT_LT(t + 1, T);
      EXPECT_EQ(target, batch.inputs[static_cast<std::size_t>(row) * T + t + 1]) << "row " << row << " position " << t;
      ++targets_in_row;
    }
    EXPECT_EQ(targets_in_row, 4 * problems);
  }
  return pairs;
}

TEST(DataArithmetic, WritesTheDocumentedExamples) {
  const ArithmeticTask addition(ArithmeticOperation::Addition, slice_of(0, 1, 1, 10), 1);
  const ArithmeticTask subtraction(ArithmeticOperation::Subtraction, slice_of(0, 1, 1, 10), 1);
  const std::vector<std::int32_t> expected_sum = {0, 7, 10, 4, 5, 12, 2, 5, 0, 13};
  const auto sum = addition.problem_tokens({7, 45});
  EXPECT_EQ(std::vector<std::int32_t>(sum.begin(), sum.end()), expected_sum);
  EXPECT_EQ(addition.decode(expected_sum), "07+45=250;");
  EXPECT_EQ(addition.encode("07+45=250;"), expected_sum);
  const auto difference = subtraction.problem_tokens({45, 7});
  EXPECT_EQ(subtraction.decode({difference.begin(), difference.end()}), "45-07=830;");
  const auto carry = addition.problem_tokens({99, 99});
  EXPECT_EQ(addition.decode({carry.begin(), carry.end()}), "99+99=891;");
  EXPECT_EQ(addition.encode("0123456789+-=;*."), (std::vector<std::int32_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
                                                                             13, 14, 15}));
  EXPECT_EQ(addition.vocab_size(), 16);
  EXPECT_EQ(addition.stop_token(), 13);
  EXPECT_EQ(addition.eval_batch_count(), 16);
  const std::string description = addition.describe();
  EXPECT_NE(description.find("addition"), std::string::npos) << description;
  EXPECT_NE(description.find(std::to_string(addition.held_out_pairs().size()) + " held-out"), std::string::npos)
      << description;
}

TEST(DataArithmetic, TrainingBatchesAreRightAndTargetOnlyTheAnswers) {
  for (const int T : {10, 25, 64}) {
    auto addition = make_data_source("addition", slice_of(0, 1, 3, T), 42);
    auto subtraction = make_data_source("subtraction", slice_of(0, 1, 3, T), 42);
    for (std::int64_t step = 0; step < 5; ++step) {
      check_batch(*addition, addition->train_batch(step), '+');
      check_batch(*subtraction, subtraction->train_batch(step), '-');
    }
  }
}

TEST(DataArithmetic, HeldOutSplitIsTheDocumentedHash) {
  for (const auto& [spec, operation] : {std::pair{ArithmeticOperation::Addition, '+'},
                                        std::pair{ArithmeticOperation::Subtraction, '-'}}) {
    const ArithmeticTask task(spec, slice_of(0, 1, 2, 20), 7);
    std::vector<std::pair<int, int>> expected;
    for (int left = 0; left < 100; ++left) {
      for (int right = 0; right < 100; ++right) {
        if (operation == '-' && left < right) continue;
        if (documented_held_out(left, right)) expected.emplace_back(left, right);
      }
    }
    std::vector<std::pair<int, int>> actual;
    for (const OperandPair& pair : task.held_out_pairs()) actual.emplace_back(pair.left, pair.right);
    EXPECT_EQ(actual, expected);
    // About a tenth of the pairs: a broken hash (all or none held out) would fail here.
    const double fraction = static_cast<double>(expected.size()) / (operation == '+' ? 10000.0 : 5050.0);
    EXPECT_GT(fraction, 0.08);
    EXPECT_LT(fraction, 0.12);
  }
}

TEST(DataArithmetic, HeldOutPairsNeverAppearInTraining) {
  for (const auto& [spec, operation] : {std::pair{"addition", '+'}, std::pair{"subtraction", '-'}}) {
    auto source = make_data_source(spec, slice_of(0, 1, 8, 60), 3);
    std::set<std::pair<int, int>> seen;
    for (std::int64_t step = 0; step < 200; ++step) {
      for (const auto& pair : check_batch(*source, source->train_batch(step), operation)) {
        EXPECT_FALSE(documented_held_out(pair.first, pair.second)) << pair.first << operation << pair.second;
        seen.insert(pair);
      }
    }
    // 9600 uniform draws cover about 1 - e^-1.07 = 66% of the 9000 addition pairs (and more of subtraction's):
    // a sampler stuck on a few pairs would fall far short.
    EXPECT_GT(seen.size(), operation == '+' ? 5000u : 3500u);
  }
}

TEST(DataArithmetic, EvalBatchesAndProblemsUseOnlyHeldOutPairsInOrder) {
  const ArithmeticTask task(ArithmeticOperation::Addition, slice_of(0, 1, 4, 30), 5);
  for (std::int64_t index = 0; index < task.eval_batch_count(); ++index) {
    for (const auto& pair : check_batch(task, task.eval_batch(index), '+')) {
      EXPECT_TRUE(documented_held_out(pair.first, pair.second)) << pair.first << '+' << pair.second;
    }
  }
  // Batch 0 reads the held-out list from its start: 4 rows of 3 problems.
  const std::string first_row = task.decode(row_of(task.eval_batch(0).inputs, 0, 30));
  const auto& held_out = task.held_out_pairs();
  for (int problem = 0; problem < 3; ++problem) {
    const ParsedProblem parsed = parse_problem(first_row.substr(problem * 10, 10));
    EXPECT_EQ(parsed.left, held_out[problem].left);
    EXPECT_EQ(parsed.right, held_out[problem].right);
  }

  const std::vector<Problem> problems = task.eval_problems(25);
  ASSERT_EQ(problems.size(), 25u);
  for (std::size_t i = 0; i < problems.size(); ++i) {
    const std::string prompt = task.decode(problems[i].prompt);
    const std::string answer = task.decode(problems[i].answer);
    ASSERT_EQ(prompt.size(), 6u);
    ASSERT_EQ(answer.size(), 4u);
    const ParsedProblem parsed = parse_problem(prompt + answer);
    EXPECT_EQ(parsed.left, held_out[i].left);
    EXPECT_EQ(parsed.right, held_out[i].right);
    EXPECT_EQ(parsed.answer, parsed.left + parsed.right) << prompt << answer;
    EXPECT_EQ(problems[i].answer.back(), task.stop_token());
  }
  EXPECT_EQ(task.eval_problems(0).size(), 0u);
  EXPECT_EQ(task.eval_problems(100000).size(), held_out.size());
}

TEST(DataArithmetic, TwoRanksSeeWhatOneRankWithTwiceTheRowsSees) {
  for (const char* spec : {"addition", "subtraction"}) testing_support::expect_two_ranks_match_one(spec, 3, 34, 11, 4);
}

TEST(DataArithmetic, BatchesDependOnlyOnSeedAndStep) {
  auto source = make_data_source("addition", slice_of(0, 1, 4, 40), 1234);
  auto same_seed = make_data_source("addition", slice_of(0, 1, 4, 40), 1234);
  auto other_seed = make_data_source("addition", slice_of(0, 1, 4, 40), 1235);
  EXPECT_EQ(source->train_batch(9).inputs, same_seed->train_batch(9).inputs);
  EXPECT_EQ(source->train_batch(9).inputs, source->train_batch(9).inputs);
  EXPECT_NE(source->train_batch(9).inputs, other_seed->train_batch(9).inputs);
  EXPECT_NE(source->train_batch(9).inputs, source->train_batch(10).inputs);
  // The held-out set is fixed: the same for every seed, so runs are compared on the same problems.
  EXPECT_EQ(source->eval_batch(3).inputs, other_seed->eval_batch(3).inputs);
  EXPECT_NE(source->eval_batch(3).inputs, source->eval_batch(4).inputs);
}

TEST(DataArithmetic, RejectsBadSlicesSpecsAndText) {
  EXPECT_NE(testing_support::error_message_of([] { make_data_source("addition", slice_of(0, 1, 2, 9), 1); }).find("T = 9"),
            std::string::npos);
  EXPECT_NE(testing_support::error_message_of([] { make_data_source("subtraction", slice_of(0, 1, 2, 9), 1); }).find("T = 9"),
            std::string::npos);
  EXPECT_NE(testing_support::error_message_of([] { make_data_source("addition", slice_of(0, 0, 2, 20), 1); }).find("world size 0"),
            std::string::npos);
  EXPECT_NE(testing_support::error_message_of([] { make_data_source("addition", slice_of(2, 2, 2, 20), 1); }).find("rank 2"),
            std::string::npos);
  EXPECT_NE(testing_support::error_message_of([] { make_data_source("addition", slice_of(-1, 2, 2, 20), 1); }).find("rank -1"),
            std::string::npos);
  EXPECT_NE(testing_support::error_message_of([] { make_data_source("addition", slice_of(0, 1, 0, 20), 1); }).find("B = 0"),
            std::string::npos);
  EXPECT_NE(testing_support::error_message_of([] { make_data_source("addition", slice_of(0, 1, 2, 0), 1); }).find("T = 0"),
            std::string::npos);

  const std::string unknown = testing_support::error_message_of([] { make_data_source("multiplication", slice_of(0, 1, 2, 20), 1); });
  for (const char* expected : {"multiplication", "addition", "subtraction", "text:PATH", "tokens:PATH"}) {
    EXPECT_NE(unknown.find(expected), std::string::npos) << unknown;
  }

  auto source = make_data_source("addition", slice_of(0, 1, 2, 20), 1);
  EXPECT_NE(testing_support::error_message_of([&] { source->encode("12 + 3"); }).find("' '"), std::string::npos);
  EXPECT_NE(testing_support::error_message_of([&] { source->encode("12x"); }).find("'x'"), std::string::npos);
  EXPECT_NE(testing_support::error_message_of([&] { source->decode({3, 16}); }).find("16"), std::string::npos);
  EXPECT_NE(testing_support::error_message_of([&] { source->eval_batch(16); }).find("16"), std::string::npos);
  EXPECT_NE(testing_support::error_message_of([&] { source->eval_batch(-1); }).find("-1"), std::string::npos);
}

}  // namespace
}  // namespace ladder
