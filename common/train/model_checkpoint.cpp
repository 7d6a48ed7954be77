#include "common/train/model_checkpoint.hpp"

#include <memory>
#include <vector>

#include "common/error.hpp"
#include "common/ops/ops.hpp"

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

void save_model_checkpoint(const std::string& path, GPT& model,
                           const std::map<std::string, std::string>& extra_metadata, bool write) {
  const ParameterLayout& layout = model.layout();
  std::vector<TensorToWrite> tensors;
  for (const ParameterTensor& tensor : layout.tensors()) tensors.push_back({tensor.name, model.dtype(), tensor.shape, nullptr});
  std::map<std::string, std::string> metadata = config_metadata(model.config());
  metadata[kFormatKey] = kFormat;
  metadata["config_name"] = model.config().name;
  for (const auto& [key, value] : extra_metadata) metadata[key] = value;
  std::unique_ptr<SafetensorsWriter> writer;
  if (write) writer = std::make_unique<SafetensorsWriter>(path, tensors, metadata);
  const auto element_bytes = static_cast<std::int64_t>(dtype_size(model.dtype()));
  std::vector<unsigned char> staging;
  for (int unit = 0; unit < model.unit_count(); ++unit) {
    model.read_unit_weights(unit, [&](Tensor weights) {
      if (!writer) return;
      // Written from host memory: on the GPU, a host copy of the unit first.
      const auto* host = static_cast<const unsigned char*>(ops::readable_on_host(weights, staging).data());
      const ParameterUnit& owner = layout.units()[unit];
      for (int index = owner.first_tensor; index < owner.first_tensor + owner.tensor_count; ++index) {
        writer->write_next(host + (layout.tensors()[index].offset - owner.offset) * element_bytes);
      }
    });
  }
  if (writer) writer->commit();
}

ModelCheckpointReader::ModelCheckpointReader(const std::string& path, const GPTConfig& config)
    : path_(path), file_(SafetensorsFile::read(path)) {
  const auto format = file_.metadata().find(kFormatKey);
  LADDER_CHECK(format != file_.metadata().end() && format->second == kFormat, "checkpoint ", path,
               " is not a ladder GPT checkpoint (metadata 'format' should be '", kFormat, "')");
  for (const auto& [key, expected] : config_metadata(config)) {
    const auto found = file_.metadata().find(key);
    LADDER_CHECK(found != file_.metadata().end(), "checkpoint ", path, " lacks the config field '", key, "'");
    LADDER_CHECK(found->second == expected, "checkpoint ", path, " has ", key, " = ", found->second,
                 " but the model has ", expected, " (pass the same --model and overrides, and the same --data)");
  }
}

void ModelCheckpointReader::read_unit(GPT& model, int unit) const {
  const ParameterUnit& owner = model.layout().units().at(static_cast<std::size_t>(unit));
  for (int index = owner.first_tensor; index < owner.first_tensor + owner.tensor_count; ++index) {
    const ParameterTensor& tensor = model.layout().tensors()[index];
    const StoredTensor& stored = file_.get(tensor.name);
    LADDER_CHECK(stored.shape == tensor.shape, "checkpoint ", path_, ": tensor '", tensor.name, "' has the wrong shape");
    LADDER_CHECK(stored.dtype == DType::F32 || stored.dtype == DType::F16 || stored.dtype == DType::BF16 ||
                     stored.dtype == DType::F64,
                 "checkpoint ", path_, ": tensor '", tensor.name, "' is ", dtype_name(stored.dtype),
                 ", expected a floating-point type");
    Tensor source(const_cast<unsigned char*>(stored.bytes.data()), stored.dtype, {tensor.numel});
    ops::convert_between_devices(model.parameter(tensor.name).reshaped({tensor.numel}), source);
  }
}

void load_model_checkpoint(const std::string& path, GPT& model) {
  const ModelCheckpointReader reader(path, model.config());
  for (int unit = 0; unit < model.unit_count(); ++unit) reader.read_unit(model, unit);
}

}  // namespace ladder
