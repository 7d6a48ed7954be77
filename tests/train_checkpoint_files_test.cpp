// The files a checkpoint is made of: XXH64 against its published vectors, a safetensors file written in pieces and
// read back piece by piece, atomic writes that refuse to replace anything but a regular file, and the metrics file a
// resumed run continues.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/train/atomic_file.hpp"
#include "common/train/checksum.hpp"
#include "common/train/metrics_continuation.hpp"
#include "common/train/safetensors.hpp"
#include "common/train/safetensors_reader.hpp"
#include "tests/test_support.hpp"

namespace ladder {
namespace {

using testing_support::read_file;
using testing_support::TempFolder;
using testing_support::write_file;

std::uint64_t hash_of(const std::string& text) { return xxh64(text.data(), text.size()); }

TEST(Checksum, Xxh64MatchesThePublishedVectors) {
  EXPECT_EQ(hash_of(""), 0xEF46DB3751D8E999ULL);
  EXPECT_EQ(hash_of("a"), 0xD24EC4F1A98C6E5BULL);
  EXPECT_EQ(hash_of("abc"), 0x44BC2CF5AD770999ULL);
  EXPECT_EQ(hash_of("Hello, World!"), 0xC49AACF8080FE47FULL);
  EXPECT_EQ(hash_of("12345678901234567890123456789012"), 0x40FD1AA52D98274CULL);
  EXPECT_EQ(hash_of("The quick brown fox jumps over the lazy dog"), 0x0B242D361FDA71BCULL);
  EXPECT_EQ(hex64(0x0B242D361FDA71BCULL), "0b242d361fda71bc");
}

TEST(Checksum, AnySplitOfTheBytesGivesTheSameHash) {
  std::string text;
  for (int i = 0; i < 300; ++i) text += static_cast<char>(i * 37 + 11);
  const std::uint64_t whole = hash_of(text);
  for (std::size_t first = 0; first <= text.size(); first += 7) {
    for (std::size_t second : {std::size_t{1}, std::size_t{31}, std::size_t{64}}) {
      Xxh64 pieces;
      pieces.update(text.data(), first);
      const std::size_t middle = std::min(second, text.size() - first);
      pieces.update(text.data() + first, middle);
      pieces.update(text.data() + first + middle, text.size() - first - middle);
      ASSERT_EQ(pieces.digest(), whole) << first << " + " << middle;
    }
  }
}

TEST(SafetensorsPieces, ATensorWrittenInPiecesReadsBackAsOneAndPieceByPiece) {
  TempFolder folder;
  std::vector<float> values(100);
  for (std::size_t i = 0; i < values.size(); ++i) values[i] = 0.5f * static_cast<float>(i);
  const std::vector<TensorToWrite> layout = {{"first", DType::F32, {100}, nullptr}, {"second", DType::F32, {3}, nullptr}};
  SafetensorsWriter writer(folder / "pieces.safetensors", layout, {{"kind", "test"}});
  writer.write_part(values.data(), 40 * sizeof(float));
  writer.write_part(values.data() + 40, 60 * sizeof(float));
  writer.write_next(values.data());
  writer.commit();
  write_safetensors(folder / "whole.safetensors", {{"first", DType::F32, {100}, values.data()},
                                                   {"second", DType::F32, {3}, values.data()}}, {{"kind", "test"}});
  EXPECT_EQ(read_file(folder / "pieces.safetensors"), read_file(folder / "whole.safetensors"));

  SafetensorsReader reader(folder / "pieces.safetensors");
  EXPECT_EQ(reader.metadata().at("kind"), "test");
  EXPECT_EQ(reader.names(), (std::vector<std::string>{"first", "second"}));
  std::vector<float> read(10);
  reader.read("first", 90 * sizeof(float), read.data(), 10 * sizeof(float));
  EXPECT_EQ(read, std::vector<float>(values.begin() + 90, values.end()));
  EXPECT_THROW(reader.read("first", 95 * sizeof(float), read.data(), 10 * sizeof(float)), LadderError);
  EXPECT_THROW(reader.entry("third"), LadderError);
}

TEST(SafetensorsPieces, TooManyBytesForATensorAreRefused) {
  TempFolder folder;
  const float values[4] = {};
  SafetensorsWriter writer(folder / "a.safetensors", {{"a", DType::F32, {2}, nullptr}});
  EXPECT_THROW(writer.write_part(values, sizeof values), LadderError);
}

// A rename over a device node or a pipe would replace it by a plain file (as root even /dev/full): never done.
TEST(AtomicFiles, OnlyARegularFileOrNothingIsReplaced) {
  TempFolder folder;
  const std::string pipe = folder / "pipe";
  ASSERT_EQ(::mkfifo(pipe.c_str(), 0644), 0);
  const std::string message = testing_support::error_message_of(
      [&] { SafetensorsWriter writer(pipe, {{"a", DType::F32, {0}, nullptr}}); });
  EXPECT_NE(message.find("is a FIFO (named pipe), not a regular file"), std::string::npos) << message;
  EXPECT_THROW(write_file_atomically(pipe, "{}", "manifest"), LadderError);
  if (std::filesystem::is_character_file("/dev/full")) {
    EXPECT_THROW(write_safetensors("/dev/full", {}), LadderError);
    EXPECT_TRUE(std::filesystem::is_character_file("/dev/full"));
  }
  EXPECT_THROW(require_replaceable_file(folder.path().string(), "--save"), LadderError);
  EXPECT_TRUE(std::filesystem::is_fifo(pipe));
  EXPECT_EQ(folder.entries(), std::vector<std::string>{"pipe"}) << "no temporary file is left";

  write_file_atomically(folder / "text", "old", "test file");
  write_file_atomically(folder / "text", "new", "test file");
  EXPECT_EQ(read_file(folder / "text"), "new");
  EXPECT_EQ(file_kind(folder / "text"), "a regular file");
  EXPECT_EQ(file_kind(folder / "none"), "");
}

TEST(MetricsContinuation, EverythingAfterTheCheckpointsRecordIsCutOff) {
  TempFolder folder;
  const std::string path = folder / "metrics.jsonl";
  const std::string kept = "{\"type\":\"step\",\"step\":10}\n{\"type\":\"checkpoint\",\"step\":10}\n";
  write_file(path, kept + "{\"type\":\"step\",\"step\":11}\n{\"type\":\"summary\"}\n{\"type\":\"st");
  EXPECT_TRUE(continue_metrics_after(path, 10));
  EXPECT_EQ(read_file(path), kept);
  write_file(path, kept);
  EXPECT_FALSE(continue_metrics_after(path, 20)) << "no record of that checkpoint";
  EXPECT_EQ(read_file(path), kept) << "left alone";
  EXPECT_FALSE(continue_metrics_after(folder / "missing.jsonl", 10));
  EXPECT_FALSE(continue_metrics_after("/dev/null", 10));
  EXPECT_FALSE(continue_metrics_after("", 10));
}

}  // namespace
}  // namespace ladder
