// What the tests of the CUDA ops share: a tensor held twice with identical content, once in host memory for the
// CPU reference op and once in GPU memory for the CUDA op, and the comparison of the two results.
//
// Outputs are poisoned with NaN on both devices before a call, so an element the op forgets to write stays NaN and
// fails the comparison (NaN is never "close" to anything). Gradients that accumulate start from the same random
// content on both devices, so the comparison also checks the += convention.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <limits>
#include <string>
#include <vector>

#include "common/dtype.hpp"
#include "common/memory.hpp"
#include "common/ops/ops.hpp"
#include "common/random.hpp"
#include "common/tensor.hpp"

namespace ladder::testing_support {

/// Element i of a host tensor of any dtype, as double.
inline double element_of(const Tensor& host, std::int64_t i) {
  switch (host.dtype()) {
    case DType::F32: return host.as<float>()[i];
    case DType::F64: return host.as<double>()[i];
    case DType::F16: return static_cast<float>(host.as<Half>()[i]);
    case DType::BF16: return static_cast<float>(host.as<BFloat16>()[i]);
    case DType::I32: return host.as<std::int32_t>()[i];
  }
  return 0;
}

/// Writes `value` into element i of a host tensor, rounded through float into 16-bit dtypes.
inline void set_element(const Tensor& host, std::int64_t i, double value) {
  switch (host.dtype()) {
    case DType::F32: host.as<float>()[i] = static_cast<float>(value); break;
    case DType::F64: host.as<double>()[i] = value; break;
    case DType::F16: host.as<Half>()[i] = Half(static_cast<float>(value)); break;
    case DType::BF16: host.as<BFloat16>()[i] = BFloat16(static_cast<float>(value)); break;
    case DType::I32: host.as<std::int32_t>()[i] = static_cast<std::int32_t>(value); break;
  }
}

/// Every element of a host tensor, as double.
inline std::vector<double> values_of(const Tensor& host) {
  std::vector<double> values(static_cast<std::size_t>(host.numel()));
  for (std::int64_t i = 0; i < host.numel(); ++i) values[i] = element_of(host, i);
  return values;
}

/// The relative spacing of a storage dtype's values, 2^-(mantissa bits): the size of one rounding on store.
inline double storage_epsilon(DType dtype) {
  switch (dtype) {
    case DType::F16: return std::ldexp(1.0, -10);
    case DType::BF16: return std::ldexp(1.0, -7);
    case DType::F64: return std::ldexp(1.0, -52);
    default: return std::ldexp(1.0, -23);
  }
}

/// How far a GPU element may lie from the CPU's: of_largest·max|cpu| + storage_ulps·storage_epsilon·|cpu element|.
/// The first term covers fp32 arithmetic done in another order (it scales with the tensor, since a sum that
/// cancels to near zero keeps the rounding errors of its large terms); the second covers the one rounding on
/// store, where two fp32 values a hair apart may round to neighbouring 16-bit values.
struct Tolerance {
  double of_largest;          ///< fraction of the tensor's largest CPU magnitude
  double storage_ulps = 2.0;  ///< units of storage_epsilon, relative to the element itself
};

/// Expects every GPU element within `tolerance` of the CPU's; a NaN on either side fails. Reports the first five
/// failures under `what`.
inline void expect_close(const std::vector<double>& gpu, const std::vector<double>& cpu, DType dtype,
                         Tolerance tolerance, const std::string& what) {
  ASSERT_EQ(gpu.size(), cpu.size()) << what;
  double largest = 0;
  for (double value : cpu) largest = std::max(largest, std::fabs(value));
  int failures = 0;
  for (std::size_t i = 0; i < cpu.size(); ++i) {
    const double allowed =
        tolerance.of_largest * largest + tolerance.storage_ulps * storage_epsilon(dtype) * std::fabs(cpu[i]);
    // Written so that NaN fails: every comparison with NaN is false.
    if (!(std::fabs(gpu[i] - cpu[i]) <= allowed) && ++failures <= 5) {
      ADD_FAILURE() << what << " (" << dtype_name(dtype) << ") [" << i << "]: gpu " << gpu[i] << ", cpu " << cpu[i]
                    << ", allowed difference " << allowed << " (largest |cpu| " << largest << ")";
    }
  }
  EXPECT_EQ(failures, 0) << what << " (" << dtype_name(dtype) << "): elements outside the tolerance, of "
                         << cpu.size();
}

/// A tensor of one dtype and shape in host memory and in GPU memory, meant to hold the same values.
class MirroredTensor {
 public:
  /// Zeroed memory for `shape` on both devices.
  MirroredTensor(DType dtype, std::initializer_list<std::int64_t> shape)
      : host_(bytes_for(dtype, shape), MemoryCategory::Activations, Device::CPU),
        device_(bytes_for(dtype, shape), MemoryCategory::Activations, Device::CUDA),
        host_view_(view_of(host_, dtype).reshaped(shape)),
        device_view_(view_of(device_, dtype).reshaped(shape)) {}

  /// The host copy, for the CPU op.
  Tensor cpu() const { return host_view_; }
  /// The GPU copy, for the CUDA op.
  Tensor gpu() const { return device_view_; }
  /// Element type.
  DType dtype() const { return host_view_.dtype(); }
  /// Number of elements.
  std::int64_t numel() const { return host_view_.numel(); }

  /// Sets element i to value_of(i) (rounded into the dtype) on the host, then copies the host content to the GPU.
  void assign(const std::function<double(std::int64_t)>& value_of) {
    for (std::int64_t i = 0; i < numel(); ++i) set_element(host_view_, i, value_of(i));
    upload();
  }
  /// Standard normals times `scale`, rounded to float first, the same on both devices.
  void fill_normal(Random& random, double scale = 1.0) {
    assign([&](std::int64_t) { return static_cast<float>(scale * random.normal()); });
  }
  /// NaN everywhere: an output that the op must overwrite completely.
  void poison() {
    assign([](std::int64_t) { return std::numeric_limits<double>::quiet_NaN(); });
  }
  /// Copies the host content to the GPU (e.g. the CPU forward's results, as identical inputs of both backwards).
  void upload() { ops::copy(device_view_, host_view_); }

  /// The host copy's elements.
  std::vector<double> cpu_values() const { return values_of(host_view_); }
  /// The GPU copy's elements, downloaded.
  std::vector<double> gpu_values() const {
    Buffer staging(device_.bytes(), MemoryCategory::Workspace, Device::CPU);
    const Tensor staged = view_of(staging, dtype());
    ops::copy(staged, device_view_.reshaped({numel()}));
    return values_of(staged);
  }

 private:
  static std::size_t bytes_for(DType dtype, std::initializer_list<std::int64_t> shape) {
    std::int64_t count = 1;
    for (std::int64_t extent : shape) count *= extent;
    return static_cast<std::size_t>(count) * dtype_size(dtype);
  }

  Buffer host_;
  Buffer device_;
  Tensor host_view_;
  Tensor device_view_;
};

/// Expects the GPU copy of `tensor` within `tolerance` of its host copy (see expect_close).
inline void expect_gpu_matches_cpu(const MirroredTensor& tensor, Tolerance tolerance, const std::string& what) {
  expect_close(tensor.gpu_values(), tensor.cpu_values(), tensor.dtype(), tolerance, what);
}

}  // namespace ladder::testing_support
