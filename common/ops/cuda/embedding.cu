// Token and position embeddings on the GPU. Forward is a gather; backward is a scatter-add, which we make
// deterministic without atomics: positions are grouped by token (on the host, from a 4·B·T-byte copy of the
// tokens), and each token's gradient row is summed in a fixed order and added into dwte once, as the CPU does.
#include <algorithm>
#include <cstdint>
#include <limits>

#include "common/error.hpp"
#include "common/memory.hpp"
#include "common/ops/cuda/cuda_ops.hpp"
#include "common/ops/cuda/device_scratch.hpp"
#include "common/ops/cuda/device_values.cuh"
#include "common/ops/cuda/launch_sizes.cuh"

namespace ladder::ops::cuda {

namespace {

// Threads per block of the embedding kernels; each thread owns one channel of a row.
constexpr int kEmbeddingThreads = 256;

// One block per position (b, t); its threads walk the C channels.
template <class S>
__global__ void embedding_forward_kernel(S* out, const std::int32_t* tokens, const S* wte, const S* wpe,
                                         std::int64_t T, std::int64_t C) {
  const std::int64_t position = blockIdx.x;
  const std::int64_t t = position % T;
  const S* token_row = wte + static_cast<std::int64_t>(tokens[position]) * C;
  const S* position_row = wpe + t * C;
  S* out_row = out + position * C;
  for (std::int64_t c = threadIdx.x; c < C; c += blockDim.x) {
    out_row[c] = store_value<S>(load_value(token_row[c]) + load_value(position_row[c]));
  }
}

// Position t appears once in every sequence: thread (t, c) sums dout over b in order and adds once into dwpe.
// Element (b, t, c) of dout sits at b·T·C + (t·C + c), so the thread's flat index i = t·C + c needs no division.
template <class S>
__global__ void embedding_position_backward_kernel(S* dwpe, const S* dout, std::int64_t B, std::int64_t T,
                                                   std::int64_t C) {
  const std::int64_t row_elements = T * C;
  for (std::int64_t i = grid_stride_start(); i < row_elements; i += grid_stride_step()) {
    float sum = 0.0f;
    for (std::int64_t b = 0; b < B; ++b) sum += load_value(dout[b * row_elements + i]);
    dwpe[i] = store_value<S>(load_value(dwpe[i]) + sum);
  }
}

// Block (group, column chunk): the group is one distinct token and the positions where it occurs,
// sorted_positions[group_starts[group] .. group_starts[group + 1]) in increasing order. Each thread sums its
// channel over those positions in that order, then adds into the token's row of dwte: one rounding per token.
// No two blocks write the same element, so no atomics are needed.
template <class S>
__global__ void embedding_token_backward_kernel(S* dwte, const S* dout, const std::int32_t* sorted_positions,
                                                const std::int32_t* group_tokens, const std::int32_t* group_starts,
                                                std::int64_t C) {
  const std::int64_t c = static_cast<std::int64_t>(blockIdx.y) * blockDim.x + threadIdx.x;
  if (c >= C) return;
  const std::int64_t group = blockIdx.x;
  const std::int32_t first = group_starts[group];
  const std::int32_t end = group_starts[group + 1];
  float sum = 0.0f;
  // Frequent tokens have long groups; unrolling lets the loads of several rows be in flight at once (the
  // additions still happen in order).
#pragma unroll 4
  for (std::int32_t k = first; k < end; ++k) {
    sum += load_value(dout[static_cast<std::int64_t>(sorted_positions[k]) * C + c]);
  }
  S* dwte_row = dwte + static_cast<std::int64_t>(group_tokens[group]) * C;
  dwte_row[c] = store_value<S>(load_value(dwte_row[c]) + sum);
}

// The grouping of positions by token, laid out identically in a host buffer and in its device copy:
// sorted_positions[positions], group_tokens[positions], group_starts[positions + 1] (int32 each; only the first
// `groups` tokens and `groups + 1` starts are used).
struct TokenGroups {
  std::int32_t* sorted_positions;
  std::int32_t* group_tokens;
  std::int32_t* group_starts;
};

TokenGroups token_groups_in(void* buffer, std::int64_t positions) {
  auto* base = static_cast<std::int32_t*>(buffer);
  return {base, base + positions, base + 2 * positions};
}

// Fills `groups` from the host copy of the tokens (checking each lies in [0, V)); returns the number of groups.
std::int64_t group_positions_by_token(const std::int32_t* tokens, std::int64_t positions, std::int64_t V,
                                      const TokenGroups& groups) {
  for (std::int64_t position = 0; position < positions; ++position) {
    LADDER_CHECK(tokens[position] >= 0 && tokens[position] < V, "embedding_backward: token ", tokens[position],
                 " at position ", position, " is outside the vocabulary [0, ", V, ")");
    groups.sorted_positions[position] = static_cast<std::int32_t>(position);
  }
  // A stable sort keeps each token's positions in increasing order: the CPU's summation order.
  std::stable_sort(groups.sorted_positions, groups.sorted_positions + positions,
                   [tokens](std::int32_t left, std::int32_t right) { return tokens[left] < tokens[right]; });
  std::int64_t group_count = 0;
  for (std::int64_t k = 0; k < positions; ++k) {
    const std::int32_t token = tokens[groups.sorted_positions[k]];
    if (k == 0 || token != tokens[groups.sorted_positions[k - 1]]) {
      groups.group_tokens[group_count] = token;
      groups.group_starts[group_count] = static_cast<std::int32_t>(k);
      ++group_count;
    }
  }
  groups.group_starts[group_count] = static_cast<std::int32_t>(positions);
  return group_count;
}

}  // namespace

template <class S>
void embedding_forward(S* out, const std::int32_t* tokens, const S* wte, const S* wpe, std::int64_t B, std::int64_t T,
                       std::int64_t C, std::int64_t V) {
  (void)V;  // tokens are checked against V on the host by the caller; reading them here would cost a sync
  const std::int64_t positions = B * T;
  if (positions <= 0 || C <= 0) return;
  LADDER_CHECK(positions <= std::numeric_limits<std::int32_t>::max(), "embedding_forward: B·T = ", positions,
               " positions exceed the grid's limit of 2^31 - 1");
  embedding_forward_kernel<S>
      <<<static_cast<unsigned int>(positions), kEmbeddingThreads>>>(out, tokens, wte, wpe, T, C);
  check_launch("embedding_forward_kernel");
}

template <class S>
void embedding_backward(S* dwte, S* dwpe, const S* dout, const std::int32_t* tokens, std::int64_t B, std::int64_t T,
                        std::int64_t C, std::int64_t V) {
  const std::int64_t positions = B * T;
  if (positions <= 0 || C <= 0) return;
  LADDER_CHECK(positions <= std::numeric_limits<std::int32_t>::max(), "embedding_backward: B·T = ", positions,
               " positions do not fit the int32 grouping");

  // The grouping is built on the host: the copy of the tokens waits for the work that produced them.
  const std::size_t token_bytes = static_cast<std::size_t>(positions) * sizeof(std::int32_t);
  Buffer host_tokens(token_bytes, MemoryCategory::Workspace, Device::CPU);
  check_cuda(cudaMemcpy(host_tokens.data(), tokens, token_bytes, cudaMemcpyDeviceToHost),
             "embedding_backward: copy tokens to host");
  const std::size_t grouping_bytes = static_cast<std::size_t>(3 * positions + 1) * sizeof(std::int32_t);
  Buffer host_grouping(grouping_bytes, MemoryCategory::Workspace, Device::CPU);
  const auto* host_token_values = static_cast<const std::int32_t*>(host_tokens.data());
  const std::int64_t group_count =
      group_positions_by_token(host_token_values, positions, V, token_groups_in(host_grouping.data(), positions));
  void* device_grouping = device_scratch(grouping_bytes);
  check_cuda(cudaMemcpy(device_grouping, host_grouping.data(), grouping_bytes, cudaMemcpyHostToDevice),
             "embedding_backward: copy token grouping to device");
  const TokenGroups groups = token_groups_in(device_grouping, positions);

  const dim3 token_grid(static_cast<unsigned int>(group_count), blocks_for(C, kEmbeddingThreads));
  embedding_token_backward_kernel<S><<<token_grid, kEmbeddingThreads>>>(dwte, dout, groups.sorted_positions,
                                                                         groups.group_tokens, groups.group_starts, C);
  check_launch("embedding_token_backward_kernel");

  embedding_position_backward_kernel<S><<<grid_stride_blocks(T * C), kElementwiseThreads>>>(dwpe, dout, B, T, C);
  check_launch("embedding_position_backward_kernel");
  // device_grouping is the shared scratch block: the next op that takes it queues behind these kernels on the
  // default stream, so the grouping stays intact while they read it.
}

#define LADDER_INSTANTIATE_CUDA_EMBEDDING(S)                                                                           \
  template void embedding_forward<S>(S*, const std::int32_t*, const S*, const S*, std::int64_t, std::int64_t,          \
                                     std::int64_t, std::int64_t);                                                      \
  template void embedding_backward<S>(S*, S*, const S*, const std::int32_t*, std::int64_t, std::int64_t, std::int64_t, \
                                      std::int64_t);
LADDER_FOR_EACH_CUDA_STORAGE_TYPE(LADDER_INSTANTIATE_CUDA_EMBEDDING)

}  // namespace ladder::ops::cuda
