// write_safetensors: bad input is refused before any file is touched, and a failing write leaves neither a
// half-written checkpoint nor a temporary file, and keeps the previous checkpoint intact.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "common/dtype.hpp"
#include "common/error.hpp"
#include "common/train/safetensors.hpp"
#include "tests/test_support.hpp"

namespace ladder {
namespace {

using testing_support::Bytes;
using testing_support::bytes_of;
using testing_support::read_bytes;
using testing_support::write_bytes;

TEST(Safetensors, BadTensorListsAreRefusedBeforeAnyFileIsTouched) {
  testing_support::TempFolder folder;
  const std::string path = (folder / "bad.safetensors");
  const float value = 1.0f;
  EXPECT_THROW(write_safetensors(path, {{"a", DType::F32, {1}, &value}, {"a", DType::F32, {1}, &value}}),
               LadderError);
  EXPECT_THROW(write_safetensors(path, {{"a", DType::F32, {-1}, &value}}), LadderError);
  EXPECT_THROW(write_safetensors(path, {{"a", DType::F32, {1}, nullptr}}), LadderError);
  EXPECT_THROW(write_safetensors(path, {{"__metadata__", DType::F32, {1}, &value}}), LadderError);
  EXPECT_TRUE(folder.entries().empty());
}

TEST(Safetensors, WritingIntoAMissingFolderThrowsAndLeavesNothing) {
  testing_support::TempFolder folder;
  const std::string path = (folder / "missing/model.safetensors");
  const float value = 1.0f;
  try {
    write_safetensors(path, {{"a", DType::F32, {1}, &value}});
    ADD_FAILURE() << "no error for a missing folder";
  } catch (const LadderError& error) {
    EXPECT_NE(std::string(error.what()).find("cannot write checkpoint '" + path + "'"), std::string::npos)
        << error.what();
  }
  EXPECT_TRUE(folder.entries().empty());
}

TEST(Safetensors, FailedOverwriteKeepsThePreviousFile) {
  testing_support::TempFolder folder;
  const std::string path = (folder / "model.safetensors");
  const std::vector<float> old_values = {1, 2, 3};
  write_safetensors(path, {{"w", DType::F32, {3}, old_values.data()}}, {{"version", "old"}});
  const Bytes before = read_bytes(path);

  // A file-size limit makes the kernel refuse writes past 4 KiB (EFBIG), as a full disk would.
  const std::vector<float> big(1 << 16, 7.0f);
  rlimit original{};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &original), 0);
  rlimit limited = original;
  limited.rlim_cur = 4096;
  const auto previous_handler = signal(SIGXFSZ, SIG_IGN);  // otherwise the limit kills the process
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &limited), 0);
  std::string message;
  try {
    write_safetensors(path, {{"w", DType::F32, {1 << 16}, big.data()}}, {{"version", "new"}});
  } catch (const LadderError& error) {
    message = error.what();
  }
  setrlimit(RLIMIT_FSIZE, &original);
  signal(SIGXFSZ, previous_handler);

  EXPECT_NE(message.find("cannot write checkpoint '" + path + "': writing tensor 'w' failed"), std::string::npos)
      << message;
  EXPECT_EQ(read_bytes(path), before);
  EXPECT_EQ(SafetensorsFile::read(path).metadata().at("version"), "old");
  EXPECT_EQ(folder.entries(), std::vector<std::string>{"model.safetensors"});

  // A rejected call (duplicate names) must not disturb the old file either.
  EXPECT_THROW(write_safetensors(path, {{"w", DType::F32, {3}, old_values.data()},
                                        {"w", DType::F32, {3}, old_values.data()}}),
               LadderError);
  EXPECT_EQ(read_bytes(path), before);
}

TEST(Safetensors, OverwriteReplacesTheWholeFile) {
  testing_support::TempFolder folder;
  const std::string path = (folder / "model.safetensors");
  const std::vector<float> big(100, 1.0f);
  const std::vector<float> small = {2.0f};
  write_safetensors(path, {{"w", DType::F32, {100}, big.data()}});
  write_safetensors(path, {{"v", DType::F32, {1}, small.data()}});
  const SafetensorsFile file = SafetensorsFile::read(path);  // would fail on leftover bytes of the old file
  EXPECT_EQ(file.names(), std::vector<std::string>{"v"});
  EXPECT_EQ(file.get("v").bytes, bytes_of(small));
}

}  // namespace
}  // namespace ladder
