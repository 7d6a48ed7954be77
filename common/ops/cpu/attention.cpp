// Causal multi-head self-attention, the llm.c CPU reference: one (batch, position, head) at a time.
//
// Layout: a row of qkv (3C) is [q of all heads | k of all heads | v of all heads]; head h owns the
// head_size = C/heads entries starting at h·head_size within each third.
// The sequences of a batch do not touch each other, so they are spread over the worker pool, each thread with
// its own scratch (made before the loop: the memory accountant is not thread-safe).
#include <algorithm>
#include <cmath>
#include <limits>

#include "common/ops/cpu/compute_values.hpp"
#include "common/ops/cpu/cpu_ops.hpp"

namespace ladder::ops::cpu {

template <class S>
void attention_forward(S* out, S* att, const S* qkv, std::int64_t B, std::int64_t T, std::int64_t C,
                       std::int64_t heads) {
  using Compute = ComputeType<S>;
  const std::int64_t head_size = C / heads;
  const std::int64_t row_stride = 3 * C;
  const Compute score_scale = Compute(1) / std::sqrt(static_cast<Compute>(head_size));
  // Per thread: the sequence's qkv in compute values (fp16/bf16 only), one row of probabilities, one head's output.
  const std::int64_t sequence_room = kIsReducedPrecision<S> ? T * row_stride : 0;
  const std::int64_t room_per_thread = sequence_room + T + head_size;
  const Scratch<Compute> scratch(worker_threads() * room_per_thread);
  parallel_rows(B, T * row_stride, [&, score_scale](std::int64_t b, int slot) {
    Compute* const room = scratch.data() + slot * room_per_thread;
    const Compute* x = compute_values_in(qkv + b * T * row_stride, room, T * row_stride);
    Compute* const probabilities = room + sequence_room;
    Compute* const head_out = probabilities + T;
    for (std::int64_t t = 0; t < T; ++t) {
      for (std::int64_t h = 0; h < heads; ++h) {
        const Compute* query = x + t * row_stride + h * head_size;
        // Scores against every earlier-or-equal position; later positions are masked out (causality).
        Compute max_score = -std::numeric_limits<Compute>::infinity();
        for (std::int64_t t2 = 0; t2 <= t; ++t2) {
          const Compute* key = x + t2 * row_stride + C + h * head_size;
          Compute dot = 0;
          for (std::int64_t i = 0; i < head_size; ++i) dot += query[i] * key[i];
          probabilities[t2] = dot * score_scale;
          max_score = std::max(max_score, probabilities[t2]);
        }
        // Subtracting the row maximum keeps exp() from overflowing; it cancels in the normalisation.
        Compute sum = 0;
        for (std::int64_t t2 = 0; t2 <= t; ++t2) {
          probabilities[t2] = std::exp(probabilities[t2] - max_score);
          sum += probabilities[t2];
        }
        const Compute inverse_sum = Compute(1) / sum;
        for (std::int64_t t2 = 0; t2 <= t; ++t2) probabilities[t2] *= inverse_sum;
        S* att_row = att + ((b * heads + h) * T + t) * T;
        store_span(probabilities, att_row, t + 1);
        std::fill(att_row + t + 1, att_row + T, store<S>(Compute(0)));
        std::fill(head_out, head_out + head_size, Compute(0));
        for (std::int64_t t2 = 0; t2 <= t; ++t2) {
          const Compute* value = x + t2 * row_stride + 2 * C + h * head_size;
          for (std::int64_t i = 0; i < head_size; ++i) head_out[i] += probabilities[t2] * value[i];
        }
        store_span(head_out, out + (b * T + t) * C + h * head_size, head_size);
      }
    }
  });
}

template <class S>
void attention_backward(S* dqkv, const S* dout, const S* qkv, const S* att, std::int64_t B, std::int64_t T,
                        std::int64_t C, std::int64_t heads) {
  using Compute = ComputeType<S>;
  const std::int64_t head_size = C / heads;
  const std::int64_t row_stride = 3 * C;
  const Compute score_scale = Compute(1) / std::sqrt(static_cast<Compute>(head_size));
  // Per thread, for fp16/bf16: the sequence's qkv, dout and dqkv in compute values; then, for every storage type,
  // the saved att row of (b, h, t) and dL/d(that row).
  const std::int64_t sequence_room = kIsReducedPrecision<S> ? T * (2 * row_stride + C) : 0;
  const std::int64_t room_per_thread = sequence_room + 2 * T;
  const Scratch<Compute> scratch(worker_threads() * room_per_thread);
  // score_scale by value: through a reference it would be reloaded after every store to dx.
  parallel_rows(B, T * row_stride, [&, score_scale](std::int64_t b, int slot) {
    Compute* const room = scratch.data() + slot * room_per_thread;
    const Compute* x = compute_values_in(qkv + b * T * row_stride, room, T * row_stride);
    const Compute* const dout_values = compute_values_in(dout + b * T * C, room + T * row_stride, T * C);
    // Keys and values receive contributions from every later query: gather them all in the compute type and
    // round into dqkv once per sequence.
    S* const sequence_dqkv = dqkv + b * T * row_stride;
    Compute* dx;
    if constexpr (kIsReducedPrecision<S>) {
      dx = room + T * (row_stride + C);
      load_span(sequence_dqkv, dx, T * row_stride);
    } else {
      dx = sequence_dqkv;
    }
    Compute* const probabilities = room + sequence_room;
    Compute* const dprobabilities = probabilities + T;
    for (std::int64_t t = 0; t < T; ++t) {
      for (std::int64_t h = 0; h < heads; ++h) {
        load_span(att + ((b * heads + h) * T + t) * T, probabilities, t + 1);
        const Compute* dy = dout_values + t * C + h * head_size;
        // out = Σ p[t2]·v[t2], so dp[t2] = dy·v[t2] and dv[t2] += p[t2]·dy.
        for (std::int64_t t2 = 0; t2 <= t; ++t2) {
          const Compute* value = x + t2 * row_stride + 2 * C + h * head_size;
          Compute* dvalue = dx + t2 * row_stride + 2 * C + h * head_size;
          Compute dot = 0;
          for (std::int64_t i = 0; i < head_size; ++i) {
            dot += dy[i] * value[i];
            dvalue[i] += probabilities[t2] * dy[i];
          }
          dprobabilities[t2] = dot;
        }
        // Softmax backward: dscore[t2] = p[t2]·(dp[t2] - Σ p·dp), an O(T) form of the Jacobian product.
        Compute weighted_dprobability = 0;
        for (std::int64_t t2 = 0; t2 <= t; ++t2) weighted_dprobability += probabilities[t2] * dprobabilities[t2];
        const Compute* query = x + t * row_stride + h * head_size;
        Compute* dquery = dx + t * row_stride + h * head_size;
        for (std::int64_t t2 = 0; t2 <= t; ++t2) {
          // score = scale·q·k, so dq += dscore·scale·k and dk += dscore·scale·q.
          const Compute dscore = probabilities[t2] * (dprobabilities[t2] - weighted_dprobability) * score_scale;
          const Compute* key = x + t2 * row_stride + C + h * head_size;
          Compute* dkey = dx + t2 * row_stride + C + h * head_size;
          for (std::int64_t i = 0; i < head_size; ++i) {
            dquery[i] += dscore * key[i];
            dkey[i] += dscore * query[i];
          }
        }
      }
    }
    if constexpr (kIsReducedPrecision<S>) store_span(dx, sequence_dqkv, T * row_stride);
  });
}

#define LADDER_INSTANTIATE_ATTENTION(S)                                                                           \
  template void attention_forward<S>(S*, S*, const S*, std::int64_t, std::int64_t, std::int64_t, std::int64_t);   \
  template void attention_backward<S>(S*, const S*, const S*, const S*, std::int64_t, std::int64_t, std::int64_t, \
                                      std::int64_t);
LADDER_FOR_EACH_STORAGE_TYPE(LADDER_INSTANTIATE_ATTENTION)

}  // namespace ladder::ops::cpu
