#include "07_zero1/bucket_packing.hpp"

namespace ladder::stage07 {

std::vector<PackedPiece> packed_pieces(const ParameterLayout& layout, const stage06::BucketSpan& bucket, int world) {
  std::vector<PackedPiece> pieces;
  const std::int64_t per_rank = bucket.size / world;  // each rank's run of the packed bucket
  for (int rank = 0; rank < world; ++rank) {
    for (int unit = bucket.first_unit; unit <= bucket.last_unit; ++unit) {
      const ParameterUnit& whole = layout.units()[unit];
      const std::int64_t size = whole.size / world;
      pieces.push_back({unit, rank, rank * size, rank * per_rank + (whole.offset - bucket.offset) / world, size});
    }
  }
  return pieces;
}

}  // namespace ladder::stage07
