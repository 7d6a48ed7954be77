/// @file flash_attention_tiles.cuh
/// @brief What the flash-attention kernels share: the work layout, the per-lane head entries, tiles in shared
/// memory, and the host-side choice of kernel and grid (flash_attention_forward.cu, flash_attention_backward.cu).
///
/// Fused causal self-attention (flash style) in fp32 arithmetic: the T×T scores exist only in registers, a tile at
/// a time. Same maths as cpu/flash_attention.cpp (online softmax forward; backward from lse and D_i = dout_i·out_i).
///
/// Work layout. A block owns 64 rows (query rows in forward and dq, key rows in dk/dv) of one (b, h). Each row
/// belongs to a group of kLanesPerRow adjacent lanes, each lane holding kDims ≤ 32 of the head's entries in
/// registers (q and the output accumulator, for instance), so no kernel needs more than ~160 registers. A dot
/// product is a per-lane partial sum plus a butterfly shuffle inside the group. The block streams the other side
/// (keys and values, or queries and douts) through shared memory in tiles, and every lane reads the same tile
/// row at once: a broadcast. Lanes of a group own interleaved float4 quads (lane p: quads p, p+L, p+2L, ...), so
/// their reads fall in different banks.
///
/// Scores are kept in log2 units (q or k pre-multiplied by scale·log2(e)) so that exp2f does the exponentials;
/// lse is stored in natural-log units like the CPU's. Each head size is served by a kernel built for a capacity
/// of 16, 32, 64 or 128 entries; smaller heads are padded with zeros up to the capacity.
///
/// Control flow inside the kernels is uniform across each warp (loop bounds depend only on the block), because
/// the group shuffles and the warp-wide early exits (__all_sync) need every lane present. Causality is applied by
/// masking the probability to zero; rows beyond T compute on zero tiles and write nothing.
#pragma once

#include <climits>
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "common/ops/cuda/cuda_check.hpp"
#include "common/ops/cuda/cuda_ops.hpp"
#include "common/ops/cuda/device_values.cuh"

