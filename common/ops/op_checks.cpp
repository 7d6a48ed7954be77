#include "common/ops/op_checks.hpp"

#include <sstream>

namespace ladder::ops {

namespace {

std::string expected_shape_string(std::initializer_list<std::int64_t> expected) {
  std::ostringstream out;
  out << "[";
  int axis = 0;
  for (std::int64_t extent : expected) {
    out << (axis++ ? ", " : "");
    if (extent == kAnyExtent)
      out << "*";
    else
      out << extent;
  }
  out << "]";
  return out.str();
}

}  // namespace

bool is_absent(const Tensor& tensor) { return tensor.numel() == 0 || (tensor.rank() == 0 && tensor.data() == nullptr); }

DType compute_dtype(DType storage) { return storage == DType::F64 ? DType::F64 : DType::F32; }

Device ArgumentChecks::same_device(std::initializer_list<Argument> arguments) const {
  const char* first_name = nullptr;
  Device device = Device::CPU;
  for (const Argument& argument : arguments) {
    if (is_absent(argument.tensor)) continue;
    if (first_name == nullptr) {
      first_name = argument.name;
      device = argument.tensor.device();
      continue;
    }
    require(argument.tensor.device() == device, argument.name, " is on ", device_name(argument.tensor.device()),
            " but ", first_name, " is on ", device_name(device), ": every tensor of one op must be on one device");
  }
  return device;
}

void ArgumentChecks::dtype(DType expected, std::initializer_list<Argument> arguments) const {
  for (const Argument& argument : arguments) {
    require(argument.tensor.dtype() == expected, argument.name, " holds ", dtype_name(argument.tensor.dtype()),
            ", expected ", dtype_name(expected));
  }
}

void ArgumentChecks::floating(std::initializer_list<Argument> arguments) const {
  for (const Argument& argument : arguments) {
    require(argument.tensor.dtype() != DType::I32, argument.name, " holds ", dtype_name(argument.tensor.dtype()),
            ", expected a floating-point dtype (F32, F64, F16 or BF16)");
  }
}

void ArgumentChecks::shape(Argument argument, std::initializer_list<std::int64_t> expected) const {
  bool matches = argument.tensor.rank() == static_cast<int>(expected.size());
  int axis = 0;
  for (std::int64_t extent : expected) {
    if (!matches) break;
    matches = extent == kAnyExtent || argument.tensor.size(axis) == extent;
    ++axis;
  }
  require(matches, argument.name, " has shape ", argument.tensor.shape_string(), ", expected ",
          expected_shape_string(expected));
}

void ArgumentChecks::same_shape(Argument argument, Argument reference) const {
  bool matches = argument.tensor.rank() == reference.tensor.rank();
  for (int axis = 0; matches && axis < reference.tensor.rank(); ++axis) {
    matches = argument.tensor.size(axis) == reference.tensor.size(axis);
  }
  require(matches, argument.name, " has shape ", argument.tensor.shape_string(), " but ", reference.name, " has ",
          reference.tensor.shape_string(), "; they must be equal");
}

std::int64_t ArgumentChecks::last_extent(Argument argument) const {
  require(argument.tensor.rank() >= 1, argument.name, " has shape ", argument.tensor.shape_string(),
          ", expected at least one dimension");
  return argument.tensor.size(-1);
}

std::int64_t ArgumentChecks::rows(Argument argument, std::int64_t row_length, std::int64_t expected_rows) const {
  require(last_extent(argument) == row_length, argument.name, " has shape ", argument.tensor.shape_string(),
          ", expected rows of ", row_length, " in its last dimension");
  std::int64_t count = 1;  // the product of the leading extents: right even for rows of length 0
  for (int axis = 0; axis + 1 < argument.tensor.rank(); ++axis) count *= argument.tensor.size(axis);
  require(expected_rows == kAnyExtent || count == expected_rows, argument.name, " has shape ",
          argument.tensor.shape_string(), ", expected ", expected_rows, " rows of ", row_length);
  return count;
}

void ArgumentChecks::element_count(Argument argument, std::int64_t count) const {
  require(argument.tensor.numel() == count, argument.name, " has shape ", argument.tensor.shape_string(), " (",
          argument.tensor.numel(), " elements), expected ", count, " elements");
}

void ArgumentChecks::disjoint(std::initializer_list<Argument> arguments) const {
  for (auto first = arguments.begin(); first != arguments.end(); ++first) {
    for (auto second = first + 1; second != arguments.end(); ++second) {
      if (is_absent(first->tensor) || is_absent(second->tensor)) continue;
      const auto start = [](const Tensor& tensor) { return reinterpret_cast<std::uintptr_t>(tensor.data()); };
      const auto end = [&](const Tensor& tensor) {
        return start(tensor) + static_cast<std::uintptr_t>(tensor.bytes());
      };
      require(end(first->tensor) <= start(second->tensor) || end(second->tensor) <= start(first->tensor),
              first->name, " and ", second->name, " share memory: each must be a tensor of its own");
    }
  }
}

}  // namespace ladder::ops
