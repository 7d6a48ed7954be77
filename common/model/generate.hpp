/// @file generate.hpp
/// @brief Greedy decoding: the model's most likely next token, again and again.
#pragma once

#include <cstdint>
#include <vector>

#include "common/model/gpt.hpp"

namespace ladder {

/// Continues each prompt greedily (argmax over the real vocabulary) for up to `max_new_tokens` tokens, stopping
/// a prompt early at `stop_token` (kept in its output; -1: no stop token). Prompts of equal length are decoded
/// together in batches of the model's size; a context longer than the model's keeps its most recent tokens.
std::vector<std::vector<std::int32_t>> greedy_decode(GPT& model, const std::vector<std::vector<std::int32_t>>& prompts,
                                                     int max_new_tokens, std::int32_t stop_token);

}  // namespace ladder
