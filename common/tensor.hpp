/// @file tensor.hpp
/// @brief Tensor: a non-owning, typed, shaped view of accounted memory.
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <string>

#include "common/dtype.hpp"
#include "common/error.hpp"
#include "common/memory.hpp"

namespace ladder {

/// A view: pointer, element type, device and a row-major shape of up to four dimensions.
/// Tensors never own memory; a Buffer does. Copying a Tensor copies the view.
class Tensor {
 public:
  /// Largest number of dimensions a view may have.
  static constexpr int kMaxRank = 4;

  Tensor() = default;
  /// A view of `data` with the given element type, shape and device.
  Tensor(void* data, DType dtype, std::initializer_list<std::int64_t> shape, Device device = Device::CPU);

  /// Untyped start of the view.
  void* data() const { return data_; }
  /// Typed start of the view; throws if T does not match the dtype.
  template <class T>
  T* as() const {
    LADDER_CHECK(dtype_of<T>() == dtype_, "tensor holds ", dtype_name(dtype_), ", read as ", dtype_name(dtype_of<T>()));
    return static_cast<T*>(data_);
  }
  /// Element type.
  DType dtype() const { return dtype_; }
  /// Device of the memory.
  Device device() const { return device_; }
  /// Number of dimensions.
  int rank() const { return rank_; }
  /// Size of dimension `axis` (negative counts from the end).
  std::int64_t size(int axis) const;
  /// Number of elements.
  std::int64_t numel() const;
  /// Size in bytes.
  std::int64_t bytes() const { return numel() * static_cast<std::int64_t>(dtype_size(dtype_)); }
  /// Shape as text, e.g. "[4, 64, 128]".
  std::string shape_string() const;
  /// The same memory seen with another shape of equal element count.
  Tensor reshaped(std::initializer_list<std::int64_t> shape) const;
  /// Elements [begin, begin + count) of the flattened view, as a 1-D view.
  Tensor slice(std::int64_t begin, std::int64_t count) const;

 private:
  void* data_ = nullptr;
  DType dtype_ = DType::F32;
  Device device_ = Device::CPU;
  int rank_ = 0;
  std::array<std::int64_t, kMaxRank> shape_{};
};

/// A 1-D view of a whole Buffer as `dtype` elements.
Tensor view_of(const Buffer& buffer, DType dtype);

}  // namespace ladder
