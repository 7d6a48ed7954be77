#include "common/model/shard_layout.hpp"

#include <algorithm>

#include "common/error.hpp"

namespace ladder {

ShardLayout::ShardLayout(const ParameterLayout& layout, int rank, int world) : layout_(layout), rank_(rank), world_(world) {
  LADDER_CHECK(world >= 1, "world size ", world, " must be at least 1");
  LADDER_CHECK(rank >= 0 && rank < world, "rank ", rank, " is not a rank of a world of ", world);
  for (const ParameterUnit& unit : layout.units()) {
    LADDER_CHECK(unit.size % (ParameterLayout::kTensorAlignment * world) == 0, "unit ", unit.name, " has ", unit.size,
                 " elements, which do not split into ", world, " aligned pieces: build the model with shard_multiple ",
                 world, " (the world size)");
  }
  size_ = layout.padded_size() / world;
  for (int unit = 0; unit < static_cast<int>(layout.units().size()); ++unit) pieces_.push_back(piece_of(unit, rank));
  // A tensor may straddle piece boundaries: each rank updates the part of it that falls in its pieces.
  for (const UnitPiece& piece : pieces_) {
    const ParameterUnit& unit = layout.units()[piece.unit];
    for (int index = unit.first_tensor; index < unit.first_tensor + unit.tensor_count; ++index) {
      const ParameterTensor& tensor = layout.tensors()[index];
      const std::int64_t begin = std::max(tensor.offset, piece.layout_offset);
      const std::int64_t end = std::min(tensor.offset + tensor.numel, piece.layout_offset + piece.size);
      if (begin >= end) continue;
      spans_.push_back({piece.shard_offset + (begin - piece.layout_offset), begin, end - begin, tensor.decays});
    }
  }
}

UnitPiece ShardLayout::piece_of(int unit, int owner) const {
  LADDER_CHECK(unit >= 0 && unit < static_cast<int>(layout_.units().size()), "unit ", unit, " does not exist");
  LADDER_CHECK(owner >= 0 && owner < world_, "rank ", owner, " is not a rank of a world of ", world_);
  const ParameterUnit& whole = layout_.units()[unit];
  UnitPiece piece;
  piece.unit = unit;
  piece.size = whole.size / world_;
  piece.layout_offset = whole.offset + owner * piece.size;
  piece.shard_offset = whole.offset / world_;  // every earlier unit contributed size/N elements
  return piece;
}

}  // namespace ladder
