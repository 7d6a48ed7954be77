/// @file data_slice.hpp
/// @brief Checks a DataSlice and numbers its rows within the global batch, for every data source.
#pragma once

#include <cstdint>

#include "common/data/data_source.hpp"

namespace ladder {

/// Throws LadderError naming the first bad field (world < 1, rank outside [0, world), B < 1 or T < 1).
void check_data_slice(const DataSlice& slice);

/// Rows in one global batch: world · B.
std::int64_t global_row_count(const DataSlice& slice);

/// Global row of this rank's row `row`: rank · B + row, so ranks tile the global batch in order.
std::int64_t global_row(const DataSlice& slice, int row);

}  // namespace ladder
