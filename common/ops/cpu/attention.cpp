// Causal multi-head self-attention, the llm.c CPU reference: one (batch, position, head) at a time.
//
// Layout: a row of qkv (3C) is [q of all heads | k of all heads | v of all heads]; head h owns the
// head_size = C/heads entries starting at h·head_size within each third.
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
  // One row of probabilities and one head's output, reused for every (b, t, h).
  Scratch<Compute> probabilities(T);
  Scratch<Compute> head_out(head_size);
  for (std::int64_t b = 0; b < B; ++b) {
    const ComputeView<S> batch_qkv(qkv + b * T * row_stride, T * row_stride);
    const Compute* x = batch_qkv.data();
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
        S* att_row = att + ((b * heads + h) * T + t) * T;
        std::fill(head_out.data(), head_out.data() + head_size, Compute(0));
        for (std::int64_t t2 = 0; t2 <= t; ++t2) {
          probabilities[t2] *= inverse_sum;
          att_row[t2] = store<S>(probabilities[t2]);
          const Compute* value = x + t2 * row_stride + 2 * C + h * head_size;
          for (std::int64_t i = 0; i < head_size; ++i) head_out[i] += probabilities[t2] * value[i];
        }
        for (std::int64_t t2 = t + 1; t2 < T; ++t2) att_row[t2] = store<S>(Compute(0));
        store_span(head_out.data(), out + (b * T + t) * C + h * head_size, head_size);
      }
    }
  }
}

template <class S>
void attention_backward(S* dqkv, const S* dout, const S* qkv, const S* att, std::int64_t B, std::int64_t T,
                        std::int64_t C, std::int64_t heads) {
  using Compute = ComputeType<S>;
  const std::int64_t head_size = C / heads;
  const std::int64_t row_stride = 3 * C;
  const Compute score_scale = Compute(1) / std::sqrt(static_cast<Compute>(head_size));
  Scratch<Compute> probabilities(T);   // the saved att row of (b, h, t)
  Scratch<Compute> dprobabilities(T);  // dL/d(that row)
  for (std::int64_t b = 0; b < B; ++b) {
    const ComputeView<S> batch_qkv(qkv + b * T * row_stride, T * row_stride);
    const ComputeView<S> batch_dout(dout + b * T * C, T * C);
    // Keys and values receive contributions from every later query: gather them all in the compute type and
    // round into dqkv once per batch row.
    const ComputeTarget<S> batch_dqkv(dqkv + b * T * row_stride, T * row_stride, /*keep_contents=*/true);
    const Compute* x = batch_qkv.data();
    Compute* dx = batch_dqkv.data();
    for (std::int64_t t = 0; t < T; ++t) {
      for (std::int64_t h = 0; h < heads; ++h) {
        load_span(att + ((b * heads + h) * T + t) * T, probabilities.data(), t + 1);
        const Compute* dy = batch_dout.data() + t * C + h * head_size;
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
    batch_dqkv.store();
  }
}

#define LADDER_INSTANTIATE_ATTENTION(S)                                                                           \
  template void attention_forward<S>(S*, S*, const S*, std::int64_t, std::int64_t, std::int64_t, std::int64_t);   \
  template void attention_backward<S>(S*, const S*, const S*, const S*, std::int64_t, std::int64_t, std::int64_t, \
                                      std::int64_t);
LADDER_FOR_EACH_STORAGE_TYPE(LADDER_INSTANTIATE_ATTENTION)

}  // namespace ladder::ops::cpu
