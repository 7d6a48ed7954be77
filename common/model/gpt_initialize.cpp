// GPT-2 initialisation, kept apart from forward/backward: it is the one place randomness enters the model.
#include <cmath>
#include <vector>

#include "common/model/gpt.hpp"
#include "common/ops/ops.hpp"
#include "common/random.hpp"

namespace ladder {

namespace {

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

void GPT::initialize(std::uint64_t seed) {
  for (int unit = 0; unit < unit_count(); ++unit) initialize_unit(seed, unit);
}

void GPT::initialize_unit(std::uint64_t seed, int unit) {
  if (device() == Device::Meta) return;  // a plan holds no values: drawing billions of them would be wasted time
  const GPTConfig& c = config();
  // GPT-2 scales the two projections that write into the residual stream by 1/sqrt(2L), so the stream's
  // variance stays bounded as blocks are stacked.
  const double residual_std = 0.02 / std::sqrt(2.0 * c.layer_count);
  const ParameterUnit& owner = layout_.units().at(static_cast<std::size_t>(unit));
  std::vector<float> values;
  for (int index = owner.first_tensor; index < owner.first_tensor + owner.tensor_count; ++index) {
    const ParameterTensor& tensor = layout_.tensors()[static_cast<std::size_t>(index)];
    values.assign(static_cast<std::size_t>(tensor.numel), 0.0f);
    if (ends_with(tensor.name, "ln1.weight") || ends_with(tensor.name, "ln2.weight") || tensor.name == "lnf.weight") {
      values.assign(values.size(), 1.0f);
    } else if (tensor.decays) {
      const double std = (ends_with(tensor.name, "attn.proj.weight") || ends_with(tensor.name, "mlp.proj.weight"))
                             ? residual_std
                             : 0.02;
      // A stream per tensor: the values do not move when padding, the tensor order around them, or the unit
      // that is initialised first changes.
      Random random(hash_combine(seed, static_cast<std::uint64_t>(index)));
      // Rows past the real vocabulary are never looked up or scored; they stay zero.
      const bool vocabulary_table = tensor.name == "wte" || tensor.name == "lm_head.weight";
      const std::int64_t rows = vocabulary_table ? c.vocab_size : tensor.shape[0];
      const std::int64_t drawn = rows * tensor.shape[1];
      for (std::int64_t i = 0; i < drawn; ++i) values[static_cast<std::size_t>(i)] = static_cast<float>(std * random.normal());
    }
    // Biases stay zero. Values are made in fp32 and rounded once into the model's dtype.
    ops::convert_between_devices(parameter(tensor.name).reshaped({tensor.numel}),
                                 Tensor(values.data(), DType::F32, {tensor.numel}));
  }
}

}  // namespace ladder
