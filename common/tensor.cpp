#include "common/tensor.hpp"

#include <sstream>

namespace ladder {

Tensor::Tensor(void* data, DType dtype, std::initializer_list<std::int64_t> shape, Device device)
    : data_(data), dtype_(dtype), device_(device), rank_(static_cast<int>(shape.size())) {
  LADDER_CHECK(rank_ <= kMaxRank, "tensor rank ", rank_, " exceeds the maximum of ", kMaxRank);
  int axis = 0;
  for (std::int64_t extent : shape) {
    LADDER_CHECK(extent >= 0, "negative tensor extent ", extent);
    shape_[axis++] = extent;
  }
}

std::int64_t Tensor::size(int axis) const {
  const int resolved = axis < 0 ? axis + rank_ : axis;
  LADDER_CHECK(resolved >= 0 && resolved < rank_, "axis ", axis, " out of range for shape ", shape_string());
  return shape_[resolved];
}

std::int64_t Tensor::numel() const {
  std::int64_t count = 1;
  for (int axis = 0; axis < rank_; ++axis) count *= shape_[axis];
  return count;
}

std::string Tensor::shape_string() const {
  std::ostringstream out;
  out << "[";
  for (int axis = 0; axis < rank_; ++axis) out << (axis ? ", " : "") << shape_[axis];
  out << "]";
  return out.str();
}

Tensor Tensor::reshaped(std::initializer_list<std::int64_t> shape) const {
  Tensor view(data_, dtype_, shape, device_);
  LADDER_CHECK(view.numel() == numel(), "cannot view shape ", shape_string(), " as ", view.shape_string());
  return view;
}

Tensor Tensor::slice(std::int64_t begin, std::int64_t count) const {
  LADDER_CHECK(begin >= 0 && count >= 0 && begin + count <= numel(), "slice [", begin, ", ", begin + count,
               ") outside a tensor of ", numel(), " elements");
  char* start = static_cast<char*>(data_) + begin * static_cast<std::int64_t>(dtype_size(dtype_));
  return Tensor(start, dtype_, {count}, device_);
}

Tensor view_of(const Buffer& buffer, DType dtype) {
  const auto element = static_cast<std::int64_t>(dtype_size(dtype));
  LADDER_CHECK(static_cast<std::int64_t>(buffer.bytes()) % element == 0, "buffer of ", buffer.bytes(),
               " bytes is not a whole number of ", dtype_name(dtype), " elements");
  return Tensor(buffer.data(), dtype, {static_cast<std::int64_t>(buffer.bytes()) / element}, buffer.device());
}

}  // namespace ladder
