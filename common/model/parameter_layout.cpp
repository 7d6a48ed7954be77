#include "common/model/parameter_layout.hpp"

#include "common/error.hpp"

namespace ladder {

namespace {
std::int64_t round_up(std::int64_t value, std::int64_t multiple) { return (value + multiple - 1) / multiple * multiple; }
}  // namespace

ParameterLayout::ParameterLayout(const GPTConfig& config, int shard_multiple) : config_(config) {
  config.validate();
  LADDER_CHECK(shard_multiple >= 1, "shard multiple ", shard_multiple, " must be at least 1");
  const std::int64_t C = config.channels;
  const std::int64_t Vp = config.padded_vocab_size;
  const std::int64_t unit_alignment = kTensorAlignment * shard_multiple;

  std::int64_t cursor = 0;
  auto begin_unit = [&](const std::string& name) {
    ParameterUnit unit;
    unit.name = name;
    unit.offset = cursor;
    unit.first_tensor = static_cast<int>(tensors_.size());
    units_.push_back(unit);
  };
  auto add = [&](const std::string& name, std::vector<std::int64_t> shape) {
    ParameterTensor tensor;
    tensor.name = name;
    tensor.numel = 1;
    for (std::int64_t extent : shape) tensor.numel *= extent;
    tensor.shape = std::move(shape);
    tensor.offset = round_up(cursor, kTensorAlignment);
    tensor.unit = static_cast<int>(units_.size()) - 1;
    tensor.decays = tensor.shape.size() == 2;  // matrices and embedding tables decay; vectors do not
    cursor = tensor.offset + tensor.numel;
    parameter_count_ += tensor.numel;
    tensors_.push_back(tensor);
  };
  auto end_unit = [&] {
    ParameterUnit& unit = units_.back();
    cursor = unit.offset + round_up(cursor - unit.offset, unit_alignment);
    unit.size = cursor - unit.offset;
    unit.tensor_count = static_cast<int>(tensors_.size()) - unit.first_tensor;
  };

  begin_unit("embeddings");
  add("wte", {Vp, C});
  add("wpe", {config.max_sequence_length, C});
  end_unit();
  for (int layer = 0; layer < config.layer_count; ++layer) {
    const std::string prefix = "blocks." + std::to_string(layer);
    begin_unit(prefix);
    add(prefix + ".ln1.weight", {C});
    add(prefix + ".ln1.bias", {C});
    add(prefix + ".attn.qkv.weight", {3 * C, C});
    add(prefix + ".attn.qkv.bias", {3 * C});
    add(prefix + ".attn.proj.weight", {C, C});
    add(prefix + ".attn.proj.bias", {C});
    add(prefix + ".ln2.weight", {C});
    add(prefix + ".ln2.bias", {C});
    add(prefix + ".mlp.fc.weight", {4 * C, C});
    add(prefix + ".mlp.fc.bias", {4 * C});
    add(prefix + ".mlp.proj.weight", {C, 4 * C});
    add(prefix + ".mlp.proj.bias", {C});
    end_unit();
  }
  // The head is untied from wte so that every unit owns its parameters outright: a unit can then be
  // sharded, gathered and freed on its own (FSDP) without reaching back into the embeddings.
  begin_unit("head");
  add("lnf.weight", {C});
  add("lnf.bias", {C});
  add("lm_head.weight", {Vp, C});
  end_unit();
  padded_size_ = cursor;
}

const ParameterTensor& ParameterLayout::tensor(const std::string& name) const {
  for (const ParameterTensor& tensor : tensors_) {
    if (tensor.name == name) return tensor;
  }
  throw LadderError(make_message("the GPT has no parameter named '", name, "'"));
}

Tensor unit_tensor_view(Tensor unit_values, const ParameterUnit& unit, const ParameterTensor& tensor) {
  LADDER_CHECK(unit_values.numel() == unit.size, "unit ", unit.name, " holds ", unit.size, " elements, got a view of ",
               unit_values.numel());
  Tensor slice = unit_values.slice(tensor.offset - unit.offset, tensor.numel);
  if (tensor.shape.size() == 1) return slice;
  return slice.reshaped({tensor.shape[0], tensor.shape[1]});
}

}  // namespace ladder
