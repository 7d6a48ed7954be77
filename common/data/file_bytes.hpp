/// @file file_bytes.hpp
/// @brief Reads a whole data file into memory, with errors that name the file.
#pragma once

#include <string>
#include <vector>

namespace ladder {

/// Every byte of the file at `path`; throws LadderError naming `path` when it is missing, a directory,
/// or cannot be read. `what` names the kind of file in the message (e.g. "text file").
std::vector<unsigned char> read_file_bytes(const std::string& path, const std::string& what);

}  // namespace ladder
