#include "common/train/atomic_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "common/error.hpp"

namespace ladder {
namespace {

/// write(2) may write less than asked; loop until all bytes are out or a real error occurs.
bool write_all(int descriptor, const void* data, std::size_t size) {
  const auto* bytes = static_cast<const unsigned char*>(data);
  while (size > 0) {
    const ssize_t written = ::write(descriptor, bytes, size);
    if (written < 0 && errno == EINTR) continue;
    if (written <= 0) return false;
    bytes += written;
    size -= static_cast<std::size_t>(written);
  }
  return true;
}

/// After the rename, the folder entry itself must reach the disk, or a power cut could forget the new name.
/// Failing here cannot corrupt anything (the file is complete either way), so it is best effort.
void sync_folder_of(const std::string& path) {
  std::filesystem::path folder = std::filesystem::path(path).parent_path();
  if (folder.empty()) folder = ".";
  const int descriptor = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (descriptor < 0) return;
  ::fsync(descriptor);
  ::close(descriptor);
}

}  // namespace

void write_file_atomically(const std::string& path, const std::string& kind, const std::vector<FilePiece>& pieces) {
  // A crash or full disk mid-write must never leave a half file under the real name: write beside it, then
  // rename, which replaces the old file in one step on POSIX file systems.
  const std::string temporary = path + ".tmp." + std::to_string(::getpid());
  const int descriptor = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  LADDER_CHECK(descriptor >= 0, "cannot write ", kind, " '", path, "': creating '", temporary, "' failed: ",
               std::strerror(errno));
  auto fail = [&](const std::string& what) {
    const int error = errno;
    ::close(descriptor);
    ::unlink(temporary.c_str());
    throw LadderError(make_message("cannot write ", kind, " '", path, "': ", what, " failed: ", std::strerror(error)));
  };
  for (const FilePiece& piece : pieces) {
    if (!write_all(descriptor, piece.data, piece.size)) fail(piece.action);
  }
  if (::fsync(descriptor) != 0) fail("flushing to disk (fsync)");
  if (::close(descriptor) != 0) {
    const int error = errno;
    ::unlink(temporary.c_str());
    throw LadderError(make_message("cannot write ", kind, " '", path, "': closing failed: ", std::strerror(error)));
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    const int error = errno;
    ::unlink(temporary.c_str());
    throw LadderError(make_message("cannot write ", kind, " '", path, "': renaming '", temporary,
                                   "' into place failed: ", std::strerror(error)));
  }
  sync_folder_of(path);
}

}  // namespace ladder
