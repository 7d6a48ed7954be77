// Byte-level text files: windows are checked against the bytes written to a temporary file.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "common/data/data_source.hpp"
#include "common/data/text_file.hpp"
#include "common/error.hpp"
#include "tests/data_test_support.hpp"

namespace ladder {
namespace {

using testing_support::row_of;
using testing_support::slice_of;

namespace fs = std::filesystem;

// Each test writes its files into its own temporary folder.
class DataText : public ::testing::Test {
 protected:
  std::string write(const std::string& name, const std::string& content) const {
    testing_support::write_file(folder_ / name, content);
    return folder_ / name;
  }

  // Text with every byte value from the file's middle: windows must carry all 256 through unchanged.
  static std::string sample_text(std::size_t size) {
    std::string text;
    for (std::size_t i = 0; i < size; ++i) text += static_cast<char>((i * 131 + i / 7) % 256);
    return text;
  }

  testing_support::TempFolder folder_{"ladder-data-text"};
};

TEST_F(DataText, TrainWindowsAreTheFileBytesInOrder) {
  const std::string text = sample_text(1000);
  const int B = 2, T = 8;
  auto source = make_data_source("text:" + write("sample.txt", text), slice_of(0, 1, B, T), 1);
  EXPECT_EQ(source->vocab_size(), 256);
  const std::string description = source->describe();
  for (const char* piece : {"sample.txt", "1000 bytes", "900", "100 held out"}) {
    EXPECT_NE(description.find(piece), std::string::npos) << description;
  }
  // 10% of 1000 bytes held out: training is bytes [0, 900), windows start in [0, 892).
  const std::int64_t train = 900, starts = train - T;
  for (std::int64_t step = 0; step < 200; ++step) {  // 200 · 2 · 8 = 3200 bytes: wraps round 3 times
    const Batch batch = source->train_batch(step);
    ASSERT_EQ(batch.batch_size, B);
    ASSERT_EQ(batch.sequence_length, T);
    EXPECT_EQ(batch.valid_target_count(), B * T);
    for (int row = 0; row < B; ++row) {
      const std::int64_t start = ((step * B + row) * T) % starts;
      for (int t = 0; t < T; ++t) {
        EXPECT_EQ(batch.inputs[row * T + t], static_cast<unsigned char>(text[start + t])) << step << ' ' << row;
        EXPECT_EQ(batch.targets[row * T + t], static_cast<unsigned char>(text[start + t + 1])) << step << ' ' << row;
      }
      EXPECT_LT(start + T, train);  // the last target is still a training byte
    }
  }
}

TEST_F(DataText, EvalWindowsWalkTheLastTenthOnly) {
  const std::string text = sample_text(1000);
  const int B = 2, T = 8;
  auto source = make_data_source("text:" + write("sample.txt", text), slice_of(0, 1, B, T), 1);
  // 100 held-out bytes / (1 · 2 · 8) per batch = 6 batches.
  ASSERT_EQ(source->eval_batch_count(), 6);
  for (std::int64_t index = 0; index < 6; ++index) {
    const Batch batch = source->eval_batch(index);
    for (int row = 0; row < B; ++row) {
      const std::int64_t start = 900 + ((index * B + row) * T) % (100 - T);
      EXPECT_EQ(row_of(batch.inputs, row, T), source->encode(text.substr(start, T)));
      EXPECT_EQ(row_of(batch.targets, row, T), source->encode(text.substr(start + 1, T)));
    }
  }
  EXPECT_TRUE(source->eval_problems(10).empty());
  EXPECT_EQ(source->stop_token(), -1);
  EXPECT_NE(testing_support::error_message_of([&] { source->eval_batch(6); }).find("6"), std::string::npos);
}

TEST_F(DataText, HeldOutPartIsATenthButAtLeastOneWindow) {
  const int T = 8;
  TextFileSource large(write("large.txt", sample_text(100000)), slice_of(0, 1, 2, T));
  EXPECT_EQ(large.held_out_token_count(), 10000);
  EXPECT_EQ(large.train_token_count(), 90000);
  EXPECT_EQ(large.eval_batch_count(), 64);  // 10000 / 16 = 625, capped
  // The smallest file that works: 2 (T + 1) bytes, half of them held out.
  TextFileSource smallest(write("small.txt", sample_text(18)), slice_of(0, 1, 2, T));
  EXPECT_EQ(smallest.held_out_token_count(), 9);
  EXPECT_EQ(smallest.train_token_count(), 9);
  EXPECT_EQ(smallest.eval_batch_count(), 1);
  EXPECT_EQ(smallest.train_batch(5).inputs, smallest.encode(sample_text(8) + sample_text(8)));
}

TEST_F(DataText, TwoRanksSeeWhatOneRankWithTwiceTheRowsSees) {
  testing_support::expect_two_ranks_match_one("text:" + write("sample.txt", sample_text(5000)), 3, 16, 1, 30);
}

TEST_F(DataText, BatchesAreDeterministicAndIndependentOfTheSeed) {
  const std::string path = "text:" + write("sample.txt", sample_text(3000));
  auto source = make_data_source(path, slice_of(0, 1, 4, 16), 1);
  auto again = make_data_source(path, slice_of(0, 1, 4, 16), 1);
  auto other_seed = make_data_source(path, slice_of(0, 1, 4, 16), 2);
  EXPECT_EQ(source->train_batch(7).inputs, again->train_batch(7).inputs);
  // Files are read in order whatever the seed, so seeds change only the weights.
  EXPECT_EQ(source->train_batch(7).inputs, other_seed->train_batch(7).inputs);
  EXPECT_NE(source->train_batch(7).inputs, source->train_batch(8).inputs);
}

TEST_F(DataText, DecodeShowsTextAndMasksControlBytes) {
  auto source = make_data_source("text:" + write("sample.txt", sample_text(100)), slice_of(0, 1, 1, 8), 1);
  const std::string utf8 = "na\xC3\xAFve caf\xC3\xA9\n\tend";
  EXPECT_EQ(source->decode(source->encode(utf8)), utf8);
  EXPECT_EQ(source->encode("A\xFF"), (std::vector<std::int32_t>{65, 255}));
  EXPECT_EQ(source->decode({72, 0, 105, 7, 27, 127, 10, 9}), "H?i???\n\t");
  EXPECT_NE(testing_support::error_message_of([&] { source->decode({65, 256}); }).find("256"), std::string::npos);
}

TEST_F(DataText, RejectsMissingEmptyShortAndFolderPaths) {
  const std::string missing = folder_ / "absent.txt";
  std::string message = testing_support::error_message_of([&] { make_data_source("text:" + missing, slice_of(0, 1, 2, 8), 1); });
  EXPECT_NE(message.find(missing), std::string::npos) << message;
  EXPECT_NE(message.find("does not exist"), std::string::npos) << message;

  const std::string empty = write("empty.txt", "");
  message = testing_support::error_message_of([&] { make_data_source("text:" + empty, slice_of(0, 1, 2, 8), 1); });
  EXPECT_NE(message.find(empty), std::string::npos) << message;
  EXPECT_NE(message.find("empty"), std::string::npos) << message;

  const std::string short_file = write("short.txt", sample_text(17));  // needs 2 (8 + 1) = 18
  message = testing_support::error_message_of([&] { make_data_source("text:" + short_file, slice_of(0, 1, 2, 8), 1); });
  EXPECT_NE(message.find(short_file), std::string::npos) << message;
  EXPECT_NE(message.find("17 bytes"), std::string::npos) << message;
  EXPECT_NE(message.find("18"), std::string::npos) << message;

  message = testing_support::error_message_of([&] { make_data_source("text:" + folder_.path().string(), slice_of(0, 1, 2, 8), 1); });
  EXPECT_NE(message.find("directory"), std::string::npos) << message;

  const std::string good = "text:" + write("good.txt", sample_text(100));
  message = testing_support::error_message_of([&] { make_data_source(good, slice_of(0, 1, 2, 0), 1); });
  EXPECT_NE(message.find("T = 0"), std::string::npos) << message;
  message = testing_support::error_message_of([&] { make_data_source(good, slice_of(3, 2, 2, 8), 1); });
  EXPECT_NE(message.find("rank 3"), std::string::npos) << message;
  message = testing_support::error_message_of([&] { make_data_source("text:", slice_of(0, 1, 2, 8), 1); });
  EXPECT_NE(message.find("text:PATH"), std::string::npos) << message;
}

TEST_F(DataText, RejectsAnUnreadableFile) {
  const std::string locked = write("locked.txt", sample_text(100));
  fs::permissions(locked, fs::perms::none);
  if (std::ifstream(locked).is_open()) {
    GTEST_SKIP() << "running as root: a file without read permission is still readable here";
  }
  const std::string message = testing_support::error_message_of([&] { make_data_source("text:" + locked, slice_of(0, 1, 2, 8), 1); });
  EXPECT_NE(message.find(locked), std::string::npos) << message;
  EXPECT_NE(message.find("cannot be opened"), std::string::npos) << message;
}

}  // namespace
}  // namespace ladder
