/// @file data_source.hpp
/// @brief Where batches come from: the synthetic arithmetic tasks (default), UTF-8 text, GPT-2 token shards.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace ladder {

/// Which rows of each global batch this process reads: rank r of `world` takes rows [r·B, (r+1)·B).
struct DataSlice {
  int rank = 0;          ///< this process's rank
  int world = 1;         ///< number of ranks sharing each global batch
  int batch_size = 4;    ///< B: rows per rank
  int sequence_length = 64;  ///< T: tokens per row
};

/// B×T token ids and their next-token targets; a target of -1 takes no part in the loss.
struct Batch {
  int batch_size = 0;                ///< B
  int sequence_length = 0;           ///< T
  std::vector<std::int32_t> inputs;   ///< B·T token ids, row-major
  std::vector<std::int32_t> targets;  ///< B·T next-token ids or -1
  /// Number of targets that count towards the loss.
  std::int64_t valid_target_count() const;
};

/// A held-out question with one right answer, scored by exact match of greedy decoding.
struct Problem {
  std::vector<std::int32_t> prompt;  ///< tokens given to the model, e.g. "07+45="
  std::vector<std::int32_t> answer;  ///< tokens it must produce, ending with the stop token
};

/// A source of training and held-out batches for one rank. Batches are a pure function of
/// (seed, step, global row), so N ranks with B rows see exactly what one rank with N·B rows sees.
class DataSource {
 public:
  virtual ~DataSource() = default;
  /// One line for the log: what this is and how big.
  virtual std::string describe() const = 0;
  /// Token ids are in [0, vocab_size).
  virtual int vocab_size() const = 0;
  /// This rank's slice of global training batch number `step`.
  virtual Batch train_batch(std::int64_t step) const = 0;
  /// Number of distinct held-out batches (for the held-out loss).
  virtual std::int64_t eval_batch_count() const = 0;
  /// This rank's slice of held-out batch `index` (0 <= index < eval_batch_count()).
  virtual Batch eval_batch(std::int64_t index) const = 0;
  /// Held-out exact-match problems (empty for plain text and token shards), at most `count`.
  virtual std::vector<Problem> eval_problems(int count) const = 0;
  /// Token that ends a generated answer, or -1 when the source has none.
  virtual std::int32_t stop_token() const = 0;
  /// Human-readable text of tokens (digits and signs, bytes, or "<id>" for GPT-2 ids).
  virtual std::string decode(const std::vector<std::int32_t>& tokens) const = 0;
  /// Tokens of a text prompt; throws LadderError naming characters the vocabulary cannot express.
  virtual std::vector<std::int32_t> encode(const std::string& text) const = 0;
};

/// The row length a spec is best trained with, or 0 for "the model's context". The arithmetic tasks answer 10:
/// one problem per row, always at the same positions, so the position table learns one layout instead of one per
/// packing offset (measured: several times faster to learn on the small model).
int preferred_sequence_length(const std::string& spec);

/// Builds a source from a spec: "addition" (default), "subtraction", "text:PATH" (UTF-8 bytes), or
/// "tokens:PATH" (llm.c GPT-2 .bin shard). Throws LadderError naming the spec or file when it is unusable.
std::unique_ptr<DataSource> make_data_source(const std::string& spec, const DataSlice& slice, std::uint64_t seed);

}  // namespace ladder
