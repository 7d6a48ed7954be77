#include "common/data/token_shard.hpp"

#include "common/data/file_bytes.hpp"
#include "common/data/token_ids_text.hpp"
#include "common/error.hpp"

namespace ladder {
namespace {

// The format is little-endian on disk; assembling the bytes by hand reads it right on any host.
std::uint32_t little_endian_u32(const std::vector<unsigned char>& bytes, std::size_t offset) {
  return static_cast<std::uint32_t>(bytes[offset]) | static_cast<std::uint32_t>(bytes[offset + 1]) << 8 |
         static_cast<std::uint32_t>(bytes[offset + 2]) << 16 | static_cast<std::uint32_t>(bytes[offset + 3]) << 24;
}

std::vector<std::uint16_t> load_shard_tokens(const std::string& path) {
  const std::vector<unsigned char> bytes = read_file_bytes(path, "token shard");
  const std::size_t header_bytes = TokenShardSource::kHeaderWords * 4;
  LADDER_CHECK(bytes.size() >= header_bytes, "token shard '", path, "' has ", bytes.size(),
               " bytes, fewer than its ", header_bytes, "-byte header; it is truncated or not an llm.c .bin file");

  const auto magic = static_cast<std::int32_t>(little_endian_u32(bytes, 0));
  LADDER_CHECK(magic == TokenShardSource::kMagic, "token shard '", path, "' starts with magic number ", magic,
               ", expected ", TokenShardSource::kMagic, " (llm.c GPT-2 .bin format)");
  const auto version = static_cast<std::int32_t>(little_endian_u32(bytes, 4));
  LADDER_CHECK(version == TokenShardSource::kVersion, "token shard '", path, "' has version ", version,
               ", expected ", TokenShardSource::kVersion, " (uint16 tokens)");
  const auto count = static_cast<std::int32_t>(little_endian_u32(bytes, 8));
  LADDER_CHECK(count >= 0, "token shard '", path, "' declares ", count, " tokens; the count must be non-negative");

  const std::size_t expected_size = header_bytes + 2 * static_cast<std::size_t>(count);
  LADDER_CHECK(bytes.size() == expected_size, "token shard '", path, "' has ", bytes.size(),
               " bytes, but its header declares ", count, " tokens, which need exactly ", expected_size,
               " bytes; the file is ", bytes.size() < expected_size ? "truncated" : "followed by trailing bytes");

  std::vector<std::uint16_t> tokens(static_cast<std::size_t>(count));
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    const std::size_t offset = header_bytes + 2 * i;
    tokens[i] = static_cast<std::uint16_t>(bytes[offset] | bytes[offset + 1] << 8);
    LADDER_CHECK(tokens[i] < TokenShardSource::kGpt2VocabSize, "token shard '", path, "' has token id ", tokens[i],
                 " at position ", i, ", outside the GPT-2 vocabulary [0, ", TokenShardSource::kGpt2VocabSize, ")");
  }
  return tokens;
}

}  // namespace

TokenShardSource::TokenShardSource(const std::string& path, const DataSlice& slice)
    : WindowedTokenSource(load_shard_tokens(path), kGpt2VocabSize, slice, "token shard '" + path + "'", "tokens"),
      path_(path) {}

std::string TokenShardSource::describe() const {
  return make_message("token shard '", path_, "': ", tokens().size(), " GPT-2 tokens (vocabulary ", kGpt2VocabSize,
                      "), ", train_token_count(), " for training, ", held_out_token_count(), " held out");
}

std::string TokenShardSource::decode(const std::vector<std::int32_t>& tokens) const {
  return token_ids_text(tokens, kGpt2VocabSize, "token shard (GPT-2 vocabulary)");
}

std::vector<std::int32_t> TokenShardSource::encode(const std::string& text) const {
  throw LadderError(make_message("token shard '", path_, "': cannot encode the prompt \"", text,
                                 "\"; GPT-2 BPE encoding is not provided, so prompts need --data text:PATH or "
                                 "the arithmetic tasks (addition, subtraction)"));
}

}  // namespace ladder
