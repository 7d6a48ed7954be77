#include "common/train/atomic_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "common/error.hpp"

namespace ladder {

std::string file_kind(const std::string& path) {
  std::error_code error;
  switch (std::filesystem::status(path, error).type()) {
    case std::filesystem::file_type::not_found: return "";
    case std::filesystem::file_type::regular: return "a regular file";
    case std::filesystem::file_type::directory: return "a folder";
    case std::filesystem::file_type::character: return "a character device";
    case std::filesystem::file_type::block: return "a block device";
    case std::filesystem::file_type::fifo: return "a FIFO (named pipe)";
    case std::filesystem::file_type::socket: return "a socket";
    default: return error ? "unreadable (" + error.message() + ")" : "neither a file nor a folder";
  }
}

void require_replaceable_file(const std::string& path, const std::string& what) {
  const std::string kind = file_kind(path);
  LADDER_CHECK(kind.empty() || kind == "a regular file", what, " ", path, ": is ", kind,
               ", not a regular file; it would be replaced by one, so it is left alone (name a file path)");
}

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

void sync_folder_of(const std::string& path) {
  std::filesystem::path folder = std::filesystem::path(path).parent_path();
  if (folder.empty()) folder = ".";
  const int descriptor = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (descriptor < 0) return;
  ::fsync(descriptor);
  ::close(descriptor);
}

void write_file_atomically(const std::string& path, const std::string& content, const std::string& what) {
  require_replaceable_file(path, what);
  const std::string temporary = path + ".tmp." + std::to_string(::getpid());
  const int descriptor = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  LADDER_CHECK(descriptor >= 0, "cannot write ", what, " '", path, "': creating '", temporary,
               "' failed: ", std::strerror(errno));
  bool written = write_all(descriptor, content.data(), content.size()) && ::fsync(descriptor) == 0;
  int error = written ? 0 : errno;
  if (::close(descriptor) != 0 && written) {
    written = false;
    error = errno;
  }
  if (!written) {
    ::unlink(temporary.c_str());
    throw LadderError(make_message("cannot write ", what, " '", path, "': ", std::strerror(error)));
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    const int rename_error = errno;
    ::unlink(temporary.c_str());
    throw LadderError(make_message("cannot write ", what, " '", path, "': renaming '", temporary,
                                   "' into place failed: ", std::strerror(rename_error)));
  }
  sync_folder_of(path);
}

}  // namespace ladder
