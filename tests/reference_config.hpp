// The tiny GPT of the PyTorch fixture: shared by the exporter and the parity test.
#pragma once

#include <cstdint>

#include "common/model/gpt_config.hpp"

namespace ladder {

// Vocabulary 13 pads to 16, so the padded rows and columns of the tables are exercised.
inline GPTConfig reference_config() { return named_config("tiny", 13); }

inline constexpr std::uint64_t kReferenceSeed = 20240601;

}  // namespace ladder
