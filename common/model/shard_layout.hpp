/// @file shard_layout.hpp
/// @brief What one rank of N owns of the flat layout: the r-th of N equal pieces of every unit (ZeRO, FSDP).
#pragma once

#include <cstdint>
#include <vector>

#include "common/model/parameter_layout.hpp"

namespace ladder {

/// One rank's piece of one unit: elements [layout_offset, layout_offset + size) of the flat layout.
struct UnitPiece {
  int unit = 0;                    ///< the unit it belongs to
  std::int64_t layout_offset = 0;  ///< first element in the flat layout
  std::int64_t shard_offset = 0;   ///< first element in the owner's shard (its pieces of all units, in unit order)
  std::int64_t size = 0;           ///< elements: the unit's size / N
};

/// A run of real parameters inside a shard (a tensor cut by the piece boundaries): what an optimizer updates.
struct ShardSpan {
  std::int64_t shard_offset = 0;   ///< first element in the shard
  std::int64_t layout_offset = 0;  ///< the same element in the flat layout
  std::int64_t size = 0;           ///< elements
  bool decays = false;             ///< AdamW weight decay applies (the tensor's flag)
};

/// Splits every unit of a layout into N equal, contiguous pieces; rank r owns piece r of each unit. A unit is the
/// granule because FSDP gathers and frees whole units; ZeRO-1 and -2 use the same split, so the four parallel
/// stages agree on which rank updates which weight, and their results can be compared bit for bit. The layout
/// must have been padded for N (GPT's shard_multiple = N): each unit's size is then a multiple of 16·N.
class ShardLayout {
 public:
  /// Rank `rank` of `world`'s share of `layout`; throws when a unit does not split into `world` equal pieces.
  ShardLayout(const ParameterLayout& layout, int rank, int world);
  /// This rank.
  int rank() const { return rank_; }
  /// Number of ranks the layout is split over.
  int world() const { return world_; }
  /// Elements each rank owns: the layout's padded size / N.
  std::int64_t size() const { return size_; }
  /// This rank's piece of every unit, in unit order (consecutive in the shard).
  const std::vector<UnitPiece>& pieces() const { return pieces_; }
  /// Rank `owner`'s piece of unit `unit`.
  UnitPiece piece_of(int unit, int owner) const;
  /// The real parameters of this rank's shard, tensor by tensor, in shard order (padding left out).
  const std::vector<ShardSpan>& spans() const { return spans_; }
  /// The layout it splits.
  const ParameterLayout& layout() const { return layout_; }

 private:
  ParameterLayout layout_;
  int rank_;
  int world_;
  std::int64_t size_ = 0;
  std::vector<UnitPiece> pieces_;
  std::vector<ShardSpan> spans_;
};

}  // namespace ladder
