// Reading the committed PyTorch fixtures (tests/reference/): F32 tensors as values, a step's batch, and the error
// measure their tests use.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "common/data/data_source.hpp"
#include "common/train/safetensors.hpp"

namespace ladder::testing_support {

/// The values of an F32 fixture tensor.
inline std::vector<float> fixture_floats(const StoredTensor& stored) {
  EXPECT_EQ(stored.dtype, DType::F32);
  std::vector<float> values(static_cast<std::size_t>(stored.numel()));
  std::memcpy(values.data(), stored.bytes.data(), stored.bytes.size());
  return values;
}

/// The batch of step `step` from the fixture's "inputs" and "targets" (steps, B, T), I32.
inline Batch fixture_batch(const SafetensorsFile& fixture, int step) {
  const StoredTensor& inputs = fixture.get("inputs");
  const StoredTensor& targets = fixture.get("targets");
  Batch batch;
  batch.batch_size = static_cast<int>(inputs.shape[1]);
  batch.sequence_length = static_cast<int>(inputs.shape[2]);
  const std::size_t count = static_cast<std::size_t>(batch.batch_size) * batch.sequence_length;
  batch.inputs.resize(count);
  batch.targets.resize(count);
  std::memcpy(batch.inputs.data(), inputs.bytes.data() + step * count * 4, count * 4);
  std::memcpy(batch.targets.data(), targets.bytes.data() + step * count * 4, count * 4);
  return batch;
}

/// Largest |ours - reference| relative to the reference tensor's largest magnitude: entries whose exact value is 0
/// (the key bias gradient, padding) make a purely elementwise relative error meaningless.
inline double scaled_error(const float* ours, const std::vector<float>& reference) {
  double largest = 0, worst = 0;
  for (float v : reference) largest = std::max(largest, double(std::abs(v)));
  for (std::size_t i = 0; i < reference.size(); ++i) worst = std::max(worst, double(std::abs(ours[i] - reference[i])));
  return worst / std::max(largest, 1e-12);
}

}  // namespace ladder::testing_support
