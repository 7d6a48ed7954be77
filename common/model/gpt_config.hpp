/// @file gpt_config.hpp
/// @brief GPT shape: named configs (tiny, small, gpt2-124m) with every field overridable.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ladder {

/// The shape of the GPT. Vocabulary comes from the data; the rest from a named config.
struct GPTConfig {
  std::string name = "small";  ///< the named config this started from
  int vocab_size = 16;         ///< V: real token ids are < V
  int padded_vocab_size = 16;  ///< Vp >= V: rows of the embedding and head tables (GPU-friendly size)
  int max_sequence_length = 64;  ///< longest context (rows of the position table)
  int layer_count = 4;         ///< L: transformer blocks
  int head_count = 4;          ///< H: attention heads
  int channels = 128;          ///< C: width
  /// Throws LadderError when the shape is impossible (e.g. heads do not divide the width).
  void validate() const;
  /// One line: "small: L=4 H=4 C=128 T=64 V=16 (padded 16)".
  std::string describe() const;
};

/// The named configs, in order: tiny, small, gpt2-124m.
std::vector<std::string> named_config_names();

/// A named config with the given vocabulary (padded: multiple of 128 from 1024 up, else of 8).
/// Throws LadderError listing the known names when `name` is unknown.
GPTConfig named_config(const std::string& name, int vocab_size);

/// The padded vocabulary size the named configs use for a vocabulary of `vocab_size`.
int padded_vocab_size_for(int vocab_size);

}  // namespace ladder
