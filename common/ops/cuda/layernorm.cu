// LayerNorm on the GPU with the CPU's formulas (ops/cpu/layernorm.cpp): one warp per row, fp32 statistics.
// The weight and bias gradients sum over every row; to stay deterministic without atomics, blocks of rows
// write fp32 partial sums to a workspace, and a second kernel adds the partials in a fixed order.
#include <algorithm>
#include <cstdint>

#include "common/memory.hpp"
#include "common/ops/cuda/cuda_ops.hpp"
#include "common/ops/cuda/device_scratch.hpp"
#include "common/ops/cuda/device_values.cuh"
#include "common/ops/cuda/launch_sizes.cuh"

namespace ladder::ops::cuda {

namespace {

constexpr float kEpsilon = 1e-5f;
// The parameter-gradient reduction: threads per block (one column each), and the bounds of a chunk of rows.
// Chunks hold at least kMinRowsPerChunk rows and number at most kMaxRowChunks, which bounds the workspace.
constexpr int kParameterThreads = 256;
constexpr std::int64_t kMinRowsPerChunk = 32;
constexpr std::int64_t kMaxRowChunks = 512;

// This warp's row; warps past the last row have none (the whole warp leaves together, so the
// full-mask shuffles of warp_sum stay valid).
__device__ __forceinline__ std::int64_t warp_row() {
  return static_cast<std::int64_t>(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
}

template <class S>
__global__ void layernorm_forward_kernel(S* out, float* mean, float* rstd, const S* inp, const S* weight,
                                         const S* bias, std::int64_t N, std::int64_t C) {
  const std::int64_t row = warp_row();
  if (row >= N) return;
  const int lane = threadIdx.x % 32;
  const float channels = static_cast<float>(C);
  const S* x = inp + row * C;
  float sum = 0.0f;
  for (std::int64_t c = lane; c < C; c += 32) sum += load_value(x[c]);
  const float row_mean = warp_sum(sum) / channels;
  // Two passes (mean first, then squared deviations) avoid the cancellation of E[x²] - E[x]².
  float squared_deviations = 0.0f;
  for (std::int64_t c = lane; c < C; c += 32) {
    const float deviation = load_value(x[c]) - row_mean;
    squared_deviations += deviation * deviation;
  }
  const float row_rstd = 1.0f / sqrtf(warp_sum(squared_deviations) / channels + kEpsilon);
  S* y = out + row * C;
  for (std::int64_t c = lane; c < C; c += 32) {
    y[c] = store_value<S>((load_value(x[c]) - row_mean) * row_rstd * load_value(weight[c]) + load_value(bias[c]));
  }
  if (lane == 0) {
    mean[row] = row_mean;
    rstd[row] = row_rstd;
  }
}

// dinp of one row per warp. Every lane has read its dout elements (first loop, closed by warp_sum) before any
// lane writes, and each lane rereads an element just before overwriting it, so dinp may alias dout.
template <class S>
__global__ void layernorm_backward_input_kernel(S* dinp, const S* dout, const S* inp, const S* weight,
                                                const float* mean, const float* rstd, std::int64_t N, std::int64_t C) {
  const std::int64_t row = warp_row();
  if (row >= N) return;
  const int lane = threadIdx.x % 32;
  const float channels = static_cast<float>(C);
  const float row_mean = mean[row];
  const float row_rstd = rstd[row];
  const S* x = inp + row * C;
  const S* dy = dout + row * C;
  // dL/dx̂ = weight · dout; x̂ depends on every x of the row through the mean and the variance, and those two
  // paths are the means subtracted below.
  float dnormalized_sum = 0.0f;
  float dnormalized_dot_normalized_sum = 0.0f;
  for (std::int64_t c = lane; c < C; c += 32) {
    const float x_hat = (load_value(x[c]) - row_mean) * row_rstd;
    const float dnormalized = load_value(weight[c]) * load_value(dy[c]);
    dnormalized_sum += dnormalized;
    dnormalized_dot_normalized_sum += dnormalized * x_hat;
  }
  const float dnormalized_mean = warp_sum(dnormalized_sum) / channels;
  const float dnormalized_dot_normalized_mean = warp_sum(dnormalized_dot_normalized_sum) / channels;
  S* dx = dinp + row * C;
  for (std::int64_t c = lane; c < C; c += 32) {
    const float x_hat = (load_value(x[c]) - row_mean) * row_rstd;
    const float dnormalized = load_value(weight[c]) * load_value(dy[c]);
    const float gradient = (dnormalized - dnormalized_mean - x_hat * dnormalized_dot_normalized_mean) * row_rstd;
    dx[c] = store_value<S>(load_value(dx[c]) + gradient);
  }
}

// Block (column block, row chunk): thread c sums x̂·dout and dout of column c over the chunk's rows (reads of
// consecutive columns are coalesced) and stores the two fp32 partials at [chunk][c].
template <class S>
__global__ void layernorm_parameter_partials_kernel(float* dweight_partials, float* dbias_partials, const S* dout,
                                                    const S* inp, const float* mean, const float* rstd, std::int64_t N,
                                                    std::int64_t C, std::int64_t rows_per_chunk) {
  const std::int64_t c = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= C) return;
  const std::int64_t chunk = blockIdx.y;
  const std::int64_t first_row = chunk * rows_per_chunk;
  const std::int64_t end_row = first_row + rows_per_chunk < N ? first_row + rows_per_chunk : N;
  float dweight_sum = 0.0f;
  float dbias_sum = 0.0f;
  for (std::int64_t n = first_row; n < end_row; ++n) {
    const float x_hat = (load_value(inp[n * C + c]) - mean[n]) * rstd[n];
    const float dy = load_value(dout[n * C + c]);
    dbias_sum += dy;
    dweight_sum += x_hat * dy;
  }
  dweight_partials[chunk * C + c] = dweight_sum;
  dbias_partials[chunk * C + c] = dbias_sum;
}

// Thread c adds the partials of column c in chunk order and rounds into dweight and dbias once.
template <class S>
__global__ void layernorm_parameter_finish_kernel(S* dweight, S* dbias, const float* dweight_partials,
                                                  const float* dbias_partials, std::int64_t chunks, std::int64_t C) {
  for (std::int64_t c = grid_stride_start(); c < C; c += grid_stride_step()) {
    float dweight_sum = 0.0f;
    float dbias_sum = 0.0f;
    for (std::int64_t chunk = 0; chunk < chunks; ++chunk) {
      dweight_sum += dweight_partials[chunk * C + c];
      dbias_sum += dbias_partials[chunk * C + c];
    }
    dweight[c] = store_value<S>(load_value(dweight[c]) + dweight_sum);
    dbias[c] = store_value<S>(load_value(dbias[c]) + dbias_sum);
  }
}

}  // namespace

template <class S>
void layernorm_forward(S* out, float* mean, float* rstd, const S* inp, const S* weight, const S* bias, std::int64_t N,
                       std::int64_t C) {
  if (N <= 0 || C <= 0) return;
  layernorm_forward_kernel<S>
      <<<blocks_for(N, kRowsPerBlock), kRowWarpThreads>>>(out, mean, rstd, inp, weight, bias, N, C);
  check_launch("layernorm_forward_kernel");
}

template <class S>
void layernorm_backward(S* dinp, S* dweight, S* dbias, const S* dout, const S* inp, const S* weight, const float* mean,
                        const float* rstd, std::int64_t N, std::int64_t C) {
  if (N <= 0 || C <= 0) return;
  if (dweight != nullptr) {  // nullptr (with dbias): a frozen LayerNorm, whose parameters want no gradient
    const std::int64_t rows_per_chunk = std::max(kMinRowsPerChunk, (N + kMaxRowChunks - 1) / kMaxRowChunks);
    const std::int64_t chunks = (N + rows_per_chunk - 1) / rows_per_chunk;
    // dweight partials [chunks][C], then dbias partials [chunks][C].
    float* dweight_partials =
        static_cast<float*>(device_scratch(static_cast<std::size_t>(2 * chunks * C) * sizeof(float)));
    float* dbias_partials = dweight_partials + chunks * C;

    // The parameter gradients read dout before the input gradient is written, so dinp may alias dout.
    const dim3 partial_grid(blocks_for(C, kParameterThreads), static_cast<unsigned int>(chunks));
    layernorm_parameter_partials_kernel<S><<<partial_grid, kParameterThreads>>>(
        dweight_partials, dbias_partials, dout, inp, mean, rstd, N, C, rows_per_chunk);
    check_launch("layernorm_parameter_partials_kernel");
    layernorm_parameter_finish_kernel<S>
        <<<grid_stride_blocks(C), kElementwiseThreads>>>(dweight, dbias, dweight_partials, dbias_partials, chunks, C);
    check_launch("layernorm_parameter_finish_kernel");
  }

  layernorm_backward_input_kernel<S>
      <<<blocks_for(N, kRowsPerBlock), kRowWarpThreads>>>(dinp, dout, inp, weight, mean, rstd, N, C);
  check_launch("layernorm_backward_input_kernel");
  // The partials live in the shared scratch block; the next op that takes it queues behind these kernels.
}

#define LADDER_INSTANTIATE_CUDA_LAYERNORM(S)                                                                 \
  template void layernorm_forward<S>(S*, float*, float*, const S*, const S*, const S*, std::int64_t,         \
                                     std::int64_t);                                                          \
  template void layernorm_backward<S>(S*, S*, S*, const S*, const S*, const S*, const float*, const float*, \
                                      std::int64_t, std::int64_t);
LADDER_FOR_EACH_CUDA_STORAGE_TYPE(LADDER_INSTANTIATE_CUDA_LAYERNORM)

}  // namespace ladder::ops::cuda
