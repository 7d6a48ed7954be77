#include "common/data/text_file.hpp"

#include "common/data/file_bytes.hpp"
#include "common/error.hpp"

namespace ladder {
namespace {

constexpr int kByteVocabularySize = 256;

std::vector<std::uint16_t> load_text_bytes(const std::string& path) {
  const std::vector<unsigned char> bytes = read_file_bytes(path, "text file");
  LADDER_CHECK(!bytes.empty(), "text file '", path, "' is empty; it needs some text to train on");
  return {bytes.begin(), bytes.end()};
}

}  // namespace

TextFileSource::TextFileSource(const std::string& path, const DataSlice& slice)
    : WindowedTokenSource(load_text_bytes(path), kByteVocabularySize, slice, "text file '" + path + "'", "bytes"),
      path_(path) {}

std::string TextFileSource::describe() const {
  return make_message("text file '", path_, "': ", tokens().size(), " bytes as tokens (vocabulary ",
                      kByteVocabularySize, "), ", train_token_count(), " for training, ", held_out_token_count(),
                      " held out");
}

std::string TextFileSource::decode(const std::vector<std::int32_t>& tokens) const {
  std::string text;
  text.reserve(tokens.size());
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    const std::int32_t token = tokens[i];
    LADDER_CHECK(token >= 0 && token < kByteVocabularySize, "text: token ", token, " at position ", i,
                 " is not a byte (expected 0..255)");
    // Control bytes would move the terminal's cursor or ring its bell; bytes >= 128 stay, as UTF-8 needs them.
    const bool is_control = (token < 0x20 && token != '\n' && token != '\t') || token == 0x7F;
    text += is_control ? '?' : static_cast<char>(token);
  }
  return text;
}

std::vector<std::int32_t> TextFileSource::encode(const std::string& text) const {
  std::vector<std::int32_t> tokens;
  tokens.reserve(text.size());
  for (const char character : text) tokens.push_back(static_cast<unsigned char>(character));
  return tokens;
}

}  // namespace ladder
