// Fused causal self-attention, forward (flash style): out and the log-sum-exp of each query row, by an online
// softmax over key tiles; the T×T scores exist only in registers. The layout is in flash_attention_tiles.cuh.
#include "common/ops/cuda/flash_attention_tiles.cuh"

namespace ladder::ops::cuda {
namespace flash {
namespace {

// Block (b·heads + h, tile): out and lse of 64 query rows, by an online softmax over key tiles. The heaviest
// query tiles (last in the sequence, most keys) are launched first.
template <class S, class L>
__global__ void __launch_bounds__(L::kThreads)
    flash_forward_kernel(S* out, float* lse, const S* qkv, int T, std::int64_t C, std::int64_t heads, int head_size,
                         float scale_log2) {
  constexpr int kCapacity = L::kCapacity;
  constexpr int kChunk = 16;  // keys scored together: independent dot products keep the FMA pipes busy
  __shared__ __align__(16) float keys[L::kTileRows][kCapacity];
  __shared__ __align__(16) float values[L::kTileRows][kCapacity];
  const std::int64_t head_index = blockIdx.x, b = head_index / heads, h = head_index % heads;
  const int first_row = static_cast<int>(gridDim.y - 1 - blockIdx.y) * kRowsPerBlock;
  const int part = threadIdx.x % L::kLanesPerRow, row = first_row + static_cast<int>(threadIdx.x) / L::kLanesPerRow;
  const bool valid = row < T;
  const std::int64_t row_stride = 3 * C;
  const S* head = qkv + b * T * row_stride + h * head_size;  // q of (b, position 0, h)

  float query[L::kDims], accumulator[L::kDims];
  load_owned<L>(query, head + row * row_stride, valid, head_size, part, scale_log2);
#pragma unroll
  for (int i = 0; i < L::kDims; ++i) accumulator[i] = 0.0f;
  float running_max = -INFINITY, running_sum = 0.0f;

  const int last_row = min(first_row + kRowsPerBlock, T) - 1;
  for (int tile_start = 0; tile_start <= last_row; tile_start += L::kTileRows) {
    __syncthreads();  // everyone is done with the previous tile
    load_tile<L>(keys, head + tile_start * row_stride + C, row_stride, T - tile_start, head_size);
    load_tile<L>(values, head + tile_start * row_stride + 2 * C, row_stride, T - tile_start, head_size);
    __syncthreads();
    for (int chunk = 0; chunk < L::kTileRows; chunk += kChunk) {
      const int chunk_start = tile_start + chunk;
      if (__all_sync(kFullMask, chunk_start > row)) break;  // these keys come after every row of this warp
      float scores[kChunk];
#pragma unroll
      for (int c = 0; c < kChunk; ++c) scores[c] = owned_dot<L>(query, keys[chunk + c], part);
      float chunk_max = -INFINITY;
#pragma unroll
      for (int c = 0; c < kChunk; ++c) {
        const float score = group_sum<L>(scores[c]);  // every lane shuffles, masked or not
        scores[c] = chunk_start + c <= row ? score : -INFINITY;  // causal mask
        chunk_max = fmaxf(chunk_max, scores[c]);
      }
      // Rescale what was summed against the old maximum; `shift` avoids -inf - -inf while nothing is seen yet.
      const float new_max = fmaxf(running_max, chunk_max);
      const float shift = new_max == -INFINITY ? 0.0f : new_max;
      const float correction = exp2f(running_max - shift);
      running_sum *= correction;
#pragma unroll
      for (int i = 0; i < L::kDims; ++i) accumulator[i] *= correction;
#pragma unroll
      for (int c = 0; c < kChunk; ++c) {
        const float weight = exp2f(scores[c] - shift);
        running_sum += weight;
        owned_axpy<L>(accumulator, weight, values[chunk + c], part);
      }
      running_max = new_max;
    }
  }
  if (valid) {
    S* out_row = out + (b * T + row) * C + h * head_size;
    const float inverse_sum = 1.0f / running_sum;
#pragma unroll
    for (int i = 0; i < L::kDims; ++i) {
      const int d = owned_dim<L>(part, i);
      if (d < head_size) out_row[d] = store_value<S>(accumulator[i] * inverse_sum);
    }
    if (part == 0) lse[head_index * T + row] = (running_max + log2f(running_sum)) * kLn2;
  }
}

}  // namespace
}  // namespace flash

using namespace flash;  // the kernels and the layout above, for the entry point below

template <class S>
void flash_attention_forward(S* out, float* lse, const S* qkv, std::int64_t B, std::int64_t T, std::int64_t C,
                             std::int64_t heads) {
  if (B * T * heads == 0) return;
  const int head_size = static_cast<int>(C / heads);
  const float scale_log2 = kLog2e / std::sqrt(static_cast<float>(head_size));
  const dim3 grid = attention_grid(B, T, heads, "flash_attention_forward");
  with_head_capacity(head_size, "flash_attention_forward", [&](auto capacity) {
    using L = Layout<decltype(capacity)::value, kForwardDimsPerLane>;
    flash_forward_kernel<S, L><<<grid, L::kThreads>>>(
        out, lse, qkv, static_cast<int>(T), C, heads, head_size, scale_log2);
    check_launch("flash_forward_kernel");
  });
}

#define LADDER_INSTANTIATE_CUDA_FLASH_FORWARD(S)                                                        \
  template void flash_attention_forward<S>(S*, float*, const S*, std::int64_t, std::int64_t, std::int64_t, \
                                           std::int64_t);
LADDER_FOR_EACH_CUDA_STORAGE_TYPE(LADDER_INSTANTIATE_CUDA_FLASH_FORWARD)

}  // namespace ladder::ops::cuda
