// What many tests need: a private temporary folder, whole-file reads and writes, the raw bytes of values, and
// the message of an expected LadderError.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "common/error.hpp"

namespace ladder::testing_support {

/// Raw file content.
using Bytes = std::vector<unsigned char>;

/// A fresh folder under the system temp dir, named by `prefix`, the process and the running test (so parallel
/// ctest runs never share one), removed with everything in it when the object goes.
class TempFolder {
 public:
  explicit TempFolder(const std::string& prefix = "ladder-test") {
    const auto* test = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = std::filesystem::temp_directory_path() /
            (prefix + "-" + std::to_string(::getpid()) + "-" + (test != nullptr ? test->name() : "setup"));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempFolder() { std::filesystem::remove_all(path_); }
  TempFolder(const TempFolder&) = delete;
  TempFolder& operator=(const TempFolder&) = delete;
  const std::filesystem::path& path() const { return path_; }
  /// Path of a file inside the folder.
  std::string operator/(const std::string& file) const { return (path_ / file).string(); }
  /// Names of everything in the folder, sorted (to prove that nothing was left behind).
  std::vector<std::string> entries() const {
    std::vector<std::string> names;
    for (const auto& entry : std::filesystem::directory_iterator(path_)) names.push_back(entry.path().filename());
    std::sort(names.begin(), names.end());
    return names;
  }

 private:
  std::filesystem::path path_;
};

inline std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream content;
  content << in.rdbuf();
  return content.str();
}

inline void write_file(const std::filesystem::path& path, const std::string& content) {
  std::ofstream(path, std::ios::binary) << content;
}

inline Bytes read_bytes(const std::filesystem::path& path) {
  std::ifstream file(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
}

inline void write_bytes(const std::filesystem::path& path, const Bytes& bytes) {
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

/// Raw bytes of a few values, for comparing with what a file holds.
template <class Value>
Bytes bytes_of(const std::vector<Value>& values) {
  Bytes bytes(values.size() * sizeof(Value));
  std::memcpy(bytes.data(), values.data(), bytes.size());
  return bytes;
}

/// The message of the LadderError that `action` throws; records a test failure if it throws none.
inline std::string error_message_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const LadderError& error) {
    return error.what();
  }
  ADD_FAILURE() << "expected a LadderError";
  return "";
}

/// `action` must throw a LadderError whose message contains every fragment.
inline void expect_error_mentioning(const std::function<void()>& action,
                                    std::initializer_list<const char*> fragments) {
  const std::string message = error_message_of(action);
  for (const char* fragment : fragments) {
    EXPECT_NE(message.find(fragment), std::string::npos) << "'" << fragment << "' missing from: " << message;
  }
}

}  // namespace ladder::testing_support
