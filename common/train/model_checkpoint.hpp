/// @file model_checkpoint.hpp
/// @brief A GPT's weights as a safetensors file: named tensors plus the config as metadata.
#pragma once

#include <map>
#include <string>

#include "common/model/gpt.hpp"

namespace ladder {

/// Writes every parameter of `model` (its dtype, its shapes) and the config to `path`, atomically.
/// `extra_metadata` adds strings such as the stage and step.
void save_model_checkpoint(const std::string& path, const GPT& model,
                           const std::map<std::string, std::string>& extra_metadata = {});

/// Reads `path` into `model`'s parameters (converting the stored float type if it differs). Throws LadderError
/// naming the file and the defect: not a ladder checkpoint, a config field that differs from the model's,
/// a missing tensor, or a tensor of the wrong shape.
void load_model_checkpoint(const std::string& path, GPT& model);

/// The config fields as checkpoint metadata strings (vocab_size, padded_vocab_size, max_sequence_length,
/// layer_count, head_count, channels).
std::map<std::string, std::string> config_metadata(const GPTConfig& config);

}  // namespace ladder
