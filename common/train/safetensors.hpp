/// @file safetensors.hpp
/// @brief Reading and writing the safetensors format: an 8-byte header length, a JSON header, raw data.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/dtype.hpp"
#include "common/train/atomic_file.hpp"

namespace ladder {

/// One tensor to write: a name, its type and shape, and where its bytes are (host memory).
struct TensorToWrite {
  std::string name;                 ///< unique name, e.g. "blocks.0.attn.qkv.weight"
  DType dtype = DType::F32;         ///< element type
  std::vector<std::int64_t> shape;  ///< row-major shape
  const void* data = nullptr;       ///< product(shape) elements of dtype
};

/// Writes tensors and string metadata to `path` atomically: a temporary file in the same folder, flushed,
/// then renamed over `path`. Nothing is left at `path` or beside it if writing fails (throws LadderError).
void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

/// Writes a safetensors file tensor by tensor, for data that never exists all at once (a sharded model gathered one
/// unit at a time): the header first, from the tensors' names, types and shapes (their data pointers are not used),
/// then each tensor's bytes in order, all into a temporary file beside `path` that commit() flushes and renames into
/// place. Destroyed before commit() (an error on the way), it removes the temporary file: nothing half-written stays.
/// A `path` that exists and is not a regular file (a device such as /dev/full, a pipe, a folder) is refused, never
/// renamed over.
class SafetensorsWriter {
 public:
  /// Checks the names, types and shapes and writes the header; throws LadderError naming the defect.
  SafetensorsWriter(const std::string& path, const std::vector<TensorToWrite>& tensors,
                    const std::map<std::string, std::string>& metadata = {});
  SafetensorsWriter(const SafetensorsWriter&) = delete;
  SafetensorsWriter& operator=(const SafetensorsWriter&) = delete;
  /// Writes the next tensor's bytes (its whole size, from host memory).
  void write_next(const void* data);
  /// Writes the next `bytes` of the current tensor (from host memory); the tensor is done once all its bytes are
  /// given, so a tensor larger than any staging buffer is written in pieces.
  void write_part(const void* data, std::uint64_t bytes);
  /// Flushes to disk and renames into place; throws if a tensor is missing or anything fails.
  void commit();

 private:
  std::string path_;
  std::vector<TensorToWrite> tensors_;
  std::size_t written_ = 0;  // tensors written so far
  std::uint64_t written_part_ = 0;  // bytes of the current tensor written so far
  std::optional<AtomicFile> file_;  // made once the header is known to be valid, so a bad call creates no file
};

/// One tensor read from a file.
struct StoredTensor {
  DType dtype = DType::F32;         ///< element type
  std::vector<std::int64_t> shape;  ///< row-major shape
  std::vector<unsigned char> bytes; ///< raw little-endian data
  /// Number of elements.
  std::int64_t numel() const;
};

/// A whole safetensors file, read and validated (header length, JSON, dtypes, shapes, offsets in bounds,
/// contiguous and non-overlapping, file size exact). Any defect throws LadderError naming the file and defect.
class SafetensorsFile {
 public:
  /// Reads and validates `path`.
  static SafetensorsFile read(const std::string& path);
  /// True when a tensor of that name exists.
  bool contains(const std::string& name) const;
  /// The tensor of that name; throws LadderError naming it and the file when absent.
  const StoredTensor& get(const std::string& name) const;
  /// The tensor of that name, checked to have this dtype and shape (throws naming what differs).
  const StoredTensor& get(const std::string& name, DType dtype, const std::vector<std::int64_t>& shape) const;
  /// Names of all tensors, sorted.
  std::vector<std::string> names() const;
  /// The "__metadata__" strings.
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  /// Path it was read from.
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::map<std::string, StoredTensor> tensors_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace ladder
