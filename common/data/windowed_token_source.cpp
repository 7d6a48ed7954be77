#include "common/data/windowed_token_source.hpp"

#include <algorithm>
#include <utility>

#include "common/data/data_slice.hpp"
#include "common/error.hpp"

namespace ladder {

WindowedTokenSource::WindowedTokenSource(std::vector<std::uint16_t> tokens, int vocab_size, const DataSlice& slice,
                                         const std::string& source_name, const std::string& unit)
    : tokens_(std::move(tokens)), vocab_size_(vocab_size), slice_(slice) {
  check_data_slice(slice);
  const auto total = static_cast<std::int64_t>(tokens_.size());
  const std::int64_t needed = minimum_token_count(slice.sequence_length);
  LADDER_CHECK(total >= needed, source_name, " is too short: it has ", total, " ", unit, " but needs at least ",
               needed, " (one training and one held-out window of T + 1 = ", slice.sequence_length + 1, " ", unit,
               "); use a longer file or a smaller sequence length");
  // A window reads T inputs and, one further on, T targets: T + 1 tokens, so each part needs that many.
  const std::int64_t held_out = std::max<std::int64_t>(total / 10, slice.sequence_length + 1);
  train_token_count_ = total - held_out;
}

std::int64_t WindowedTokenSource::minimum_token_count(int sequence_length) {
  return 2 * (static_cast<std::int64_t>(sequence_length) + 1);
}

Batch WindowedTokenSource::window_batch(std::int64_t batch_number, std::int64_t part_start,
                                        std::int64_t part_length) const {
  const int T = slice_.sequence_length;
  Batch batch;
  batch.batch_size = slice_.batch_size;
  batch.sequence_length = T;
  batch.inputs.resize(static_cast<std::size_t>(slice_.batch_size) * T);
  batch.targets.resize(batch.inputs.size());
  // Window starts lie in [0, part_length - T), so the last target, start + T, stays inside the part.
  const std::int64_t start_count = part_length - T;
  for (int row = 0; row < slice_.batch_size; ++row) {
    // The product counts tokens read since the start of training, so it cannot overflow 64 bits in practice.
    const std::int64_t sequence_position = (batch_number * global_row_count(slice_) + global_row(slice_, row)) * T;
    const std::int64_t start = part_start + sequence_position % start_count;
    const std::size_t out = static_cast<std::size_t>(row) * T;
    for (int t = 0; t < T; ++t) {
      batch.inputs[out + t] = tokens_[start + t];
      batch.targets[out + t] = tokens_[start + t + 1];
    }
  }
  return batch;
}

Batch WindowedTokenSource::train_batch(std::int64_t step) const {
  LADDER_CHECK(step >= 0, "training step ", step, " must be non-negative");
  return window_batch(step, 0, train_token_count_);
}

std::int64_t WindowedTokenSource::eval_batch_count() const {
  const std::int64_t tokens_per_batch = global_row_count(slice_) * slice_.sequence_length;
  return std::clamp<std::int64_t>(held_out_token_count() / tokens_per_batch, 1, kMaxEvalBatchCount);
}

Batch WindowedTokenSource::eval_batch(std::int64_t index) const {
  LADDER_CHECK(index >= 0 && index < eval_batch_count(), "held-out batch index ", index, " must lie in [0, ",
               eval_batch_count(), ")");
  return window_batch(index, train_token_count_, held_out_token_count());
}

}  // namespace ladder
