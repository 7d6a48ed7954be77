#include "common/data/random_tokens.hpp"

#include <charconv>

#include "common/data/data_slice.hpp"
#include "common/data/token_ids_text.hpp"
#include "common/error.hpp"
#include "common/random.hpp"

namespace ladder {

namespace {
constexpr std::uint64_t kTrainStream = 1;
constexpr std::uint64_t kHeldOutStream = 2;
}  // namespace

int random_vocab_size(const std::string& spec_value) {
  int vocab = 0;
  const auto [end, error] = std::from_chars(spec_value.data(), spec_value.data() + spec_value.size(), vocab);
  LADDER_CHECK(error == std::errc() && end == spec_value.data() + spec_value.size(), "data random:", spec_value,
               ": expected a whole number of token ids after 'random:' (e.g. random:50257)");
  return vocab;
}

RandomTokenSource::RandomTokenSource(int vocab_size, const DataSlice& slice, std::uint64_t seed)
    : vocab_size_(vocab_size), slice_(slice), seed_(seed) {
  check_data_slice(slice);
  LADDER_CHECK(vocab_size >= 2 && vocab_size <= kMaxVocabSize, "data random:", vocab_size,
               ": the vocabulary must hold between 2 and ", kMaxVocabSize, " token ids");
}

std::string RandomTokenSource::describe() const {
  return make_message("random tokens: uniform ids in [0, ", vocab_size_, "), ", slice_.sequence_length,
                      " per row; nothing to learn (for timing and memory plans)");
}

Batch RandomTokenSource::batch(std::uint64_t stream, std::int64_t number) const {
  const int T = slice_.sequence_length;
  Batch result{slice_.batch_size, T, {}, {}};
  result.inputs.resize(static_cast<std::size_t>(slice_.batch_size) * T);
  result.targets.resize(result.inputs.size());
  for (int row = 0; row < slice_.batch_size; ++row) {
    const auto global = static_cast<std::uint64_t>(global_row(slice_, row));
    // T + 1 tokens per row: the inputs, and each one's successor as its target.
    auto token = [&](int position) {
      const std::uint64_t bits = hash_combine(hash_combine(seed_, stream), static_cast<std::uint64_t>(number), global,
                                              static_cast<std::uint64_t>(position));
      return static_cast<std::int32_t>(bits % static_cast<std::uint64_t>(vocab_size_));
    };
    for (int position = 0; position < T; ++position) {
      result.inputs[static_cast<std::size_t>(row) * T + position] = token(position);
      result.targets[static_cast<std::size_t>(row) * T + position] = token(position + 1);
    }
  }
  return result;
}

Batch RandomTokenSource::train_batch(std::int64_t step) const {
  LADDER_CHECK(step >= 0, "training step ", step, " must be non-negative");
  return batch(kTrainStream, step);
}

Batch RandomTokenSource::eval_batch(std::int64_t index) const {
  LADDER_CHECK(index >= 0 && index < kEvalBatchCount, "held-out batch index ", index, " must lie in [0, ",
               kEvalBatchCount, ")");
  return batch(kHeldOutStream, index);
}

std::string RandomTokenSource::decode(const std::vector<std::int32_t>& tokens) const {
  return token_ids_text(tokens, vocab_size_, "random tokens");
}

std::vector<std::int32_t> RandomTokenSource::encode(const std::string& text) const {
  throw LadderError(make_message("random tokens have no text: cannot encode the prompt \"", text, "\""));
}

}  // namespace ladder
