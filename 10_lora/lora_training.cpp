#include "10_lora/lora_training.hpp"

#include "10_lora/lora_checkpoint.hpp"
#include "common/ops/ops.hpp"

namespace ladder::stage10 {

namespace {

// The base is frozen: it owns its weights and has no gradient storage at all, so backward only moves the
// activations' gradients through it (to the adapters).
constexpr GPTStorage kFrozen{.parameters = StorageOwner::Model, .gradients = StorageOwner::None};

}  // namespace

LoraTraining::LoraTraining(const GPTConfig& config, const AdamWConfig& adamw, const LoraSettings& settings,
                           std::uint64_t seed, int batch_size, int sequence_length, Device device, DType dtype)
    : model(config, dtype, batch_size, sequence_length, 1, device, kFrozen),
      adapters(model, settings, seed),
      master(adapters.weights()),
      optimizer(adapters.spans(), adapters.parameter_count(), adamw, DType::F32, device) {
  model.set_linear_adapters(&adapters);
}

double LoraTraining::step(double learning_rate) {
  return master.step(optimizer, adapters.weights(), adapters.gradients(), learning_rate);
}

void LoraTraining::load(const std::string& path) {
  load_adapters(path, adapters, master.weights(), model.config());
  ops::convert(adapters.weights(), master.weights());
}

void LoraTraining::merge() {
  adapters.merge_into(model, master.weights());
  model.set_linear_adapters(nullptr);
}

}  // namespace ladder::stage10
