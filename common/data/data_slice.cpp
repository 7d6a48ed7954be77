#include "common/data/data_slice.hpp"

#include "common/error.hpp"

namespace ladder {

void check_data_slice(const DataSlice& slice) {
  LADDER_CHECK(slice.world >= 1, "data slice: world size ", slice.world, " must be at least 1");
  LADDER_CHECK(slice.rank >= 0 && slice.rank < slice.world, "data slice: rank ", slice.rank,
               " must lie in [0, ", slice.world, ") for world size ", slice.world);
  LADDER_CHECK(slice.batch_size >= 1, "data slice: batch size B = ", slice.batch_size, " must be at least 1");
  LADDER_CHECK(slice.sequence_length >= 1, "data slice: sequence length T = ", slice.sequence_length,
               " must be at least 1");
}

std::int64_t global_row_count(const DataSlice& slice) {
  return static_cast<std::int64_t>(slice.world) * slice.batch_size;
}

std::int64_t global_row(const DataSlice& slice, int row) {
  return static_cast<std::int64_t>(slice.rank) * slice.batch_size + row;
}

}  // namespace ladder
