#include "10_lora/lora_checkpoint.hpp"

#include <nlohmann/json.hpp>

#include <sstream>
#include <vector>

#include "common/error.hpp"
#include "common/ops/ops.hpp"
#include "common/train/atomic_file.hpp"
#include "common/train/model_checkpoint.hpp"
#include "common/train/safetensors.hpp"

namespace ladder::stage10 {

namespace {

const char* const kFormatKey = "format";
const char* const kFormat = "ladder-lora-v1";

std::string joined(const std::vector<std::string>& names) {
  std::string text;
  for (const std::string& name : names) text += (text.empty() ? "" : ",") + name;
  return text;
}

// Numbers as metadata strings, written so that they read back to the same double.
std::string number_text(double value) {
  std::ostringstream text;
  text.precision(17);
  text << value;
  return text.str();
}

// The settings and the base's shape, as the file's metadata: what a loader must find equal.
std::map<std::string, std::string> adapter_metadata(const LoraSettings& settings, const GPTConfig& base) {
  std::map<std::string, std::string> metadata = config_metadata(base);
  metadata[kFormatKey] = kFormat;
  metadata["r"] = std::to_string(settings.rank);
  metadata["lora_alpha"] = number_text(settings.effective_alpha());
  metadata["target_modules"] = joined(settings.targets);
  metadata["lora_dropout"] = number_text(settings.dropout);
  return metadata;
}

}  // namespace

std::string peft_tensor_name(const LoraAdapter& adapter, char which) {
  return "base_model.model." + adapter.name + ".lora_" + which + ".weight";
}

std::string adapter_config_path(const std::string& path) {
  const std::string extension = ".safetensors";
  const bool has_extension = path.size() > extension.size() &&
                             path.compare(path.size() - extension.size(), extension.size(), extension) == 0;
  return (has_extension ? path.substr(0, path.size() - extension.size()) : path) + ".adapter_config.json";
}

void save_adapters(const std::string& path, const LoraAdapters& adapters, Tensor values, const GPTConfig& base) {
  std::vector<unsigned char> staging;
  const Tensor host = ops::readable_on_host(values, staging);
  const auto* bytes = static_cast<const unsigned char*>(host.data());
  const std::int64_t element = static_cast<std::int64_t>(dtype_size(values.dtype()));
  const std::int64_t r = adapters.settings().rank;
  std::vector<TensorToWrite> tensors;
  for (const LoraAdapter& adapter : adapters.adapters()) {
    tensors.push_back({peft_tensor_name(adapter, 'A'), values.dtype(), {r, adapter.columns}, bytes + adapter.a_offset * element});
    tensors.push_back({peft_tensor_name(adapter, 'B'), values.dtype(), {adapter.rows, r}, bytes + adapter.b_offset * element});
  }
  const LoraSettings& settings = adapters.settings();
  write_safetensors(path, tensors, adapter_metadata(settings, base));

  // PEFT's adapter_config.json, so that the file reads as what it is (PEFT's own loader expects its model's names).
  const nlohmann::ordered_json config = {{"peft_type", "LORA"},
                                         {"r", settings.rank},
                                         {"lora_alpha", settings.effective_alpha()},
                                         {"target_modules", settings.targets},
                                         {"lora_dropout", settings.dropout},
                                         {"bias", "none"},
                                         {"fan_in_fan_out", false},
                                         {"init_lora_weights", true},
                                         {"base_model_name_or_path", "ladder " + base.describe()}};
  const std::string text = config.dump(2) + "\n";
  write_file_atomically(adapter_config_path(path), text, "adapter config");
}

void load_adapters(const std::string& path, const LoraAdapters& adapters, Tensor values, const GPTConfig& base) {
  const SafetensorsFile file = SafetensorsFile::read(path);
  const auto format = file.metadata().find(kFormatKey);
  LADDER_CHECK(format != file.metadata().end() && format->second == kFormat, "adapter file ", path,
               " is not a ladder LoRA adapter file (metadata 'format' should be '", kFormat, "')");
  // What shapes the adapted function: the rank and targets first (the likelier slip), then α and the base's shape.
  // Dropout is a training setting and may differ.
  std::map<std::string, std::string> required = adapter_metadata(adapters.settings(), base);
  required.erase("lora_dropout");
  std::vector<std::string> keys = {"r", "target_modules", "lora_alpha"};
  for (const auto& [key, value] : config_metadata(base)) keys.push_back(key);
  for (const std::string& key : keys) {
    const std::string& expected = required.at(key);
    const auto found = file.metadata().find(key);
    LADDER_CHECK(found != file.metadata().end(), "adapter file ", path, " lacks the metadata field '", key, "'");
    LADDER_CHECK(found->second == expected, "adapter file ", path, " has ", key, " = ", found->second,
                 " but this run has ", expected,
                 " (pass the --lora-* flags it was trained with, and the base's --model and overrides)");
  }
  const std::int64_t r = adapters.settings().rank;
  for (std::size_t index = 0; index < adapters.adapters().size(); ++index) {
    const LoraAdapter& adapter = adapters.adapters()[index];
    for (const char which : {'A', 'B'}) {
      const std::string name = peft_tensor_name(adapter, which);
      const std::vector<std::int64_t> expected =
          which == 'A' ? std::vector<std::int64_t>{r, adapter.columns} : std::vector<std::int64_t>{adapter.rows, r};
      // Any float type is converted; the shape must be this run's (A is r×k, B is d×r).
      const StoredTensor& stored = file.get(name, file.get(name).dtype, expected);
      const Tensor destination = which == 'A' ? adapters.a_of(values, index) : adapters.b_of(values, index);
      ops::convert_between_devices(destination.reshaped({destination.numel()}),
                                   Tensor(const_cast<unsigned char*>(stored.bytes.data()), stored.dtype, {stored.numel()}));
    }
  }
}

}  // namespace ladder::stage10
