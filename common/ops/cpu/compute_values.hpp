/// @file compute_values.hpp
/// @brief Helpers of the CPU ops: accounted scratch arrays, compute-type views of stored data, exact conversions.
///
/// The CPU ops store in any of float, double, Half, BFloat16 but do their arithmetic in ComputeType. Converting
/// a Half element is a function call, so hot loops (GEMM, attention) first convert whole spans into compute-type
/// scratch, work there, and round back once. For float and double the views are the data itself: no copy.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "common/dtype.hpp"
#include "common/error.hpp"
#include "common/memory.hpp"

namespace ladder::ops::cpu {

/// A zeroed array of `count` elements of T in Workspace memory, freed when it goes out of scope.
template <class T>
class Scratch {
 public:
  /// Allocates `count` elements (zero elements allocate nothing).
  explicit Scratch(std::int64_t count)
      : buffer_(static_cast<std::size_t>(count) * sizeof(T), MemoryCategory::Workspace) {}
  /// Start of the array.
  T* data() const { return static_cast<T*>(buffer_.data()); }
  /// Element `index`.
  T& operator[](std::int64_t index) const { return data()[index]; }

 private:
  Buffer buffer_;
};

/// True when storage type S must be converted to be computed with (Half, BFloat16).
template <class S>
inline constexpr bool kIsReducedPrecision = !std::is_same_v<S, ComputeType<S>>;

/// Reads `count` stored elements into compute values.
template <class S>
void load_span(const S* source, ComputeType<S>* destination, std::int64_t count) {
  for (std::int64_t i = 0; i < count; ++i) destination[i] = load<S>(source[i]);
}

/// Rounds `count` compute values into storage.
template <class S>
void store_span(const ComputeType<S>* source, S* destination, std::int64_t count) {
  for (std::int64_t i = 0; i < count; ++i) destination[i] = store<S>(source[i]);
}

/// Stored elements seen as compute values: the storage itself for float and double, a converted scratch copy
/// for Half and BFloat16.
template <class S>
class ComputeView {
 public:
  /// Views (or converts) `count` elements starting at `source`.
  ComputeView(const S* source, std::int64_t count) : copy_(kIsReducedPrecision<S> ? count : 0) {
    if constexpr (kIsReducedPrecision<S>) {
      load_span(source, copy_.data(), count);
      values_ = copy_.data();
    } else {
      values_ = source;
    }
  }
  /// The compute values.
  const ComputeType<S>* data() const { return values_; }

 private:
  Scratch<ComputeType<S>> copy_;
  const ComputeType<S>* values_ = nullptr;
};

/// A writable compute-type view of stored elements. For Half and BFloat16 it is a scratch copy that store()
/// rounds back once, so a result built from many additions (a GEMM, a sum over rows) is rounded only at the end.
template <class S>
class ComputeTarget {
 public:
  /// A view of `count` elements at `destination`; with `keep_contents` the current values are loaded (for +=).
  ComputeTarget(S* destination, std::int64_t count, bool keep_contents)
      : destination_(destination), count_(count), copy_(kIsReducedPrecision<S> ? count : 0) {
    if constexpr (kIsReducedPrecision<S>) {
      if (keep_contents) load_span(destination, copy_.data(), count);
      values_ = copy_.data();
    } else {
      values_ = destination;
    }
  }
  /// The compute values to read and write.
  ComputeType<S>* data() const { return values_; }
  /// Rounds the compute values into storage (nothing to do when storage is the compute type).
  void store() const {
    if constexpr (kIsReducedPrecision<S>) store_span(values_, destination_, count_);
  }

 private:
  S* destination_;
  std::int64_t count_;
  Scratch<ComputeType<S>> copy_;
  ComputeType<S>* values_ = nullptr;
};

/// Rounds a double to float "to odd": truncate, then set the last bit if anything was dropped. A second rounding
/// of that float to Half or BFloat16 then equals rounding the double directly (float keeps 2+ spare bits).
inline float round_to_odd_float(double value) {
  const float nearest = static_cast<float>(value);
  if (std::isnan(value) || static_cast<double>(nearest) == value) return nearest;
  const float truncated =
      std::fabs(static_cast<double>(nearest)) > std::fabs(value) ? std::nextafter(nearest, 0.0f) : nearest;
  std::uint32_t bits;
  std::memcpy(&bits, &truncated, sizeof bits);
  bits |= 1u;
  float odd;
  std::memcpy(&odd, &bits, sizeof odd);
  return odd;
}

/// Converts one element between storage types with a single correct rounding.
template <class Destination, class Source>
Destination convert_element(Source value) {
  if constexpr (std::is_same_v<Destination, Source>) {
    return value;
  } else if constexpr (std::is_same_v<Source, double> && kIsReducedPrecision<Destination>) {
    return store<Destination>(round_to_odd_float(value));
  } else {
    return store<Destination>(static_cast<ComputeType<Destination>>(load<Source>(value)));
  }
}

/// Calls `function` with a value of the C++ storage type that `dtype` names; `op` names the caller in errors.
template <class Function>
decltype(auto) visit_float_dtype(DType dtype, const char* op, Function&& function) {
  switch (dtype) {
    case DType::F32: return function(float{});
    case DType::F64: return function(double{});
    case DType::F16: return function(Half{});
    case DType::BF16: return function(BFloat16{});
    case DType::I32: break;
  }
  throw LadderError(make_message(op, ": dtype ", dtype_name(dtype),
                                 " is not a floating-point storage type (expected F32, F64, F16 or BF16)"));
}

}  // namespace ladder::ops::cpu
