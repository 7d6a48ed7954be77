/// @file safetensors_format.hpp
/// @brief Private helpers shared by the safetensors reader and writer: dtype names and checked byte counts.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/dtype.hpp"

namespace ladder::safetensors_format {

/// The format's limit on the JSON header (as in the Python library), so a corrupt length cannot ask for gigabytes.
inline constexpr std::uint64_t max_header_bytes = 100'000'000;

/// The DType spelled `name` ("F32", ...), or nothing when this project does not support it.
std::optional<DType> dtype_from_name(const std::string& name);

/// "F32, F16, BF16, F64, I32": the supported names, for error messages.
std::string supported_dtype_names();

/// Bytes of a tensor of this shape and dtype, or nothing when a dimension is negative or the count overflows.
std::optional<std::uint64_t> tensor_byte_count(const std::vector<std::int64_t>& shape, DType dtype);

/// "[2, 3]": a shape as error messages show it.
std::string shape_text(const std::vector<std::int64_t>& shape);

}  // namespace ladder::safetensors_format
