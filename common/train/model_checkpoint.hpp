/// @file model_checkpoint.hpp
/// @brief A GPT's weights as a safetensors file: named tensors plus the config as metadata.
#pragma once

#include <map>
#include <string>

#include "common/model/gpt.hpp"
#include "common/train/safetensors.hpp"

namespace ladder {

/// Writes every parameter of `model` (its dtype, its shapes) and the config to `path`, atomically, one unit at a time
/// (GPT::read_unit_weights: a stage that shards the weights gathers each unit for the moment it is written). With
/// several ranks every rank calls it, so that all take part in the gathers, and only the one with `write` true
/// writes. `extra_metadata` adds strings such as the stage and step.
void save_model_checkpoint(const std::string& path, GPT& model,
                           const std::map<std::string, std::string>& extra_metadata = {}, bool write = true);

/// A ladder checkpoint opened and checked against a model's config, from which units are read one at a time.
class ModelCheckpointReader {
 public:
  /// Reads and validates `path` for a model of `config`. Throws LadderError naming the file and the defect: not a
  /// ladder checkpoint, or a config field that differs from the model's.
  ModelCheckpointReader(const std::string& path, const GPTConfig& config);
  /// Copies unit `unit`'s tensors into `model`'s weights (converting the stored float type if it differs); throws
  /// naming a missing tensor or one of the wrong shape or type.
  void read_unit(GPT& model, int unit) const;

 private:
  std::string path_;
  SafetensorsFile file_;
};

/// Reads `path` into `model`'s parameters, every unit (see ModelCheckpointReader).
void load_model_checkpoint(const std::string& path, GPT& model);

/// The config fields as checkpoint metadata strings (vocab_size, padded_vocab_size, max_sequence_length,
/// layer_count, head_count, channels).
std::map<std::string, std::string> config_metadata(const GPTConfig& config);

}  // namespace ladder
