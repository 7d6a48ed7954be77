// Causal self-attention that materialises the probabilities att (B,heads,T,T), the GPU twin of cpu/attention.cpp.
// Written for clarity, not speed (the model trains with flash_attention.cu): one warp per query row, lane j of the
// warp handling keys j, j+32, ..., with no shared memory and no limit on the head size.
//
// Layout: a row of qkv (3C) is [q of all heads | k of all heads | v of all heads]; head h owns the head_size
// entries starting at h·head_size within each third. A "row" below is one (b, h, t): row = (b·heads + h)·T + t,
// which is also the index of its att row.
#include <cmath>

#include "common/ops/cuda/cuda_check.hpp"
#include "common/ops/cuda/cuda_ops.hpp"
#include "common/ops/cuda/device_scratch.hpp"
#include "common/ops/cuda/device_values.cuh"

namespace ladder::ops::cuda {
namespace {

constexpr int kWarpsPerBlock = 4;
constexpr unsigned kFullMask = 0xffffffffu;

// Where one (b, h) head's q, k and v rows start, and how far apart consecutive positions are.
struct HeadView {
  std::int64_t b, h, t;        // batch, head and position of this warp's row
  std::int64_t qkv_offset;     // element offset of q of (b, position 0, h) in qkv
  std::int64_t row_stride;     // 3C
  std::int64_t channels;       // C: q → k → v are C apart
};

__device__ HeadView head_view(std::int64_t row, std::int64_t T, std::int64_t C, std::int64_t heads,
                              std::int64_t head_size) {
  HeadView view;
  view.t = row % T;
  view.h = (row / T) % heads;
  view.b = row / (T * heads);
  view.row_stride = 3 * C;
  view.channels = C;
  view.qkv_offset = view.b * T * view.row_stride + view.h * head_size;
  return view;
}

// How many lanes hold an item when `remaining` items are left: all 32, or fewer in the last round.
__device__ int lanes_needed(std::int64_t remaining) { return remaining < 32 ? static_cast<int>(remaining) : 32; }

// Σ_i a[i]·b[i] over one head's entries (each lane does a whole dot product by itself).
template <class S>
__device__ float head_dot(const S* a, const S* b, int head_size) {
  float sum = 0.0f;
  for (int i = 0; i < head_size; ++i) sum += load_value(a[i]) * load_value(b[i]);
  return sum;
}

// One warp per query row: the scores against keys 0..t, their softmax (written to att, zeros above the
// diagonal), and out = Σ p·v. The softmax is normalised in two passes: per-lane running max and sum, combined
// across the warp, then each probability recomputed as exp(score - max) / sum.
template <class S>
__global__ void attention_forward_kernel(S* out, S* att, const S* qkv, std::int64_t B, std::int64_t T,
                                         std::int64_t C, std::int64_t heads, int head_size, float score_scale) {
  const int lane = threadIdx.x % 32;
  const std::int64_t row = static_cast<std::int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32;
  if (row >= B * heads * T) return;  // the whole warp leaves together
  const HeadView view = head_view(row, T, C, heads, head_size);
  const S* base = qkv + view.qkv_offset;
  const S* query = base + view.t * view.row_stride;
  auto score = [&](std::int64_t j) {
    return head_dot(query, base + j * view.row_stride + view.channels, head_size) * score_scale;
  };

  float lane_max = -INFINITY, lane_sum = 0.0f;
  for (std::int64_t j = lane; j <= view.t; j += 32) {
    const float s = score(j);
    const float new_max = fmaxf(lane_max, s);
    lane_sum = lane_sum * expf(lane_max - new_max) + expf(s - new_max);
    lane_max = new_max;
  }
  const float row_max = warp_max(lane_max);  // finite: lane 0 always has key 0
  const float row_sum = warp_sum(lane_max == -INFINITY ? 0.0f : lane_sum * expf(lane_max - row_max));
  const float inverse_sum = 1.0f / row_sum;

  S* att_row = att + row * T;
  S* out_row = out + (view.b * T + view.t) * C + view.h * head_size;
  // Lane owns channel c0 + lane of the output; the probabilities of 32 keys at a time are computed by one lane
  // each and broadcast with a shuffle.
  for (int c0 = 0; c0 < head_size; c0 += 32) {
    const int c = c0 + lane;
    float accumulator = 0.0f;
    for (std::int64_t key0 = 0; key0 <= view.t; key0 += 32) {
      const std::int64_t j = key0 + lane;
      float probability = 0.0f;
      if (j <= view.t) {
        probability = expf(score(j) - row_max) * inverse_sum;
        if (c0 == 0) att_row[j] = store_value<S>(probability);
      }
      const int keys = lanes_needed(view.t + 1 - key0);  // the same in every lane, as __shfl_sync requires
      for (int k = 0; k < keys; ++k) {
        const float p = __shfl_sync(kFullMask, probability, k);
        if (c < head_size) accumulator += p * load_value(base[(key0 + k) * view.row_stride + 2 * view.channels + c]);
      }
    }
    if (c < head_size) out_row[c] = store_value<S>(accumulator);
  }
  for (std::int64_t j = view.t + 1 + lane; j < T; j += 32) att_row[j] = store_value<S>(0.0f);
}

// One warp per query row t: dp_j = dout_t·v_j and D_t = Σ_j p_j·dp_j (saved for the key pass), then
// dq_t += Σ_j ds_j·k_j with ds_j = p_j·(dp_j - D_t)·scale.
template <class S>
__global__ void attention_backward_query_kernel(S* dqkv, float* dout_dot_out, const S* dout, const S* qkv,
                                                const S* att, std::int64_t B, std::int64_t T, std::int64_t C,
                                                std::int64_t heads, int head_size, float score_scale) {
  const int lane = threadIdx.x % 32;
  const std::int64_t row = static_cast<std::int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32;
  if (row >= B * heads * T) return;
  const HeadView view = head_view(row, T, C, heads, head_size);
  const S* base = qkv + view.qkv_offset;
  const S* att_row = att + row * T;
  const S* dy = dout + (view.b * T + view.t) * C + view.h * head_size;
  auto dprobability = [&](std::int64_t j) {
    return head_dot(dy, base + j * view.row_stride + 2 * view.channels, head_size);
  };

  float lane_sum = 0.0f;
  for (std::int64_t j = lane; j <= view.t; j += 32) lane_sum += load_value(att_row[j]) * dprobability(j);
  const float weighted_dprobability = warp_sum(lane_sum);
  if (lane == 0) dout_dot_out[row] = weighted_dprobability;

  S* dquery = dqkv + view.qkv_offset + view.t * view.row_stride;
  for (int c0 = 0; c0 < head_size; c0 += 32) {
    const int c = c0 + lane;
    float accumulator = 0.0f;
    for (std::int64_t key0 = 0; key0 <= view.t; key0 += 32) {
      const std::int64_t j = key0 + lane;
      float dscore = 0.0f;
      if (j <= view.t) dscore = load_value(att_row[j]) * (dprobability(j) - weighted_dprobability) * score_scale;
      const int keys = lanes_needed(view.t + 1 - key0);
      for (int k = 0; k < keys; ++k) {
        const float ds = __shfl_sync(kFullMask, dscore, k);
        if (c < head_size) accumulator += ds * load_value(base[(key0 + k) * view.row_stride + view.channels + c]);
      }
    }
    if (c < head_size) dquery[c] = store_value<S>(load_value(dquery[c]) + accumulator);
  }
}

// One warp per key row j (same row numbering): over the queries i >= j, dv_j += Σ_i p_ij·dout_i and
// dk_j += Σ_i ds_ij·q_i, each ds_ij recomputed by one lane from att, dout, v and the saved D_i.
template <class S>
__global__ void attention_backward_key_kernel(S* dqkv, const float* dout_dot_out, const S* dout, const S* qkv,
                                              const S* att, std::int64_t B, std::int64_t T, std::int64_t C,
                                              std::int64_t heads, int head_size, float score_scale) {
  const int lane = threadIdx.x % 32;
  const std::int64_t row = static_cast<std::int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32;
  if (row >= B * heads * T) return;
  const HeadView view = head_view(row, T, C, heads, head_size);
  const std::int64_t j = view.t;
  const std::int64_t head_rows = row - j;  // row of (b, h, position 0)
  const S* base = qkv + view.qkv_offset;
  const S* value = base + j * view.row_stride + 2 * view.channels;
  const S* dout_head = dout + view.b * T * C + view.h * head_size;

  S* dkey = dqkv + view.qkv_offset + j * view.row_stride + view.channels;
  S* dvalue = dkey + view.channels;
  for (int c0 = 0; c0 < head_size; c0 += 32) {
    const int c = c0 + lane;
    float dkey_sum = 0.0f, dvalue_sum = 0.0f;
    for (std::int64_t query0 = j; query0 < T; query0 += 32) {
      const std::int64_t i = query0 + lane;
      float probability = 0.0f, dscore = 0.0f;
      if (i < T) {
        probability = load_value(att[(head_rows + i) * T + j]);
        const float dprobability = head_dot(dout_head + i * C, value, head_size);
        dscore = probability * (dprobability - dout_dot_out[head_rows + i]) * score_scale;
      }
      const int queries = lanes_needed(T - query0);
      for (int k = 0; k < queries; ++k) {
        const float p = __shfl_sync(kFullMask, probability, k);
        const float ds = __shfl_sync(kFullMask, dscore, k);
        if (c < head_size) {
          dvalue_sum += p * load_value(dout_head[(query0 + k) * C + c]);
          dkey_sum += ds * load_value(base[(query0 + k) * view.row_stride + c]);
        }
      }
    }
    if (c < head_size) {
      dkey[c] = store_value<S>(load_value(dkey[c]) + dkey_sum);
      dvalue[c] = store_value<S>(load_value(dvalue[c]) + dvalue_sum);
    }
  }
}

}  // namespace

template <class S>
void attention_forward(S* out, S* att, const S* qkv, std::int64_t B, std::int64_t T, std::int64_t C,
                       std::int64_t heads) {
  const int head_size = static_cast<int>(C / heads);
  const float score_scale = 1.0f / std::sqrt(static_cast<float>(head_size));
  attention_forward_kernel<<<blocks_for(B * heads * T, kWarpsPerBlock), kWarpsPerBlock * 32>>>(
      out, att, qkv, B, T, C, heads, head_size, score_scale);
  check_launch("attention_forward_kernel");
}

template <class S>
void attention_backward(S* dqkv, const S* dout, const S* qkv, const S* att, std::int64_t B, std::int64_t T,
                        std::int64_t C, std::int64_t heads) {
  const int head_size = static_cast<int>(C / heads);
  const float score_scale = 1.0f / std::sqrt(static_cast<float>(head_size));
  const std::int64_t rows = B * heads * T;
  // D_i = Σ_j p_ij·dp_ij of every query row, written by the query pass and read by the key pass.
  float* saved_sums = static_cast<float*>(device_scratch(static_cast<std::size_t>(rows) * sizeof(float)));
  // The query pass writes only the q third of dqkv and the key pass only the k and v thirds: no overlap.
  attention_backward_query_kernel<<<blocks_for(rows, kWarpsPerBlock), kWarpsPerBlock * 32>>>(
      dqkv, saved_sums, dout, qkv, att, B, T, C, heads, head_size, score_scale);
  check_launch("attention_backward_query_kernel");
  attention_backward_key_kernel<<<blocks_for(rows, kWarpsPerBlock), kWarpsPerBlock * 32>>>(
      dqkv, saved_sums, dout, qkv, att, B, T, C, heads, head_size, score_scale);
  check_launch("attention_backward_key_kernel");
}

#define LADDER_INSTANTIATE_CUDA_ATTENTION(S)                                                                      \
  template void attention_forward<S>(S*, S*, const S*, std::int64_t, std::int64_t, std::int64_t, std::int64_t);   \
  template void attention_backward<S>(S*, const S*, const S*, const S*, std::int64_t, std::int64_t, std::int64_t, \
                                      std::int64_t);
LADDER_FOR_EACH_CUDA_STORAGE_TYPE(LADDER_INSTANTIATE_CUDA_ATTENTION)

}  // namespace ladder::ops::cuda
