// Causal self-attention without the T×T probability matrix (flash style), the readable CPU reference of the
// fused GPU kernels in ops/cuda/flash_attention.cu.
//
// Forward: each query row walks its keys in blocks, keeping a running maximum m, a running sum l of
// exp(score - m) and an unnormalised output accumulator; when a block raises the maximum, what was summed so far
// is rescaled by exp(m_old - m_new). At the end out = accumulator / l and lse = m + log(l), the log-sum-exp of the
// row's scaled scores, which is all backward needs to recompute any probability: p = exp(score - lse).
//
// Backward, with D_i = dout_i · out_i (equal to Σ_j p_ij·dp_ij, the softmax-backward term):
//   dp_ij = dout_i · v_j,  ds_ij = p_ij·(dp_ij - D_i),
//   dq_i += scale·Σ_j ds_ij·k_j,  dk_j += scale·Σ_i ds_ij·q_i,  dv_j += Σ_i p_ij·dout_i.
// Layout as in attention.cpp: a row of qkv (3C) is [q of all heads | k of all heads | v of all heads].
#include <algorithm>
#include <cmath>
#include <limits>

#include "common/ops/cpu/compute_values.hpp"
#include "common/ops/cpu/cpu_ops.hpp"

namespace ladder::ops::cpu {
namespace {

// Keys per block of the online softmax. Any size gives the same result up to rounding; a small one makes the
// rescaling visible even for short test sequences.
constexpr std::int64_t kKeyBlock = 16;

template <class Compute>
Compute dot(const Compute* a, const Compute* b, std::int64_t count) {
  Compute sum = 0;
  for (std::int64_t i = 0; i < count; ++i) sum += a[i] * b[i];
  return sum;
}

}  // namespace

template <class S>
void flash_attention_forward(S* out, ComputeType<S>* lse, const S* qkv, std::int64_t B, std::int64_t T,
                             std::int64_t C, std::int64_t heads) {
  using Compute = ComputeType<S>;
  const std::int64_t head_size = C / heads;
  const std::int64_t row_stride = 3 * C;
  const Compute score_scale = Compute(1) / std::sqrt(static_cast<Compute>(head_size));
  Scratch<Compute> block_scores(kKeyBlock);
  Scratch<Compute> accumulator(head_size);
  for (std::int64_t b = 0; b < B; ++b) {
    const ComputeView<S> batch_qkv(qkv + b * T * row_stride, T * row_stride);
    const Compute* x = batch_qkv.data();
    for (std::int64_t h = 0; h < heads; ++h) {
      for (std::int64_t t = 0; t < T; ++t) {
        const Compute* query = x + t * row_stride + h * head_size;
        Compute running_max = -std::numeric_limits<Compute>::infinity();
        Compute running_sum = 0;
        std::fill(accumulator.data(), accumulator.data() + head_size, Compute(0));
        // Causal: keys 0..t, in blocks; every block holds at least one key, so its maximum is finite.
        for (std::int64_t block_start = 0; block_start <= t; block_start += kKeyBlock) {
          const std::int64_t block_end = std::min(block_start + kKeyBlock, t + 1);
          Compute block_max = -std::numeric_limits<Compute>::infinity();
          for (std::int64_t j = block_start; j < block_end; ++j) {
            const Compute* key = x + j * row_stride + C + h * head_size;
            block_scores[j - block_start] = dot(query, key, head_size) * score_scale;
            block_max = std::max(block_max, block_scores[j - block_start]);
          }
          const Compute new_max = std::max(running_max, block_max);
          // What was summed relative to the old maximum now counts relative to the new one (exp(-inf) = 0 at
          // the first block, when nothing was summed yet).
          const Compute correction = std::exp(running_max - new_max);
          running_sum *= correction;
          for (std::int64_t i = 0; i < head_size; ++i) accumulator[i] *= correction;
          for (std::int64_t j = block_start; j < block_end; ++j) {
            const Compute weight = std::exp(block_scores[j - block_start] - new_max);
            running_sum += weight;
            const Compute* value = x + j * row_stride + 2 * C + h * head_size;
            for (std::int64_t i = 0; i < head_size; ++i) accumulator[i] += weight * value[i];
          }
          running_max = new_max;
        }
        const Compute inverse_sum = Compute(1) / running_sum;
        for (std::int64_t i = 0; i < head_size; ++i) accumulator[i] *= inverse_sum;
        store_span(accumulator.data(), out + (b * T + t) * C + h * head_size, head_size);
        lse[(b * heads + h) * T + t] = running_max + std::log(running_sum);
      }
    }
  }
}

template <class S>
void flash_attention_backward(S* dqkv, const S* dout, const S* qkv, const S* out, const ComputeType<S>* lse,
                              std::int64_t B, std::int64_t T, std::int64_t C, std::int64_t heads) {
  using Compute = ComputeType<S>;
  const std::int64_t head_size = C / heads;
  const std::int64_t row_stride = 3 * C;
  const Compute score_scale = Compute(1) / std::sqrt(static_cast<Compute>(head_size));
  for (std::int64_t b = 0; b < B; ++b) {
    const ComputeView<S> batch_qkv(qkv + b * T * row_stride, T * row_stride);
    const ComputeView<S> batch_dout(dout + b * T * C, T * C);
    const ComputeView<S> batch_out(out + b * T * C, T * C);
    // Keys and values gather contributions from every later query: sum them in the compute type, round once.
    const ComputeTarget<S> batch_dqkv(dqkv + b * T * row_stride, T * row_stride, /*keep_contents=*/true);
    const Compute* x = batch_qkv.data();
    Compute* dx = batch_dqkv.data();
    for (std::int64_t h = 0; h < heads; ++h) {
      for (std::int64_t i = 0; i < T; ++i) {
        const Compute* query = x + i * row_stride + h * head_size;
        Compute* dquery = dx + i * row_stride + h * head_size;
        const Compute* dy = batch_dout.data() + i * C + h * head_size;
        const Compute* y = batch_out.data() + i * C + h * head_size;
        const Compute row_lse = lse[(b * heads + h) * T + i];
        // Σ_j p_ij·dp_ij = dout_i · Σ_j p_ij·v_j = dout_i · out_i: no pass over the keys needed.
        const Compute dout_dot_out = dot(dy, y, head_size);
        for (std::int64_t j = 0; j <= i; ++j) {
          const Compute* key = x + j * row_stride + C + h * head_size;
          const Compute* value = x + j * row_stride + 2 * C + h * head_size;
          Compute* dkey = dx + j * row_stride + C + h * head_size;
          Compute* dvalue = dx + j * row_stride + 2 * C + h * head_size;
          const Compute probability = std::exp(dot(query, key, head_size) * score_scale - row_lse);
          const Compute dprobability = dot(dy, value, head_size);
          // score = scale·q·k, so the scale appears once in each of dq and dk.
          const Compute dscore = probability * (dprobability - dout_dot_out) * score_scale;
          for (std::int64_t c = 0; c < head_size; ++c) {
            dquery[c] += dscore * key[c];
            dkey[c] += dscore * query[c];
            dvalue[c] += probability * dy[c];
          }
        }
      }
    }
    batch_dqkv.store();
  }
}

#define LADDER_INSTANTIATE_FLASH_ATTENTION(S)                                                                     \
  template void flash_attention_forward<S>(S*, ComputeType<S>*, const S*, std::int64_t, std::int64_t,            \
                                           std::int64_t, std::int64_t);                                           \
  template void flash_attention_backward<S>(S*, const S*, const S*, const S*, const ComputeType<S>*, std::int64_t, \
                                            std::int64_t, std::int64_t, std::int64_t);
LADDER_FOR_EACH_STORAGE_TYPE(LADDER_INSTANTIATE_FLASH_ATTENTION)

}  // namespace ladder::ops::cpu
