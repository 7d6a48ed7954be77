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

/// write(2) until all `size` bytes are out (it may write less than asked); false on an error, with errno set.
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

}  // namespace

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

void sync_folder_of(const std::string& path) {
  std::filesystem::path folder = std::filesystem::path(path).parent_path();
  if (folder.empty()) folder = ".";
  const int descriptor = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (descriptor < 0) return;
  ::fsync(descriptor);
  ::close(descriptor);
}

AtomicFile::AtomicFile(const std::string& path, const std::string& what)
    : path_(path), what_(what), temporary_(path + ".tmp." + std::to_string(::getpid())) {
  require_replaceable_file(path_, what_);
  descriptor_ = ::open(temporary_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  LADDER_CHECK(descriptor_ >= 0, "cannot write ", what_, " '", path_, "': creating '", temporary_, "' failed: ",
               std::strerror(errno));
}

AtomicFile::~AtomicFile() {
  if (descriptor_ < 0) return;
  ::close(descriptor_);
  ::unlink(temporary_.c_str());
}

void AtomicFile::fail(const std::string& action) {
  const int error = errno;
  if (descriptor_ >= 0) ::close(descriptor_);
  descriptor_ = -1;
  ::unlink(temporary_.c_str());
  throw LadderError(make_message("cannot write ", what_, " '", path_, "': ", action, " failed: ", std::strerror(error)));
}

void AtomicFile::write(const void* data, std::size_t size, const std::string& action) {
  LADDER_CHECK(descriptor_ >= 0, "writing ", what_, " '", path_, "': the file is already closed");
  if (size > 0 && !write_all(descriptor_, data, size)) fail(action);
}

void AtomicFile::commit() {
  LADDER_CHECK(descriptor_ >= 0, "writing ", what_, " '", path_, "': the file is already closed");
  if (::fsync(descriptor_) != 0) fail("flushing to disk (fsync)");
  const int descriptor = descriptor_;
  descriptor_ = -1;
  if (::close(descriptor) != 0) {
    const int error = errno;
    ::unlink(temporary_.c_str());
    throw LadderError(make_message("cannot write ", what_, " '", path_, "': closing failed: ", std::strerror(error)));
  }
  // Checked again at the last moment: the target may have appeared since the file was begun.
  if (const std::string kind = file_kind(path_); !kind.empty() && kind != "a regular file") {
    ::unlink(temporary_.c_str());
    require_replaceable_file(path_, what_);
  }
  if (std::rename(temporary_.c_str(), path_.c_str()) != 0) {
    const int error = errno;
    ::unlink(temporary_.c_str());
    throw LadderError(make_message("cannot write ", what_, " '", path_, "': renaming '", temporary_,
                                   "' into place failed: ", std::strerror(error)));
  }
  sync_folder_of(path_);
}

void write_file_atomically(const std::string& path, const std::string& content, const std::string& what) {
  AtomicFile file(path, what);
  file.write(content.data(), content.size(), "writing");
  file.commit();
}

}  // namespace ladder
