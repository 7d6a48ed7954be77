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

/// fsync of the folder holding `path`: after a rename, the folder entry itself must reach the disk, or a power
/// cut could forget the new name. Best effort: the file is complete either way.
void sync_folder_of(const std::string& path);

/// A file written beside its target and renamed over it only once complete, so that a crash or a full disk leaves
/// the old file (or none) under the name, never a half one. On any failure the temporary file is removed and
/// LadderError says "cannot write <what> '<path>': <action> failed: <reason>".
class AtomicFile {
 public:
  /// Refuses a `path` that exists and is not a regular file (require_replaceable_file), then creates the temporary
  /// file beside it. `what` names the file in errors ("checkpoint", "checkpoint manifest").
  AtomicFile(const std::string& path, const std::string& what);
  /// Removes the temporary file when commit() was not reached.
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  /// Appends `size` bytes; `action` says what they are in an error ("writing tensor 'w'").
  void write(const void* data, std::size_t size, const std::string& action);
  /// Flushes the file to disk, closes it, renames it over the target (refused if something other than a regular
  /// file has appeared there meanwhile) and flushes the folder.
  void commit();
  /// False once the file was committed or a write failed.
  bool is_open() const { return descriptor_ >= 0; }

 private:
  [[noreturn]] void fail(const std::string& action);
  std::string path_;
  std::string what_;
  std::string temporary_;
  int descriptor_ = -1;
};

/// Writes `content` to `path` atomically with AtomicFile. `what` names the file in errors ("checkpoint manifest").
void write_file_atomically(const std::string& path, const std::string& content, const std::string& what);

}  // namespace ladder
