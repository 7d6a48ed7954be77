/// @file atomic_file.hpp
/// @brief Writing a file so that its name only ever points at a complete version: beside it first, then renamed.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace ladder {

/// One run of bytes of a file being written, and what writing it is called in an error message.
struct FilePiece {
  std::string action;         ///< e.g. "writing tensor 'w'": an error reads "... writing tensor 'w' failed: ..."
  const void* data = nullptr; ///< the bytes
  std::size_t size = 0;       ///< how many
};

/// Writes the pieces, in order, to a temporary file beside `path`, flushes it to disk and renames it over `path`. On
/// any failure the temporary is removed, `path` is left as it was, and LadderError says "cannot write <kind> '<path>':
/// <action> failed: <reason>" (kind: "checkpoint", "adapter config", ...).
void write_file_atomically(const std::string& path, const std::string& kind, const std::vector<FilePiece>& pieces);

}  // namespace ladder
