/// @file arithmetic_task.hpp
/// @brief The default synthetic task: two-digit addition or subtraction, answers written ones digit first.
///
/// A problem is 10 tokens: "07+45=250;" means 07 + 45 = 052, the answer reversed so that a small causal
/// model emits the ones digit first and can carry into the next one, as on paper. The loss counts only the
/// answer: the predictions made at '=' and at the first three answer digits (4 targets per problem).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "common/data/data_source.hpp"

namespace ladder {

/// Which arithmetic the task asks for.
enum class ArithmeticOperation { Addition, Subtraction };

/// The two operands of one problem as written: left op right.
struct OperandPair {
  int left = 0;   ///< first operand, 0..99
  int right = 0;  ///< second operand, 0..99 (never above left for subtraction)
};

/// Two-digit arithmetic problems packed back to back into rows, with a fixed held-out split of operand pairs.
class ArithmeticTask : public DataSource {
 public:
  static constexpr int kVocabSize = 16;          ///< '0'..'9' are ids 0..9, then + - = ; * .
  static constexpr std::int32_t kPlus = 10;      ///< '+'
  static constexpr std::int32_t kMinus = 11;     ///< '-'
  static constexpr std::int32_t kEquals = 12;    ///< '='
  static constexpr std::int32_t kStop = 13;      ///< ';' ends every answer
  static constexpr std::int32_t kTimes = 14;     ///< '*' (reserved for a multiplication task)
  static constexpr std::int32_t kPad = 15;       ///< '.' fills a row after its last whole problem
  static constexpr int kProblemLength = 10;      ///< "ab+cd=" then 3 reversed answer digits and ';'
  static constexpr int kPromptLength = 6;        ///< "ab+cd="
  /// Salt of the held-out hash; independent of the run seed so the split is the same in every run.
  static constexpr std::uint64_t kHeldOutSalt = 0x5EED;
  /// Held-out batches per evaluation: enough rows for a steady held-out loss, few enough to stay cheap.
  static constexpr std::int64_t kEvalBatchCount = 16;

  /// A task for `operation`; throws LadderError when T < 10 (a row must hold one whole problem).
  ArithmeticTask(ArithmeticOperation operation, const DataSlice& slice, std::uint64_t seed);

  std::string describe() const override;                                   ///< Task, split sizes, packing.
  int vocab_size() const override { return kVocabSize; }                   ///< 16.
  Batch train_batch(std::int64_t step) const override;                     ///< Random non-held-out pairs.
  std::int64_t eval_batch_count() const override { return kEvalBatchCount; }  ///< Always 16.
  Batch eval_batch(std::int64_t index) const override;                     ///< Held-out pairs in order.
  std::vector<Problem> eval_problems(int count) const override;           ///< First held-out pairs.
  std::int32_t stop_token() const override { return kStop; }               ///< ';'.
  std::string decode(const std::vector<std::int32_t>& tokens) const override;  ///< "07+45=250;".
  std::vector<std::int32_t> encode(const std::string& text) const override;   ///< Inverse of decode.

  /// True when pair (left, right) belongs to the held-out split: hash_combine(kHeldOutSalt, left, right) % 10 == 0.
  static bool is_held_out(int left, int right);
  /// The 10 tokens of one problem, e.g. {0,7,+,4,5,=,2,5,0,;} for 07+45.
  std::array<std::int32_t, kProblemLength> problem_tokens(OperandPair pair) const;
  /// Every held-out pair this task can ask, in a fixed order (left-major, then right).
  const std::vector<OperandPair>& held_out_pairs() const { return held_out_pairs_; }
  /// Problems in one row of T tokens: floor(T / 10).
  int problems_per_row() const { return slice_.sequence_length / kProblemLength; }

 private:
  /// The result of left op right, 0..198.
  int answer_of(OperandPair pair) const;
  /// Pair for problem `slot` of global row `row` at training step `step`, drawn with rejection.
  OperandPair sample_training_pair(std::int64_t step, std::int64_t row, int slot) const;
  /// Writes a problem's tokens and its 4 answer targets at problem position `slot` of batch row `row`.
  void write_problem(Batch& batch, int row, int slot, OperandPair pair) const;
  /// A B×T batch of padding with no targets, ready for write_problem.
  Batch empty_batch() const;

  ArithmeticOperation operation_;
  DataSlice slice_;
  std::uint64_t seed_;
  std::vector<OperandPair> held_out_pairs_;
  std::int64_t training_pair_count_ = 0;
};

}  // namespace ladder
