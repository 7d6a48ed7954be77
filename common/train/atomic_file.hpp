/// @file atomic_file.hpp
/// @brief Writing a file so that a crash leaves either the old file or the new one (temporary file, fsync,
/// rename), and refusing to rename over anything that is not a regular file (a device, a pipe, a folder).
#pragma once

#include <cstddef>
#include <string>

namespace ladder {

/// What `path` is, in words ("a folder", "a character device", "a FIFO (named pipe)", ...), following symbolic
/// links; "" when nothing is there and "a regular file" for one.
std::string file_kind(const std::string& path);

/// Throws LadderError "<what> <path>: is <kind>, not a regular file ..." when `path` exists and is not a regular
/// file: an atomic write renames its temporary file over the target, which would replace a device node such as
/// /dev/full with a plain file (as root), or a named pipe someone reads from.
void require_replaceable_file(const std::string& path, const std::string& what);

/// write(2) until all `size` bytes are out (it may write less than asked); false on an error, with errno set.
bool write_all(int descriptor, const void* data, std::size_t size);

/// fsync of the folder holding `path`: after a rename, the folder entry itself must reach the disk, or a power
/// cut could forget the new name. Best effort: the file is complete either way.
void sync_folder_of(const std::string& path);

/// Writes `content` to `path` atomically: a temporary file beside it, written, fsync'd, renamed over `path`, then
/// the folder fsync'd. `what` names the file in errors ("checkpoint manifest"). Nothing is left behind on failure.
void write_file_atomically(const std::string& path, const std::string& content, const std::string& what);

}  // namespace ladder
