/// @file token_ids_text.hpp
/// @brief Token ids shown as text ("<15496> <11>"), for sources whose tokens have no text of their own here.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ladder {

/// "<id> <id> ...", after checking each id lies in [0, vocab_size); a bad id throws LadderError naming `source`,
/// the id and its position.
std::string token_ids_text(const std::vector<std::int32_t>& tokens, int vocab_size, const std::string& source);

}  // namespace ladder
