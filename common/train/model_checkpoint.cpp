#include "common/train/model_checkpoint.hpp"

#include <vector>

#include "common/error.hpp"
#include "common/ops/ops.hpp"
#include "common/train/safetensors.hpp"

namespace ladder {

namespace {
const char* const kFormatKey = "format";
const char* const kFormat = "ladder-gpt-v1";
}  // namespace

std::map<std::string, std::string> config_metadata(const GPTConfig& config) {
  return {{"vocab_size", std::to_string(config.vocab_size)},
          {"padded_vocab_size", std::to_string(config.padded_vocab_size)},
          {"max_sequence_length", std::to_string(config.max_sequence_length)},
          {"layer_count", std::to_string(config.layer_count)},
          {"head_count", std::to_string(config.head_count)},
          {"channels", std::to_string(config.channels)}};
}

void save_model_checkpoint(const std::string& path, const GPT& model,
                           const std::map<std::string, std::string>& extra_metadata) {
  // The weights are written from host memory: on the GPU, a host copy of the parameter buffer first.
  std::vector<unsigned char> staging;
  const auto* host_parameters =
      static_cast<const unsigned char*>(ops::readable_on_host(model.parameters(), staging).data());
  std::vector<TensorToWrite> tensors;
  for (const ParameterTensor& tensor : model.layout().tensors()) {
    tensors.push_back({tensor.name, model.dtype(), tensor.shape,
                       host_parameters + tensor.offset * static_cast<std::int64_t>(dtype_size(model.dtype()))});
  }
  std::map<std::string, std::string> metadata = config_metadata(model.config());
  metadata[kFormatKey] = kFormat;
  metadata["config_name"] = model.config().name;
  for (const auto& [key, value] : extra_metadata) metadata[key] = value;
  write_safetensors(path, tensors, metadata);
}

void load_model_checkpoint(const std::string& path, GPT& model) {
  const SafetensorsFile file = SafetensorsFile::read(path);
  const auto format = file.metadata().find(kFormatKey);
  LADDER_CHECK(format != file.metadata().end() && format->second == kFormat, "checkpoint ", path,
               " is not a ladder GPT checkpoint (metadata 'format' should be '", kFormat, "')");
  for (const auto& [key, expected] : config_metadata(model.config())) {
    const auto found = file.metadata().find(key);
    LADDER_CHECK(found != file.metadata().end(), "checkpoint ", path, " lacks the config field '", key, "'");
    LADDER_CHECK(found->second == expected, "checkpoint ", path, " has ", key, " = ", found->second,
                 " but the model has ", expected, " (pass the same --model and overrides, and the same --data)");
  }
  for (const ParameterTensor& tensor : model.layout().tensors()) {
    const StoredTensor& stored = file.get(tensor.name);
    LADDER_CHECK(stored.shape == tensor.shape, "checkpoint ", path, ": tensor '", tensor.name, "' has the wrong shape");
    LADDER_CHECK(stored.dtype == DType::F32 || stored.dtype == DType::F16 || stored.dtype == DType::BF16 ||
                     stored.dtype == DType::F64,
                 "checkpoint ", path, ": tensor '", tensor.name, "' is ", dtype_name(stored.dtype),
                 ", expected a floating-point type");
    Tensor source(const_cast<unsigned char*>(stored.bytes.data()), stored.dtype, {tensor.numel});
    ops::convert_between_devices(model.parameter(tensor.name).reshaped({tensor.numel}), source);
  }
}

}  // namespace ladder
