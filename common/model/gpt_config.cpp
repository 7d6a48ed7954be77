#include "common/model/gpt_config.hpp"

#include "common/error.hpp"

namespace ladder {

void GPTConfig::validate() const {
  LADDER_CHECK(vocab_size >= 2, "vocab_size ", vocab_size, " is too small: need at least 2 tokens");
  LADDER_CHECK(padded_vocab_size >= vocab_size, "padded_vocab_size ", padded_vocab_size, " is smaller than vocab_size ",
               vocab_size);
  LADDER_CHECK(max_sequence_length >= 1, "context length ", max_sequence_length, " must be at least 1");
  LADDER_CHECK(layer_count >= 1, "layer count ", layer_count, " must be at least 1");
  LADDER_CHECK(head_count >= 1, "head count ", head_count, " must be at least 1");
  LADDER_CHECK(channels >= 1, "width (channels) ", channels, " must be at least 1");
  LADDER_CHECK(channels % head_count == 0, "the number of heads (", head_count, ") does not divide the width (",
               channels, "): each head needs channels/heads dimensions");
}

std::string GPTConfig::describe() const {
  return make_message(name, ": L=", layer_count, " H=", head_count, " C=", channels, " T=", max_sequence_length,
                      " V=", vocab_size, " (padded ", padded_vocab_size, ")");
}

std::vector<std::string> named_config_names() { return {"tiny", "small", "gpt2-124m"}; }

int padded_vocab_size_for(int vocab_size) {
  // Large vocabularies are padded to a multiple of 128 so GEMM tiles divide them (50257 -> 50304, as llm.c);
  // small ones only to a multiple of 8, where padding would otherwise dominate the head.
  const int multiple = vocab_size >= 1024 ? 128 : 8;
  return (vocab_size + multiple - 1) / multiple * multiple;
}

GPTConfig named_config(const std::string& name, int vocab_size) {
  GPTConfig config;
  config.name = name;
  config.vocab_size = vocab_size;
  config.padded_vocab_size = padded_vocab_size_for(vocab_size);
  if (name == "tiny") {  // a few thousand parameters: finite differences and equivalence tests
    config.layer_count = 2;
    config.head_count = 2;
    config.channels = 16;
    config.max_sequence_length = 16;
  } else if (name == "small") {  // about 0.8M parameters: trains visibly in a minute on two cores
    config.layer_count = 4;
    config.head_count = 4;
    config.channels = 128;
    config.max_sequence_length = 64;
  } else if (name == "gpt2-124m") {  // the GPU benchmark shape of PyTorch and llm.c
    config.layer_count = 12;
    config.head_count = 12;
    config.channels = 768;
    config.max_sequence_length = 1024;
  } else {
    throw LadderError(make_message("unknown model config '", name, "': expected tiny, small or gpt2-124m"));
  }
  return config;
}

}  // namespace ladder
