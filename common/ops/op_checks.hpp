/// @file op_checks.hpp
/// @brief The argument checks every op's entry point makes (device, dtype, shape), with messages naming the op.
#pragma once

#include <cstdint>
#include <initializer_list>

#include "common/error.hpp"
#include "common/tensor.hpp"

namespace ladder::ops {

/// A tensor argument together with the name that error messages call it (its parameter name in ops.hpp).
struct Argument {
  const char* name;      ///< parameter name, e.g. "dweight"
  const Tensor& tensor;  ///< the argument itself
};

/// In ArgumentChecks::shape(), an extent that may take any value.
inline constexpr std::int64_t kAnyExtent = -1;

/// True for the "none" value of an optional tensor argument: no elements, or a default-constructed view.
bool is_absent(const Tensor& tensor);

/// The dtype of statistics and per-position losses for a storage dtype: F64 for F64, F32 otherwise.
DType compute_dtype(DType storage);

/// The checks of one op's entry point; each failure throws LadderError with a message that starts with the op.
class ArgumentChecks {
 public:
  /// Checks made on behalf of the op named `op`.
  explicit ArgumentChecks(const char* op) : op_(op) {}
  /// Every present argument must live on one device, which is returned (absent optional arguments are skipped).
  Device same_device(std::initializer_list<Argument> arguments) const;
  /// Every argument must hold `expected`.
  void dtype(DType expected, std::initializer_list<Argument> arguments) const;
  /// Every argument must hold a floating-point storage type (F32, F64, F16, BF16).
  void floating(std::initializer_list<Argument> arguments) const;
  /// The argument's shape must be `expected`, where kAnyExtent matches any extent.
  void shape(Argument argument, std::initializer_list<std::int64_t> expected) const;
  /// Both arguments must have the same shape.
  void same_shape(Argument argument, Argument reference) const;
  /// The argument read as rows of `row_length` (its last extent): returns the row count, which must equal
  /// `expected_rows` unless that is kAnyExtent.
  std::int64_t rows(Argument argument, std::int64_t row_length, std::int64_t expected_rows = kAnyExtent) const;
  /// The argument's last extent (it must have at least one dimension).
  std::int64_t last_extent(Argument argument) const;
  /// The argument must hold exactly `count` elements.
  void element_count(Argument argument, std::int64_t count) const;
  /// No two present arguments may share a byte of memory (an op that updates them in place reads each as its own).
  void disjoint(std::initializer_list<Argument> arguments) const;
  /// Throws a LadderError of "<op>: " followed by the parts unless `condition` holds.
  template <class... Parts>
  void require(bool condition, const Parts&... parts) const {
    if (!condition) throw LadderError(make_message(op_, ": ", parts...));
  }

 private:
  const char* op_;
};

}  // namespace ladder::ops
