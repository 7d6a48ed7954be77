/// @file safetensors_format.hpp
/// @brief Private helpers shared by the safetensors reader and writer: dtype names and checked byte counts.
#pragma once

#include <cstdint>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/dtype.hpp"
#include "common/error.hpp"

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

/// The error for one defect of one file: "checkpoint 'a.safetensors': <defect>".
template <class... Parts>
LadderError defect(const std::string& path, const Parts&... parts) {
  return LadderError(make_message("checkpoint '", path, "': ", parts...));
}

/// One tensor of a validated header: its type, its shape, and where its bytes lie in the data section.
struct HeaderEntry {
  std::string name;                 ///< the tensor's name
  DType dtype = DType::F32;         ///< element type
  std::vector<std::int64_t> shape;  ///< row-major shape
  std::uint64_t begin = 0;          ///< first byte, counted from the start of the data section
  std::uint64_t end = 0;            ///< one past the last byte
};

/// A safetensors file's header, validated: the tensors tile the data section exactly, in `entries` (sorted by
/// offset), and the file has exactly the size the header implies.
struct Header {
  std::vector<HeaderEntry> entries;             ///< every tensor, in file order
  std::map<std::string, std::string> metadata;  ///< the "__metadata__" strings
  std::uint64_t data_start = 0;                 ///< file offset of the data section
  std::uint64_t file_bytes = 0;                 ///< the file's size
};

/// Opens `path` into `file` and reads and validates its header (length, JSON, dtypes, shapes, offsets in bounds,
/// contiguous and non-overlapping, file size exact); any defect throws LadderError naming the file and the defect.
Header read_header(const std::string& path, std::ifstream& file);

}  // namespace ladder::safetensors_format
