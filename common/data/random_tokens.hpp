/// @file random_tokens.hpp
/// @brief Uniformly random token ids of any vocabulary, made on the fly: for benchmarks and memory plans.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/data/data_source.hpp"

namespace ladder {

/// `random:V`: token ids drawn uniformly from [0, V), each a pure function of (seed, batch, global row,
/// position), so no file is needed and N ranks read exactly the rows one rank would. There is nothing to learn
/// (the loss stays near ln V): it exists to give a model of GPT-2's vocabulary something to run on, for timing
/// (the benchmarks' GPT-2 124M step) and for planning memory (`--device meta`). Held-out batches come from their
/// own stream.
class RandomTokenSource : public DataSource {
 public:
  /// The largest vocabulary accepted: token ids must fit the model's int32 inputs with room to spare.
  static constexpr int kMaxVocabSize = 1 << 24;
  /// Held-out batches it offers.
  static constexpr std::int64_t kEvalBatchCount = 4;

  /// Tokens from [0, vocab_size) for `slice`; throws LadderError naming a vocabulary outside [2, 2^24].
  RandomTokenSource(int vocab_size, const DataSlice& slice, std::uint64_t seed);

  std::string describe() const override;                                       ///< "random tokens: V = ...".
  int vocab_size() const override { return vocab_size_; }                      ///< V.
  Batch train_batch(std::int64_t step) const override;                         ///< Fresh random rows.
  std::int64_t eval_batch_count() const override { return kEvalBatchCount; }   ///< 4.
  Batch eval_batch(std::int64_t index) const override;                         ///< Rows of the held-out stream.
  std::vector<Problem> eval_problems(int) const override { return {}; }        ///< None.
  std::int32_t stop_token() const override { return -1; }                      ///< None.
  std::string decode(const std::vector<std::int32_t>& tokens) const override;  ///< "<id> <id> ...".
  /// Always throws: random ids have no text.
  std::vector<std::int32_t> encode(const std::string& text) const override;

 private:
  Batch batch(std::uint64_t stream, std::int64_t number) const;
  int vocab_size_;
  DataSlice slice_;
  std::uint64_t seed_;
};

/// The vocabulary of a `random:V` spec; throws LadderError naming the spec when V is not a whole number.
int random_vocab_size(const std::string& spec_value);

}  // namespace ladder
