// Token and position embeddings: the one layer that is indexed by the data rather than computed from it.
#include <algorithm>

#include "common/error.hpp"
#include "common/ops/cpu/compute_values.hpp"
#include "common/ops/cpu/cpu_ops.hpp"

namespace ladder::ops::cpu {

namespace {

// An out-of-range id would read (or, backward, write) outside wte: refuse it loudly.
void check_tokens(const std::int32_t* tokens, std::int64_t count, std::int64_t V) {
  for (std::int64_t position = 0; position < count; ++position) {
    LADDER_CHECK(tokens[position] >= 0 && tokens[position] < V, "embedding: token ", tokens[position], " at position ",
                 position, " is outside the vocabulary [0, ", V, ")");
  }
}

// gradient_row += sums, each element rounded once.
template <class S>
void add_row(S* gradient_row, const ComputeType<S>* sums, std::int64_t C) {
  const ComputeTarget<S> row(gradient_row, C, /*keep_contents=*/true);
  for (std::int64_t c = 0; c < C; ++c) row[c] += sums[c];
  row.store();
}

}  // namespace

template <class S>
void embedding_forward(S* out, const std::int32_t* tokens, const S* wte, const S* wpe, std::int64_t B, std::int64_t T,
                       std::int64_t C, std::int64_t V) {
  check_tokens(tokens, B * T, V);
  for (std::int64_t b = 0; b < B; ++b) {
    for (std::int64_t t = 0; t < T; ++t) {
      const std::int64_t position = b * T + t;
      const ComputeView<S> token_row(wte + tokens[position] * C, C);
      const ComputeView<S> position_row(wpe + t * C, C);
      const ComputeTarget<S> out_row(out + position * C, C, /*keep_contents=*/false);
      for (std::int64_t c = 0; c < C; ++c) out_row[c] = token_row[c] + position_row[c];
      out_row.store();
    }
  }
}

template <class S>
void embedding_backward(S* dwte, S* dwpe, const S* dout, const std::int32_t* tokens, std::int64_t B, std::int64_t T,
                        std::int64_t C, std::int64_t V) {
  using Compute = ComputeType<S>;
  const std::int64_t positions = B * T;
  check_tokens(tokens, positions, V);

  // A token that occurs k times receives k gradient rows. Grouping the positions by token lets us sum those rows
  // in the compute type and round into dwte once per token (not k times), in an order that does not depend on
  // anything but the batch.
  Scratch<std::int64_t> order(positions);
  for (std::int64_t position = 0; position < positions; ++position) order[position] = position;
  std::stable_sort(order.data(), order.data() + positions,
                   [tokens](std::int64_t left, std::int64_t right) { return tokens[left] < tokens[right]; });

  Scratch<Compute> row_sum(C);
  for (std::int64_t group_start = 0; group_start < positions;) {
    const std::int32_t token = tokens[order[group_start]];
    std::fill(row_sum.data(), row_sum.data() + C, Compute(0));
    std::int64_t group_end = group_start;
    for (; group_end < positions && tokens[order[group_end]] == token; ++group_end) {
      const ComputeView<S> dout_row(dout + order[group_end] * C, C);
      for (std::int64_t c = 0; c < C; ++c) row_sum[c] += dout_row[c];
    }
    add_row(dwte + token * C, row_sum.data(), C);
    group_start = group_end;
  }

  // Position t appears once in every sequence of the batch.
  for (std::int64_t t = 0; t < T; ++t) {
    std::fill(row_sum.data(), row_sum.data() + C, Compute(0));
    for (std::int64_t b = 0; b < B; ++b) {
      const ComputeView<S> dout_row(dout + (b * T + t) * C, C);
      for (std::int64_t c = 0; c < C; ++c) row_sum[c] += dout_row[c];
    }
    add_row(dwpe + t * C, row_sum.data(), C);
  }
}

#define LADDER_INSTANTIATE_EMBEDDING(S)                                                                                \
  template void embedding_forward<S>(S*, const std::int32_t*, const S*, const S*, std::int64_t, std::int64_t,          \
                                     std::int64_t, std::int64_t);                                                      \
  template void embedding_backward<S>(S*, S*, const S*, const std::int32_t*, std::int64_t, std::int64_t, std::int64_t, \
                                      std::int64_t);
LADDER_FOR_EACH_STORAGE_TYPE(LADDER_INSTANTIATE_EMBEDDING)

}  // namespace ladder::ops::cpu
