/// @file windowed_token_source.hpp
/// @brief What text files and token shards share: a token sequence split 90/10, read in windows of T + 1.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/data/data_source.hpp"

namespace ladder {

/// A fixed token sequence: the first 90% trains, the last 10% (at least T + 1 tokens) is held out.
/// Row g of global batch s reads the window starting at ((s · world · B + g) · T) mod (part length − T),
/// so consecutive rows and steps walk through the data in order, and ranks tile each global batch.
class WindowedTokenSource : public DataSource {
 public:
  int vocab_size() const override { return vocab_size_; }                    ///< 256 or 50257.
  Batch train_batch(std::int64_t step) const override;                       ///< Windows of the training part.
  std::int64_t eval_batch_count() const override;                            ///< Held-out tokens / (world·B·T), 1..64.
  Batch eval_batch(std::int64_t index) const override;                       ///< Windows of the held-out part.
  std::vector<Problem> eval_problems(int) const override { return {}; }      ///< None: plain sequences.
  std::int32_t stop_token() const override { return -1; }                    ///< None.

  /// Tokens in the training part (the first ones).
  std::int64_t train_token_count() const { return train_token_count_; }
  /// Tokens in the held-out part (the last ones): 10% of all, at least T + 1.
  std::int64_t held_out_token_count() const { return static_cast<std::int64_t>(tokens_.size()) - train_token_count_; }
  /// Fewest tokens that hold one training and one held-out window of T + 1 tokens: 2 (T + 1).
  static std::int64_t minimum_token_count(int sequence_length);
  /// Most held-out batches an evaluation reads, so that evaluating a large file stays quick.
  static constexpr std::int64_t kMaxEvalBatchCount = 64;

 protected:
  /// Takes the whole sequence; throws LadderError naming `source_name` and the counts when it is too short.
  /// `unit` names what a token is in that message ("bytes" or "tokens").
  WindowedTokenSource(std::vector<std::uint16_t> tokens, int vocab_size, const DataSlice& slice,
                      const std::string& source_name, const std::string& unit);
  /// The whole sequence, training part first.
  const std::vector<std::uint16_t>& tokens() const { return tokens_; }
  /// The slice this source serves.
  const DataSlice& slice() const { return slice_; }

 private:
  /// This rank's rows of global batch `batch_number`, windows taken from tokens [part_start, part_start + part_length).
  Batch window_batch(std::int64_t batch_number, std::int64_t part_start, std::int64_t part_length) const;

  std::vector<std::uint16_t> tokens_;
  int vocab_size_;
  DataSlice slice_;
  std::int64_t train_token_count_ = 0;
};

}  // namespace ladder
