#include "common/train/safetensors_format.hpp"

namespace ladder::safetensors_format {
namespace {

constexpr DType supported_dtypes[] = {DType::F32, DType::F16, DType::BF16, DType::F64, DType::I32};

}  // namespace

std::optional<DType> dtype_from_name(const std::string& name) {
  for (DType dtype : supported_dtypes) {
    if (dtype_name(dtype) == name) return dtype;
  }
  return std::nullopt;
}

std::string supported_dtype_names() {
  std::string names;
  for (DType dtype : supported_dtypes) names += (names.empty() ? "" : ", ") + dtype_name(dtype);
  return names;
}

std::optional<std::uint64_t> tensor_byte_count(const std::vector<std::int64_t>& shape, DType dtype) {
  std::uint64_t bytes = dtype_size(dtype);
  for (std::int64_t dimension : shape) {
    if (dimension < 0) return std::nullopt;
    // A header is untrusted input: a product that wraps around would pass the size check with the wrong size.
    if (__builtin_mul_overflow(bytes, static_cast<std::uint64_t>(dimension), &bytes)) return std::nullopt;
  }
  return bytes;
}

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string text = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + "]";
}

}  // namespace ladder::safetensors_format
