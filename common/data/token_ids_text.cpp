#include "common/data/token_ids_text.hpp"

#include "common/error.hpp"

namespace ladder {

std::string token_ids_text(const std::vector<std::int32_t>& tokens, int vocab_size, const std::string& source) {
  std::string text;
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    LADDER_CHECK(tokens[i] >= 0 && tokens[i] < vocab_size, source, ": token ", tokens[i], " at position ", i,
                 " is outside the vocabulary [0, ", vocab_size, ")");
    if (i > 0) text += ' ';
    text += make_message('<', tokens[i], '>');
  }
  return text;
}

}  // namespace ladder
