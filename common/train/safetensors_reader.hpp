/// @file safetensors_reader.hpp
/// @brief A safetensors file read tensor by tensor and piece by piece, for files too large to hold in memory twice.
#pragma once

#include <cstdint>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "common/train/safetensors_format.hpp"

namespace ladder {

/// A safetensors file whose header is read and validated at once, as SafetensorsFile::read does (any defect
/// throws LadderError naming the file and the defect), and whose data stays on disk until a piece of a tensor is
/// asked for: a checkpoint restores straight into the memory that holds the state, with no copy of the file.
class SafetensorsReader {
 public:
  /// Opens `path` and validates its header.
  explicit SafetensorsReader(const std::string& path);
  /// True when a tensor of that name exists.
  bool contains(const std::string& name) const { return index_.count(name) > 0; }
  /// The tensor of that name (type, shape, place); throws naming it and the file when absent.
  const safetensors_format::HeaderEntry& entry(const std::string& name) const;
  /// Names of all tensors, sorted.
  std::vector<std::string> names() const;
  /// Copies `bytes` bytes of tensor `name`, from `offset` bytes into it, to `destination` (host memory).
  void read(const std::string& name, std::uint64_t offset, void* destination, std::uint64_t bytes);
  /// The "__metadata__" strings.
  const std::map<std::string, std::string>& metadata() const { return header_.metadata; }
  /// Path it was opened from.
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::ifstream file_;
  safetensors_format::Header header_;
  std::map<std::string, std::size_t> index_;  // name -> position in header_.entries
};

}  // namespace ladder
