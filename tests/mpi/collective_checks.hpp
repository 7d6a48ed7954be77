// What the collective tests of every backend share: each rank's input as a known function of (rank, index), a
// typed host array to hold it, and the tolerance of a reduced-precision reduction. With these the expected
// result of any collective is computed in double, without any communication.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "common/dtype.hpp"
#include "common/memory.hpp"
#include "common/tensor.hpp"

namespace ladder::collective_checks {

/// Rank `rank`'s input at `index`: small integers and halves, so fp16/bf16 hold every input exactly and only
/// the reductions round.
inline double value_of(int rank, std::int64_t index) {
  return static_cast<double>((rank * 7 + index * 3) % 23) / 2.0 - 5.0;
}

/// The floating-point types every collective is checked in.
inline const std::vector<DType> kFloatTypes = {DType::F32, DType::F64, DType::F16, DType::BF16};
/// Sizes that split evenly into no vector width.
inline const std::vector<std::int64_t> kOddSizes = {1, 7, 1001};

/// A typed host array filled from doubles, read back as doubles.
class Values {
 public:
  /// `count` zeros of `dtype`.
  Values(DType dtype, std::int64_t count)
      : dtype_(dtype), storage_(count * dtype_size(dtype), MemoryCategory::Workspace), count_(count) {}
  /// The whole array as a 1-D CPU tensor.
  Tensor tensor() const { return Tensor(storage_.data(), dtype_, {count_}); }
  /// Stores `value` at `i`, rounded to the element type.
  void set(std::int64_t i, double value) {
    switch (dtype_) {
      case DType::F32: static_cast<float*>(storage_.data())[i] = static_cast<float>(value); break;
      case DType::F64: static_cast<double*>(storage_.data())[i] = value; break;
      case DType::F16: static_cast<Half*>(storage_.data())[i] = Half(static_cast<float>(value)); break;
      case DType::BF16: static_cast<BFloat16*>(storage_.data())[i] = BFloat16(static_cast<float>(value)); break;
      case DType::I32: static_cast<std::int32_t*>(storage_.data())[i] = static_cast<std::int32_t>(value); break;
    }
  }
  /// The element at `i`, widened to double.
  double get(std::int64_t i) const {
    switch (dtype_) {
      case DType::F32: return static_cast<float*>(storage_.data())[i];
      case DType::F64: return static_cast<double*>(storage_.data())[i];
      case DType::F16: return static_cast<float>(static_cast<Half*>(storage_.data())[i]);
      case DType::BF16: return static_cast<float>(static_cast<BFloat16*>(storage_.data())[i]);
      case DType::I32: return static_cast<std::int32_t*>(storage_.data())[i];
    }
    return 0;
  }

 private:
  DType dtype_;
  Buffer storage_;
  std::int64_t count_;
};

/// Allowed error of a sum of a few of these values: exact in every type but bf16 (8 bits: 2^-8 relative) and
/// fp16 beyond 2048.
inline double tolerance(DType dtype, double expected) {
  if (dtype == DType::BF16) return std::abs(expected) * std::ldexp(1.0, -8) * 2;
  if (dtype == DType::F16) return std::abs(expected) * std::ldexp(1.0, -11) * 2;
  return 0.0;
}

}  // namespace ladder::collective_checks
