#include "common/data/file_bytes.hpp"

#include <filesystem>
#include <fstream>
#include <system_error>

#include "common/error.hpp"

namespace ladder {

std::vector<unsigned char> read_file_bytes(const std::string& path, const std::string& what) {
  // Separate checks give separate messages: "missing" and "a directory" need different fixes.
  std::error_code error;
  const auto status = std::filesystem::status(path, error);
  LADDER_CHECK(std::filesystem::exists(status), what, " '", path, "' does not exist");
  LADDER_CHECK(!std::filesystem::is_directory(status), what, " '", path, "' is a directory, not a file");

  std::ifstream file(path, std::ios::binary);
  LADDER_CHECK(file.is_open(), what, " '", path, "' cannot be opened for reading (check its permissions)");
  file.seekg(0, std::ios::end);
  const std::streamoff size = file.tellg();
  LADDER_CHECK(size >= 0, what, " '", path, "' cannot be read (its size is unknown)");
  file.seekg(0, std::ios::beg);

  std::vector<unsigned char> bytes(static_cast<std::size_t>(size));
  file.read(reinterpret_cast<char*>(bytes.data()), size);
  LADDER_CHECK(file.gcount() == size, what, " '", path, "' could not be read: got ", file.gcount(), " of ", size,
               " bytes");
  return bytes;
}

}  // namespace ladder
