/// @file bucket_packing.hpp
/// @brief A bucket of units laid out rank by rank, the order reduce-scatter and all-gather work in.
#pragma once

#include <cstdint>
#include <vector>

#include "06_ddp/gradient_buckets.hpp"
#include "common/model/parameter_layout.hpp"

namespace ladder::stage07 {

/// One rank's piece of one unit of a bucket, and where it sits in the unit and in the packed bucket.
struct PackedPiece {
  int unit = 0;                   ///< the unit
  int rank = 0;                   ///< the rank that owns the piece
  std::int64_t unit_offset = 0;   ///< first element inside the unit: rank · piece size
  std::int64_t packed_offset = 0; ///< first element inside the packed bucket
  std::int64_t size = 0;          ///< elements: the unit's size / N
};

/// The pieces of `bucket` in packed order. Reduce-scatter hands rank r the r-th N-th of its input, and all-gather
/// puts rank r's input at the r-th N-th of its output; a bucket of several units is therefore packed rank by rank:
/// first rank 0's piece of every unit of the bucket, then rank 1's, and so on. Rank r's part of the packed bucket is
/// then exactly its pieces of those units in unit order: a consecutive run of its shard.
std::vector<PackedPiece> packed_pieces(const ParameterLayout& layout, const stage06::BucketSpan& bucket, int world);

}  // namespace ladder::stage07
