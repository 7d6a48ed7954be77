// Helpers shared by the data-source tests.
#pragma once

#include <cstddef>
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "common/data/data_source.hpp"
#include "tests/test_support.hpp"

namespace ladder::testing_support {

/// A slice with every field given.
inline DataSlice slice_of(int rank, int world, int batch_size, int sequence_length) {
  DataSlice slice;
  slice.rank = rank;
  slice.world = world;
  slice.batch_size = batch_size;
  slice.sequence_length = sequence_length;
  return slice;
}

/// Row `row` of a row-major B×T array.
inline std::vector<std::int32_t> row_of(const std::vector<std::int32_t>& values, int row, int T) {
  return {values.begin() + static_cast<std::ptrdiff_t>(row) * T, values.begin() + static_cast<std::ptrdiff_t>(row + 1) * T};
}

/// Checks that rank 0 and rank 1 of two, with B rows each, read exactly rows [0, B) and [B, 2B) of what one rank
/// with 2B rows reads, for `steps` training batches and as many held-out batches as exist (at most `steps`).
inline void expect_two_ranks_match_one(const std::string& spec, int B, int T, std::uint64_t seed, std::int64_t steps) {
  auto whole = make_data_source(spec, slice_of(0, 1, 2 * B, T), seed);
  auto rank0 = make_data_source(spec, slice_of(0, 2, B, T), seed);
  auto rank1 = make_data_source(spec, slice_of(1, 2, B, T), seed);
  ASSERT_EQ(rank0->eval_batch_count(), whole->eval_batch_count()) << spec;
  auto expect_rows = [&](const Batch& expected, const Batch& first, const Batch& second, const std::string& what) {
    for (int row = 0; row < B; ++row) {
      EXPECT_EQ(row_of(first.inputs, row, T), row_of(expected.inputs, row, T)) << spec << ' ' << what << " row " << row;
      EXPECT_EQ(row_of(second.inputs, row, T), row_of(expected.inputs, B + row, T)) << spec << ' ' << what;
      EXPECT_EQ(row_of(first.targets, row, T), row_of(expected.targets, row, T)) << spec << ' ' << what;
      EXPECT_EQ(row_of(second.targets, row, T), row_of(expected.targets, B + row, T)) << spec << ' ' << what;
    }
  };
  for (std::int64_t step = 0; step < steps; ++step) {
    expect_rows(whole->train_batch(step), rank0->train_batch(step), rank1->train_batch(step),
                "train step " + std::to_string(step));
  }
  for (std::int64_t index = 0; index < std::min(steps, whole->eval_batch_count()); ++index) {
    expect_rows(whole->eval_batch(index), rank0->eval_batch(index), rank1->eval_batch(index),
                "eval batch " + std::to_string(index));
  }
}

}  // namespace ladder::testing_support
