// GPT-2 token shards in llm.c's .bin format: shards are written here byte by byte, valid and broken.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "common/data/data_source.hpp"
#include "common/data/token_shard.hpp"
#include "common/error.hpp"
#include "tests/data_test_support.hpp"

namespace ladder {
namespace {

using testing_support::row_of;
using testing_support::slice_of;

namespace fs = std::filesystem;

// Token ids spread over the whole GPT-2 range, including the largest, 50256.
std::vector<std::uint16_t> sample_tokens(std::size_t count) {
  std::vector<std::uint16_t> tokens(count);
  for (std::size_t i = 0; i < count; ++i) tokens[i] = static_cast<std::uint16_t>((i * 7919 + 3) % 50257);
  if (count > 10) tokens[10] = 50256;
  return tokens;
}

// The llm.c layout written out by hand: 256 little-endian int32, then little-endian uint16 tokens.
std::string shard_bytes(std::int32_t magic, std::int32_t version, std::int32_t count,
                        const std::vector<std::uint16_t>& tokens) {
  std::string bytes(1024, '\0');
  const std::int32_t header[3] = {magic, version, count};
  for (int word = 0; word < 3; ++word) {
    const auto value = static_cast<std::uint32_t>(header[word]);
    for (int byte = 0; byte < 4; ++byte) bytes[word * 4 + byte] = static_cast<char>((value >> (8 * byte)) & 0xFF);
  }
  for (const std::uint16_t token : tokens) {
    bytes += static_cast<char>(token & 0xFF);
    bytes += static_cast<char>(token >> 8);
  }
  return bytes;
}

class DataTokens : public ::testing::Test {
 protected:
  std::string write(const std::string& name, const std::string& content) const {
    testing_support::write_file(folder_ / name, content);
    return folder_ / name;
  }

  std::string write_shard(const std::string& name, const std::vector<std::uint16_t>& tokens) const {
    return write(name, shard_bytes(20240520, 1, static_cast<std::int32_t>(tokens.size()), tokens));
  }

  testing_support::TempFolder folder_{"ladder-data-tokens"};
};

TEST_F(DataTokens, WindowsAreTheShardTokensInOrder) {
  const std::vector<std::uint16_t> tokens = sample_tokens(2000);
  const int B = 2, T = 16;
  auto source = make_data_source("tokens:" + write_shard("shard.bin", tokens), slice_of(0, 1, B, T), 1);
  EXPECT_EQ(source->vocab_size(), 50257);
  EXPECT_EQ(source->stop_token(), -1);
  EXPECT_TRUE(source->eval_problems(5).empty());
  // 200 tokens held out, 1800 train; windows start in [0, 1800 - T).
  for (std::int64_t step = 0; step < 120; ++step) {  // 120 · 32 = 3840 tokens: wraps round twice
    const Batch batch = source->train_batch(step);
    EXPECT_EQ(batch.valid_target_count(), B * T);
    for (int row = 0; row < B; ++row) {
      const std::int64_t start = ((step * B + row) * T) % (1800 - T);
      for (int t = 0; t < T; ++t) {
        EXPECT_EQ(batch.inputs[row * T + t], tokens[start + t]);
        EXPECT_EQ(batch.targets[row * T + t], tokens[start + t + 1]);
      }
    }
  }
  ASSERT_EQ(source->eval_batch_count(), 6);  // 200 / 32
  for (std::int64_t index = 0; index < 6; ++index) {
    const Batch batch = source->eval_batch(index);
    for (int row = 0; row < B; ++row) {
      const std::int64_t start = 1800 + ((index * B + row) * T) % (200 - T);
      for (int t = 0; t < T; ++t) {
        EXPECT_EQ(batch.inputs[row * T + t], tokens[start + t]);
        EXPECT_EQ(batch.targets[row * T + t], tokens[start + t + 1]);
      }
    }
  }
}

TEST_F(DataTokens, TwoRanksSeeWhatOneRankWithTwiceTheRowsSees) {
  const std::string path = "tokens:" + write_shard("shard.bin", sample_tokens(4000));
  testing_support::expect_two_ranks_match_one(path, 2, 24, 9, 40);
  auto whole = make_data_source(path, slice_of(0, 1, 4, 24), 9);
  auto again = make_data_source(path, slice_of(0, 1, 4, 24), 9);
  EXPECT_EQ(whole->train_batch(3).inputs, again->train_batch(3).inputs);
  EXPECT_NE(whole->train_batch(3).inputs, whole->train_batch(4).inputs);
}

TEST_F(DataTokens, DecodeNamesIdsAndEncodeIsRefused) {
  TokenShardSource source(write_shard("shard.bin", sample_tokens(100)), slice_of(0, 1, 1, 8));
  EXPECT_EQ(source.decode({15496, 11, 0, 50256}), "<15496> <11> <0> <50256>");
  EXPECT_EQ(source.decode({}), "");
  EXPECT_NE(testing_support::error_message_of([&] { source.decode({50257}); }).find("50257"), std::string::npos);
  const std::string message = testing_support::error_message_of([&] { source.encode("Hello"); });
  EXPECT_NE(message.find("BPE"), std::string::npos) << message;
  EXPECT_NE(message.find("text"), std::string::npos) << message;
}

TEST_F(DataTokens, RejectsMalformedShards) {
  const DataSlice slice = slice_of(0, 1, 2, 8);
  const std::vector<std::uint16_t> tokens = sample_tokens(100);
  const std::string good = shard_bytes(20240520, 1, 100, tokens);
  const auto expect_error = [&](const std::string& path, const std::vector<std::string>& pieces) {
    const std::string message = testing_support::error_message_of([&] { make_data_source("tokens:" + path, slice, 1); });
    EXPECT_NE(message.find(path), std::string::npos) << message;
    for (const std::string& piece : pieces) EXPECT_NE(message.find(piece), std::string::npos) << message;
  };

  expect_error(folder_ / "absent.bin", {"does not exist"});
  expect_error(write("bad_magic.bin", shard_bytes(20240521, 1, 100, tokens)), {"magic", "20240521", "20240520"});
  expect_error(write("bad_version.bin", shard_bytes(20240520, 2, 100, tokens)), {"version 2"});
  expect_error(write("truncated.bin", good.substr(0, good.size() - 1)), {"truncated", "1223 bytes", "1224"});
  expect_error(write("trailing.bin", good + "xy"), {"trailing", "1226 bytes"});
  expect_error(write("header_only.bin", good.substr(0, 500)), {"500 bytes", "header"});
  expect_error(write("negative.bin", shard_bytes(20240520, 1, -4, {})), {"-4"});

  std::vector<std::uint16_t> bad_token = tokens;
  bad_token[37] = 50257;
  bad_token[60] = 65535;  // a later bad id: the message names the first
  expect_error(write("bad_token.bin", shard_bytes(20240520, 1, 100, bad_token)), {"50257", "position 37"});

  // 17 tokens cannot hold two windows of T + 1 = 9; 18 can.
  expect_error(write_shard("short.bin", sample_tokens(17)), {"17 tokens", "18"});
  EXPECT_NO_THROW(make_data_source("tokens:" + write_shard("just_enough.bin", sample_tokens(18)), slice, 1));
  expect_error(write_shard("empty.bin", {}), {"0 tokens"});
}

}  // namespace
}  // namespace ladder
