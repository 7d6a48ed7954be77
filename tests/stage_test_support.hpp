// What the tests of the training stages share: the bytes each memory category gained since a snapshot (a stage's
// memory table read off the accountant), the parameter count of the model those tests measure, and any float
// tensor read back as fp32 values.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "common/memory.hpp"
#include "common/ops/ops.hpp"
#include "common/tensor.hpp"

namespace ladder::testing_support {

/// Parameters of the "small" model at V = 16: 2·16·128 + 64·128 + 4·(12·128² + 13·128) + 2·128 = 805,632. Every
/// tensor is then a multiple of 16 elements, so the layout has no padding and this is its padded size as well.
inline constexpr std::int64_t kSmallParameterCountAtV16 =
    2 * 16 * 128 + 64 * 128 + 4 * (12 * 128 * 128 + 13 * 128) + 2 * 128;

/// The accountant's CPU usage when it was made, to tell what each memory category has gained since.
class MemorySnapshot {
 public:
  /// Bytes of `category` held on the CPU now, less those held when the snapshot was taken.
  std::int64_t added(MemoryCategory category) const {
    return memory_accountant().usage(Device::CPU, category).current - before_.usage(Device::CPU, category).current;
  }

  /// Expects every category back where the snapshot found it; a failure names the category that is not.
  void expect_all_returned() const {
    for (int c = 0; c < kMemoryCategoryCount; ++c) {
      const auto category = static_cast<MemoryCategory>(c);
      EXPECT_EQ(memory_accountant().usage(Device::CPU, category).current, before_.usage(Device::CPU, category).current)
          << category_name(category);
    }
  }

 private:
  // A copy, not a reference: the live accountant keeps changing.
  const MemoryAccountant before_ = memory_accountant();
};

/// Every element of a float tensor as fp32 (exact from fp16 and bf16, so zeros stay zeros), each multiplied by
/// `factor` in double and rounded back to fp32 (the default 1 leaves every value as it is).
inline std::vector<float> as_floats(Tensor tensor, double factor = 1.0) {
  std::vector<float> values(static_cast<std::size_t>(tensor.numel()));
  ops::convert(Tensor(values.data(), DType::F32, {tensor.numel()}), tensor.reshaped({tensor.numel()}));
  for (float& value : values) value = static_cast<float>(value * factor);
  return values;
}

}  // namespace ladder::testing_support