/// Internals of the CUDA flash-attention kernels.
namespace ladder::ops::cuda::flash {

/// Every lane of a warp takes part in a shuffle.
constexpr unsigned kFullMask = 0xffffffffu;
/// log2(e): scores are kept in log2 units, so that exp2f does the exponentials.
constexpr float kLog2e = 1.4426950408889634f;
/// ln(2): turns a log2-unit log-sum-exp back into natural-log units.
constexpr float kLn2 = 0.6931471805599453f;
/// Rows (queries, or keys in dk/dv) one block owns.
constexpr int kRowsPerBlock = 64;
// Head entries per lane of each kernel, chosen so that its per-row registers stay near 100 (no spills): forward
// keeps q and the output (2 arrays), dq keeps q, dout and dq (3), dk/dv keeps k, v, dk and dv (4).
/// Head entries per lane in the forward kernel (q and the output accumulator).
constexpr int kForwardDimsPerLane = 32;
/// Head entries per lane in the dq kernel (q, dout, dq).
constexpr int kQueryDimsPerLane = 32;
/// Head entries per lane in the dk/dv kernel (k, v, dk, dv).
constexpr int kKeyDimsPerLane = 16;

/// The shape of the work for a head-size capacity (16, 32, 64 or 128) and a most entries per lane.
template <int kHeadCapacity, int kMaxDimsPerLane>
struct Layout {
  static constexpr int kCapacity = kHeadCapacity;  ///< head entries a row holds (the head size, padded)
  static constexpr int kLanesPerRow =             ///< adjacent lanes that share one row
      kCapacity > kMaxDimsPerLane ? kCapacity / kMaxDimsPerLane : 1;
  static constexpr int kDims = kCapacity / kLanesPerRow;  ///< head entries held by each lane
  static constexpr int kQuads = kDims / 4;                ///< the same, as float4 quads
  static constexpr int kThreads = kRowsPerBlock * kLanesPerRow;  ///< threads per block
  static constexpr int kTileRows = kCapacity <= 64 ? 64 : 32;   ///< rows per shared tile (two fp32 tiles ≤ 32 KiB)
  static_assert(kCapacity % 4 == 0 && kDims % 4 == 0, "lanes own whole float4 quads");
  static_assert(kTileRows * kLanesPerRow % 32 == 0, "the groups of a tile's rows fill whole warps");
};

/// Head entry held in slot `index` (0..kDims-1) by lane `part` of a group.
template <class L>
__device__ __forceinline__ int owned_dim(int part, int index) {
  return 4 * ((index / 4) * L::kLanesPerRow + part) + index % 4;
}

/// This lane's entries of one stored head row, times `factor`; zeros for a row beyond T or padding entries.
template <class L, class S>
__device__ __forceinline__ void load_owned(float (&values)[L::kDims], const S* row, bool valid,
                                           int head_size, int part, float factor) {
#pragma unroll
  for (int i = 0; i < L::kDims; ++i) {
    const int d = owned_dim<L>(part, i);
    values[i] = valid && d < head_size ? load_value(row[d]) * factor : 0.0f;
  }
}

/// row[d] += factor·values (read, add in fp32, round once) for this lane's entries.
template <class L, class S>
__device__ __forceinline__ void add_owned(S* row, const float (&values)[L::kDims], int head_size,
                                          int part, float factor) {
#pragma unroll
  for (int i = 0; i < L::kDims; ++i) {
    const int d = owned_dim<L>(part, i);
    if (d < head_size) row[d] = store_value<S>(load_value(row[d]) + factor * values[i]);
  }
}

/// This lane's share of values · tile_row (tile_row in shared memory, read as float4 quads).
template <class L>
__device__ __forceinline__ float owned_dot(const float (&values)[L::kDims], const float* tile_row,
                                           int part) {
  float sum = 0.0f;
#pragma unroll
  for (int q = 0; q < L::kQuads; ++q) {
    const float4 x = *reinterpret_cast<const float4*>(tile_row + 4 * (q * L::kLanesPerRow + part));
    sum += values[4 * q] * x.x + values[4 * q + 1] * x.y + values[4 * q + 2] * x.z + values[4 * q + 3] * x.w;
  }
  return sum;
}

/// A float4 read from shared memory that the compiler must issue where it stands: it may not reuse an earlier
/// read of the same address, which would keep whole tile rows alive in registers (and spill) between a chunk's
/// dot products and its updates.
__device__ __forceinline__ float4 reread_shared_float4(const float* address) {
  float4 x;
  asm volatile("ld.shared.v4.f32 {%0, %1, %2, %3}, [%4];"
               : "=f"(x.x), "=f"(x.y), "=f"(x.z), "=f"(x.w)
               : "r"(static_cast<unsigned>(__cvta_generic_to_shared(address)))
               : "memory");
  return x;
}

/// values += weight · tile_row over this lane's entries.
template <class L>
__device__ __forceinline__ void owned_axpy(float (&values)[L::kDims], float weight,
                                           const float* tile_row, int part) {
#pragma unroll
  for (int q = 0; q < L::kQuads; ++q) {
    const float4 x = reread_shared_float4(tile_row + 4 * (q * L::kLanesPerRow + part));
    values[4 * q] += weight * x.x;
    values[4 * q + 1] += weight * x.y;
    values[4 * q + 2] += weight * x.z;
    values[4 * q + 3] += weight * x.w;
  }
}

/// Sum over the lanes of a row's group; every lane of the group gets the same total.
template <class L>
__device__ __forceinline__ float group_sum(float value) {
#pragma unroll
  for (int offset = L::kLanesPerRow / 2; offset > 0; offset /= 2)
    value += __shfl_xor_sync(kFullMask, value, offset);
  return value;
}

/// Copies kTileRows head rows (rows_left of them exist) into a shared tile, zero-filling missing rows and padding.
/// Consecutive threads read consecutive entries of a row, so the global reads coalesce.
template <class L, class S>
__device__ __forceinline__ void load_tile(float (*tile)[L::kCapacity], const S* first_row, std::int64_t row_stride,
                                          std::int64_t rows_left, int head_size) {
  constexpr int kCapacity = L::kCapacity;
  for (int index = threadIdx.x; index < L::kTileRows * kCapacity; index += L::kThreads) {
    const int r = index / kCapacity, d = index % kCapacity;
    tile[r][d] = r < rows_left && d < head_size ? load_value(first_row[r * row_stride + d]) : 0.0f;
  }
}


/// Calls function(std::integral_constant<int, capacity>) with the smallest kernel capacity that holds head_size.
template <class Function>
void with_head_capacity(int head_size, const char* op, Function&& function) {
  if (head_size <= 16) return function(std::integral_constant<int, 16>{});
  if (head_size <= 32) return function(std::integral_constant<int, 32>{});
  if (head_size <= 64) return function(std::integral_constant<int, 64>{});
  if (head_size <= 128) return function(std::integral_constant<int, 128>{});
  throw LadderError(make_message(op, ": head size ", head_size, " (C / n_head) is larger than the 128 the CUDA ",
                                 "flash-attention kernels support"));
}

/// The grid of one call: x = (b, h), y = tiles of 64 rows. Throws for sizes the grid or int positions cannot hold.
inline dim3 attention_grid(std::int64_t B, std::int64_t T, std::int64_t heads, const char* op) {
  const std::int64_t tiles = (T + kRowsPerBlock - 1) / kRowsPerBlock;
  LADDER_CHECK(T <= INT_MAX && tiles <= 65535 && B * heads <= INT_MAX, op, ": T = ", T, " with B·n_head = ",
               B * heads, " is beyond the CUDA kernels' grid (at most ", 65535 * kRowsPerBlock, " positions)");
  return dim3(static_cast<unsigned>(B * heads), static_cast<unsigned>(tiles));
}

}  // namespace ladder::ops::cuda::flash
