/// @file device_values.cuh
/// @brief Device-side reads and writes of the storage types: fp32 in registers, rounded once on store.
///
/// ladder::Half and ladder::BFloat16 are plain 16-bit patterns, so the kernels use the same types as the host
/// code; these helpers reinterpret the bits as CUDA's __half / __nv_bfloat16 and convert with round-to-nearest-
/// even, which is what the CPU path's store<S>() does, so both devices round identically.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "common/dtype.hpp"

namespace ladder::ops::cuda {

/// Reads a stored element as fp32.
__device__ __forceinline__ float load_value(float value) { return value; }
/// Reads a stored fp16 element as fp32 (exact).
__device__ __forceinline__ float load_value(Half value) { return __half2float(__ushort_as_half(value.bits)); }
/// Reads a stored bf16 element as fp32 (exact).
__device__ __forceinline__ float load_value(BFloat16 value) {
  return __bfloat162float(__ushort_as_bfloat16(value.bits));
}

/// Rounds an fp32 value into storage type S (round to nearest even).
template <class S>
__device__ __forceinline__ S store_value(float value) {
  if constexpr (std::is_same_v<S, float>) {
    return value;
  } else if constexpr (std::is_same_v<S, Half>) {
    Half stored;
    stored.bits = __half_as_ushort(__float2half_rn(value));
    return stored;
  } else {
    static_assert(std::is_same_v<S, BFloat16>, "unsupported storage type");
    BFloat16 stored;
    stored.bits = __bfloat16_as_ushort(__float2bfloat16_rn(value));
    return stored;
  }
}

/// Sum of `value` over a warp (every lane gets the total).
__device__ __forceinline__ float warp_sum(float value) {
  for (int offset = 16; offset > 0; offset /= 2) value += __shfl_xor_sync(0xffffffffu, value, offset);
  return value;
}

/// Maximum of `value` over a warp (every lane gets it).
__device__ __forceinline__ float warp_max(float value) {
  for (int offset = 16; offset > 0; offset /= 2) value = fmaxf(value, __shfl_xor_sync(0xffffffffu, value, offset));
  return value;
}

/// Sum over a block of up to 1024 threads (blockDim.x a multiple of 32); every thread gets the total.
/// `scratch` must hold 32 floats of shared memory.
__device__ __forceinline__ float block_sum(float value, float* scratch) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  value = warp_sum(value);
  __syncthreads();  // scratch may still be read by a previous call
  if (lane == 0) scratch[warp] = value;
  __syncthreads();
  value = lane < warps ? scratch[lane] : 0.0f;
  return warp_sum(value);
}

/// Maximum over a block, like block_sum.
__device__ __forceinline__ float block_max(float value, float* scratch) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  value = warp_max(value);
  __syncthreads();
  if (lane == 0) scratch[warp] = value;
  __syncthreads();
  value = lane < warps ? scratch[lane] : -INFINITY;
  return warp_max(value);
}

}  // namespace ladder::ops::cuda
