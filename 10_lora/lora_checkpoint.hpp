/// @file lora_checkpoint.hpp
/// @brief The adapters alone as a file (PEFT's tensor names, its adapter_config.json beside), and loading them back.
#pragma once

#include <string>

#include "10_lora/lora_adapters.hpp"
#include "common/model/gpt_config.hpp"

namespace ladder::stage10 {

/// PEFT's name of adapter `adapter`'s A (which 'A') or B ('B'): "base_model.model.blocks.0.attn.q.lora_A.weight".
std::string peft_tensor_name(const LoraAdapter& adapter, char which);

/// Where the JSON config of adapter file `path` goes: beside it, "<path without .safetensors>.adapter_config.json".
std::string adapter_config_path(const std::string& path);

/// Writes every A and B from `values` (the adapters' layout, e.g. the fp32 master) to `path`, and the config with
/// PEFT's field names (r, lora_alpha, target_modules, lora_dropout) to adapter_config_path(path); each atomically.
/// The base's shape goes into the metadata, so that loading onto another base is refused.
void save_adapters(const std::string& path, const LoraAdapters& adapters, Tensor values, const GPTConfig& base);

/// Reads a file written by save_adapters into `values` (converting the stored float type). Throws LadderError naming
/// the file and the defect: not an adapter file, another base shape, other settings, a missing or misshapen tensor.
void load_adapters(const std::string& path, const LoraAdapters& adapters, Tensor values, const GPTConfig& base);

}  // namespace ladder::stage10
