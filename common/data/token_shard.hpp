/// @file token_shard.hpp
/// @brief GPT-2 tokens from an llm.c .bin shard: 256 int32 header words, then uint16 token ids.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/data/windowed_token_source.hpp"

namespace ladder {

/// A pre-tokenized GPT-2 shard in llm.c's format, read in order: the first 90% train, the last 10% held out.
class TokenShardSource : public WindowedTokenSource {
 public:
  static constexpr std::int32_t kMagic = 20240520;   ///< header[0] of every llm.c token shard
  static constexpr std::int32_t kVersion = 1;        ///< header[1]: tokens stored as uint16
  static constexpr int kHeaderWords = 256;           ///< little-endian int32 words before the tokens
  static constexpr int kGpt2VocabSize = 50257;       ///< GPT-2's BPE vocabulary

  /// Reads and validates `path` (magic, version, exact size, token ids); throws LadderError naming it.
  TokenShardSource(const std::string& path, const DataSlice& slice);

  std::string describe() const override;                                       ///< Path and split sizes.
  std::string decode(const std::vector<std::int32_t>& tokens) const override;  ///< "<id> <id> ...".
  /// Always throws: GPT-2 BPE encoding is not part of ladder.
  std::vector<std::int32_t> encode(const std::string& text) const override;

 private:
  std::string path_;
};

}  // namespace ladder
