/// @file text_file.hpp
/// @brief Any UTF-8 (or other) text file as byte-level tokens: vocabulary 256, no tokenizer needed.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/data/windowed_token_source.hpp"

namespace ladder {

/// The bytes of a file, read in order: the first 90% train, the last 10% are held out.
class TextFileSource : public WindowedTokenSource {
 public:
  /// Reads `path`; throws LadderError naming it when it is missing, unreadable, empty or too short for T.
  TextFileSource(const std::string& path, const DataSlice& slice);

  std::string describe() const override;                                       ///< Path and split sizes.
  std::string decode(const std::vector<std::int32_t>& tokens) const override;  ///< Bytes, control bytes as '?'.
  std::vector<std::int32_t> encode(const std::string& text) const override;    ///< The bytes of `text`.

 private:
  std::string path_;
};

}  // namespace ladder
