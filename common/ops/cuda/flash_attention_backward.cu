// Fused causal self-attention, backward (flash style): the probabilities are recomputed tile by tile from qkv and
// the forward's log-sum-exp, with D_i = dout_i·out_i; one kernel for dq, one for dk and dv, writing disjoint
// thirds of dqkv. The layout is in flash_attention_tiles.cuh.
#include "common/ops/cuda/flash_attention_tiles.cuh"

namespace ladder::ops::cuda {
namespace flash {
namespace {

// Block (b·heads + h, tile): dq of 64 query rows, dq_i += scale·Σ_j p_ij·(dp_ij - D_i)·k_j over key tiles, with
// p_ij = exp(score_ij - lse_i) recomputed and D_i = dout_i·out_i. Heaviest tiles first, as in forward.
template <class S, class L>
__global__ void __launch_bounds__(L::kThreads)
    flash_backward_query_kernel(S* dqkv, const S* dout, const S* qkv, const S* out, const float* lse, int T,
                                std::int64_t C, std::int64_t heads, int head_size, float scale_log2,
                                float score_scale) {
  constexpr int kCapacity = L::kCapacity;
  constexpr int kChunk = 8;
  __shared__ __align__(16) float keys[L::kTileRows][kCapacity];
  __shared__ __align__(16) float values[L::kTileRows][kCapacity];
  const std::int64_t head_index = blockIdx.x, b = head_index / heads, h = head_index % heads;
  const int first_row = static_cast<int>(gridDim.y - 1 - blockIdx.y) * kRowsPerBlock;
  const int part = threadIdx.x % L::kLanesPerRow, row = first_row + static_cast<int>(threadIdx.x) / L::kLanesPerRow;
  const bool valid = row < T;
  const std::int64_t row_stride = 3 * C;
  const S* head = qkv + b * T * row_stride + h * head_size;
  const std::int64_t channel_offset = (b * T + row) * C + h * head_size;  // of this row in dout and out

  float query[L::kDims], dy[L::kDims], dquery[L::kDims];
  load_owned<L>(query, head + row * row_stride, valid, head_size, part, scale_log2);
  load_owned<L>(dy, dout + channel_offset, valid, head_size, part, 1.0f);
  float partial = 0.0f;
#pragma unroll
  for (int i = 0; i < L::kDims; ++i) {
    const int d = owned_dim<L>(part, i);
    if (valid && d < head_size) partial += dy[i] * load_value(out[channel_offset + d]);
    dquery[i] = 0.0f;
  }
  const float dout_dot_out = group_sum<L>(partial);
  const float lse_log2 = valid ? lse[head_index * T + row] * kLog2e : 0.0f;

  const int last_row = min(first_row + kRowsPerBlock, T) - 1;
  for (int tile_start = 0; tile_start <= last_row; tile_start += L::kTileRows) {
    __syncthreads();
    load_tile<L>(keys, head + tile_start * row_stride + C, row_stride, T - tile_start, head_size);
    load_tile<L>(values, head + tile_start * row_stride + 2 * C, row_stride, T - tile_start, head_size);
    __syncthreads();
    for (int chunk = 0; chunk < L::kTileRows; chunk += kChunk) {
      const int chunk_start = tile_start + chunk;
      if (__all_sync(kFullMask, chunk_start > row)) break;
      float scores[kChunk], dprobabilities[kChunk];
#pragma unroll
      for (int c = 0; c < kChunk; ++c) {
        scores[c] = owned_dot<L>(query, keys[chunk + c], part);
        dprobabilities[c] = owned_dot<L>(dy, values[chunk + c], part);
      }
#pragma unroll
      for (int c = 0; c < kChunk; ++c) {
        const float score = group_sum<L>(scores[c]);
        const float dprobability = group_sum<L>(dprobabilities[c]);
        // exp2(-inf) = 0 masks a key after the row without a branch (branches here make the compiler spill).
        const float probability = exp2f(chunk_start + c <= row ? score - lse_log2 : -INFINITY);
        owned_axpy<L>(dquery, probability * (dprobability - dout_dot_out), keys[chunk + c], part);
      }
    }
  }
  if (valid) add_owned<L>(dqkv + (b * T + row) * row_stride + h * head_size, dquery, head_size, part, score_scale);
}

// Block (b·heads + h, tile): dk and dv of 64 key rows j, over the query tiles i >= j:
// dv_j += Σ_i p_ij·dout_i and dk_j += scale·Σ_i p_ij·(dp_ij - D_i)·q_i. Each block also derives lse (in log2
// units) and D_i of the rows of its query tile. The first key tiles have the most queries and start first.
template <class S, class L>
__global__ void __launch_bounds__(L::kThreads)
    flash_backward_key_kernel(S* dqkv, const S* dout, const S* qkv, const S* out, const float* lse, int T,
                              std::int64_t C, std::int64_t heads, int head_size, float scale_log2,
                              float score_scale) {
  constexpr int kCapacity = L::kCapacity;
  constexpr int kChunk = 8;
  __shared__ __align__(16) float queries[L::kTileRows][kCapacity];
  __shared__ __align__(16) float douts[L::kTileRows][kCapacity];
  __shared__ float query_lse_log2[L::kTileRows];
  __shared__ float query_dout_dot_out[L::kTileRows];
  const std::int64_t head_index = blockIdx.x, b = head_index / heads, h = head_index % heads;
  const int first_key = static_cast<int>(blockIdx.y) * kRowsPerBlock;
  const int group = static_cast<int>(threadIdx.x) / L::kLanesPerRow, part = threadIdx.x % L::kLanesPerRow;
  const int key_row = first_key + group;
  const bool valid = key_row < T;
  const std::int64_t row_stride = 3 * C;
  const S* head = qkv + b * T * row_stride + h * head_size;
  const std::int64_t head_channels = b * T * C + h * head_size;  // of (b, position 0, h) in dout and out

  float key[L::kDims], value[L::kDims], dkey[L::kDims], dvalue[L::kDims];
  load_owned<L>(key, head + key_row * row_stride + C, valid, head_size, part, scale_log2);
  load_owned<L>(value, head + key_row * row_stride + 2 * C, valid, head_size, part, 1.0f);
#pragma unroll
  for (int i = 0; i < L::kDims; ++i) dkey[i] = dvalue[i] = 0.0f;

  for (int tile_start = first_key; tile_start < T; tile_start += L::kTileRows) {
    __syncthreads();
    load_tile<L>(queries, head + tile_start * row_stride, row_stride, T - tile_start, head_size);
    load_tile<L>(douts, dout + head_channels + tile_start * C, C, T - tile_start, head_size);
    // Group r fills row r's statistics: at most one pass, taken by whole warps (Layout's static_assert).
    for (int r = group; r < L::kTileRows; r += kRowsPerBlock) {
      const int query_row = tile_start + r;
      const bool query_valid = query_row < T;
      const std::int64_t offset = head_channels + static_cast<std::int64_t>(query_row) * C;
      float partial = 0.0f;
#pragma unroll
      for (int i = 0; i < L::kDims; ++i) {
        const int d = owned_dim<L>(part, i);
        if (query_valid && d < head_size) partial += load_value(dout[offset + d]) * load_value(out[offset + d]);
      }
      const float total = group_sum<L>(partial);
      if (part == 0) {
        query_dout_dot_out[r] = total;
        query_lse_log2[r] = query_valid ? lse[head_index * T + query_row] * kLog2e : 0.0f;
      }
    }
    __syncthreads();
    for (int chunk = 0; chunk < L::kTileRows; chunk += kChunk) {
      const int chunk_start = tile_start + chunk;
      if (__all_sync(kFullMask, chunk_start + kChunk - 1 < key_row)) continue;  // queries before all our keys
      float scores[kChunk], dprobabilities[kChunk];
#pragma unroll
      for (int c = 0; c < kChunk; ++c) {
        scores[c] = owned_dot<L>(key, queries[chunk + c], part);
        dprobabilities[c] = owned_dot<L>(value, douts[chunk + c], part);
      }
#pragma unroll
      for (int c = 0; c < kChunk; ++c) {
        const int query_row = chunk_start + c;
        const float score = group_sum<L>(scores[c]);
        const float dprobability = group_sum<L>(dprobabilities[c]);
        const float probability =
            exp2f(query_row >= key_row && query_row < T ? score - query_lse_log2[chunk + c] : -INFINITY);
        owned_axpy<L>(dvalue, probability, douts[chunk + c], part);
        owned_axpy<L>(dkey, probability * (dprobability - query_dout_dot_out[chunk + c]), queries[chunk + c],
                              part);
      }
    }
  }
  if (valid) {
    S* dkey_row = dqkv + (b * T + key_row) * row_stride + C + h * head_size;
    add_owned<L>(dkey_row, dkey, head_size, part, score_scale);
    add_owned<L>(dkey_row + C, dvalue, head_size, part, 1.0f);
  }
}

}  // namespace
}  // namespace flash

using namespace flash;  // the kernels and the layout above, for the entry point below

template <class S>
void flash_attention_backward(S* dqkv, const S* dout, const S* qkv, const S* out, const float* lse, std::int64_t B,
                              std::int64_t T, std::int64_t C, std::int64_t heads) {
  if (B * T * heads == 0) return;
  const int head_size = static_cast<int>(C / heads);
  const float score_scale = 1.0f / std::sqrt(static_cast<float>(head_size));
  const float scale_log2 = kLog2e * score_scale;
  const dim3 grid = attention_grid(B, T, heads, "flash_attention_backward");
  // The query kernel writes only the q third of dqkv, the key kernel only the k and v thirds.
  with_head_capacity(head_size, "flash_attention_backward", [&](auto capacity) {
    using QueryLayout = Layout<decltype(capacity)::value, kQueryDimsPerLane>;
    using KeyLayout = Layout<decltype(capacity)::value, kKeyDimsPerLane>;
    flash_backward_query_kernel<S, QueryLayout><<<grid, QueryLayout::kThreads>>>(
        dqkv, dout, qkv, out, lse, static_cast<int>(T), C, heads, head_size, scale_log2, score_scale);
    check_launch("flash_backward_query_kernel");
    flash_backward_key_kernel<S, KeyLayout><<<grid, KeyLayout::kThreads>>>(
        dqkv, dout, qkv, out, lse, static_cast<int>(T), C, heads, head_size, scale_log2, score_scale);
    check_launch("flash_backward_key_kernel");
  });
}

#define LADDER_INSTANTIATE_CUDA_FLASH_BACKWARD(S)                                                                   \
  template void flash_attention_backward<S>(S*, const S*, const S*, const S*, const float*, std::int64_t,          \
                                            std::int64_t, std::int64_t, std::int64_t);
LADDER_FOR_EACH_CUDA_STORAGE_TYPE(LADDER_INSTANTIATE_CUDA_FLASH_BACKWARD)

}  // namespace ladder::ops::cuda
