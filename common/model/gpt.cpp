#include "common/model/gpt.hpp"

#include <vector>

#include "common/error.hpp"
#include "common/ops/ops.hpp"

namespace ladder {

namespace {

// The weights (or gradients) of one block, cut from that unit's slice of a flat buffer.
struct BlockWeights {
  Tensor ln1_weight, ln1_bias, qkv_weight, qkv_bias, proj_weight, proj_bias;
  Tensor ln2_weight, ln2_bias, fc_weight, fc_bias, mlp_proj_weight, mlp_proj_bias;
};

// The tensors of a block, cut from that unit's weights (or gradients): wherever the unit's storage lives.
BlockWeights block_weights(Tensor unit_values, const ParameterLayout& layout, int layer) {
  const ParameterUnit& unit = layout.units()[1 + layer];
  auto at = [&](int index) { return unit_tensor_view(unit_values, unit, layout.tensors()[unit.first_tensor + index]); };
  return {at(0), at(1), at(2), at(3), at(4), at(5), at(6), at(7), at(8), at(9), at(10), at(11)};
}

Tensor no_bias(DType dtype) { return Tensor(nullptr, dtype, {0}); }

// A host array viewed as a Tensor (token ids and targets on their way to the device).
Tensor host_view(const std::vector<std::int32_t>& values) {
  return Tensor(const_cast<std::int32_t*>(values.data()), DType::I32, {static_cast<std::int64_t>(values.size())});
}

AttentionKind attention_for(Device device) {
  return device == Device::CUDA ? AttentionKind::Fused : AttentionKind::Materialized;
}

// A block's linear layer: the GEMM, then whatever the installed adapters add (stage 10's LoRA term).
void block_linear_forward(LinearAdapters* adapters, int layer, BlockLinear linear, Tensor out, Tensor inp,
                          Tensor weight, Tensor bias) {
  ops::matmul_forward(out, inp, weight, bias);
  if (adapters != nullptr) adapters->forward(layer, linear, out, inp);
}

// Its backward; empty dweight and dbias (a frozen model) make the op compute dinp alone.
void block_linear_backward(LinearAdapters* adapters, int layer, BlockLinear linear, Tensor dinp, Tensor dweight,
                           Tensor dbias, Tensor dout, Tensor inp, Tensor weight) {
  ops::matmul_backward(dinp, dweight, dbias, dout, inp, weight);
  if (adapters != nullptr) adapters->backward(layer, linear, dinp, dout, inp);
}

}  // namespace

GPT::GPT(const GPTConfig& config, DType dtype, int batch_size, int sequence_length, int shard_multiple, Device device,
         GPTStorage storage)
    : layout_(config, shard_multiple),
      dtype_(dtype),
      max_batch_size_(batch_size),
      max_sequence_length_(sequence_length),
      device_(device),
      storage_(storage),
      activations_(config, dtype, batch_size, sequence_length, attention_for(device), device) {
  LADDER_CHECK(storage.parameters != StorageOwner::None, "a GPT needs weights: StorageOwner::None is for gradients");
  const std::size_t flat_bytes = layout_.padded_size() * dtype_size(dtype);
  if (storage.parameters == StorageOwner::Model) {
    parameter_storage_ = Buffer(flat_bytes, MemoryCategory::Parameters, device);
  }
  if (storage.gradients == StorageOwner::Model) {
    gradient_storage_ = Buffer(flat_bytes, MemoryCategory::Gradients, device);
  }
  unit_parameters_.resize(layout_.units().size());
  unit_gradients_.resize(layout_.units().size());
  for (std::size_t u = 0; u < layout_.units().size(); ++u) {
    const ParameterUnit& unit = layout_.units()[u];
    if (storage.parameters == StorageOwner::Model) {
      unit_parameters_[u] = view_of(parameter_storage_, dtype).slice(unit.offset, unit.size);
    }
    if (storage.gradients == StorageOwner::Model) {
      unit_gradients_[u] = view_of(gradient_storage_, dtype).slice(unit.offset, unit.size);
    }
  }
}

void GPT::announce(void (UnitHooks::*call)(int), int unit) {
  if (hooks_ != nullptr) (hooks_->*call)(unit);
}

double GPT::forward(const Batch& batch) {
  LADDER_CHECK(static_cast<std::int64_t>(batch.inputs.size()) == std::int64_t{batch.batch_size} * batch.sequence_length &&
                   batch.targets.size() == batch.inputs.size(),
               "batch of ", batch.batch_size, "x", batch.sequence_length, " holds ", batch.inputs.size(), " inputs and ",
               batch.targets.size(), " targets");
  for (std::int32_t target : batch.targets) {
    LADDER_CHECK(target >= -1 && target < config().vocab_size, "target token ", target, " is outside the vocabulary [0, ",
                 config().vocab_size, ") (or -1 to ignore)");
  }
  valid_targets_ = batch.valid_target_count();
  LADDER_CHECK(valid_targets_ > 0, "batch has no valid targets: every target is -1");
  load_inputs(batch.inputs, batch.batch_size, batch.sequence_length);
  ops::copy(activations_.targets.reshaped({activations_.targets.numel()}), host_view(batch.targets));
  run_forward(batch.batch_size, batch.sequence_length);

  ops::softmax_cross_entropy_forward(activations_.losses, activations_.logits.reshaped({activations_.losses.numel(), config().padded_vocab_size}),
                                     activations_.targets.reshaped({activations_.targets.numel()}), config().vocab_size);
  has_targets_ = true;
  // Losses are summed in double, on the host, so the mean does not depend on the summation order's rounding.
  const std::int64_t count = activations_.losses.numel();
  std::vector<double> losses(static_cast<std::size_t>(count));
  ops::convert_between_devices(Tensor(losses.data(), DType::F64, {count}), activations_.losses);
  double total = 0;
  for (double loss : losses) total += loss;
  return total / static_cast<double>(valid_targets_);
}

void GPT::forward_logits(const std::vector<std::int32_t>& tokens, int batch_size, int sequence_length) {
  LADDER_CHECK(static_cast<std::int64_t>(tokens.size()) == std::int64_t{batch_size} * sequence_length, "expected ",
               batch_size, "x", sequence_length, " tokens, got ", tokens.size());
  load_inputs(tokens, batch_size, sequence_length);
  run_forward(batch_size, sequence_length);
  has_targets_ = false;
}

// Checks the token ids on the host (a kernel could not say which one is wrong), then copies them in.
void GPT::load_inputs(const std::vector<std::int32_t>& tokens, int batch_size, int sequence_length) {
  for (std::int32_t token : tokens) {
    LADDER_CHECK(token >= 0 && token < config().vocab_size, "input token ", token, " is outside the vocabulary [0, ",
                 config().vocab_size, ")");
  }
  activations_.shape_for(batch_size, sequence_length);
  ops::copy(activations_.tokens.reshaped({activations_.tokens.numel()}), host_view(tokens));
}

void GPT::run_forward(int batch_size, int sequence_length) {
  batch_size_ = batch_size;
  sequence_length_ = sequence_length;
  Activations& a = activations_;
  const std::int64_t N = std::int64_t{batch_size} * sequence_length;
  const std::int64_t C = config().channels;
  const bool fused_attention = a.attention() == AttentionKind::Fused;

  announce(&UnitHooks::before_forward, 0);
  ops::embedding_forward(a.embedded, a.tokens, parameter("wte"), parameter("wpe"));
  announce(&UnitHooks::after_forward, 0);

  Tensor residual = a.embedded;
  for (int layer = 0; layer < config().layer_count; ++layer) {
    announce(&UnitHooks::before_forward, 1 + layer);
    const BlockWeights w = block_weights(unit_parameters(1 + layer), layout_, layer);
    BlockActivations& b = a.blocks[layer];
    ops::layernorm_forward(b.ln1, b.ln1_mean, b.ln1_rstd, residual, w.ln1_weight, w.ln1_bias);
    block_linear_forward(adapters_, layer, BlockLinear::Qkv, b.qkv.reshaped({N, 3 * C}), b.ln1.reshaped({N, C}),
                         w.qkv_weight, w.qkv_bias);
    if (fused_attention) {
      ops::flash_attention_forward(b.attention_out, b.attention_lse, b.qkv, config().head_count);
    } else {
      ops::attention_forward(b.attention_out, b.attention_probs, b.qkv, config().head_count);
    }
    block_linear_forward(adapters_, layer, BlockLinear::AttentionProjection, b.attention_proj.reshaped({N, C}),
                         b.attention_out.reshaped({N, C}), w.proj_weight, w.proj_bias);
    ops::residual_forward(b.residual_attention, residual, b.attention_proj);
    ops::layernorm_forward(b.ln2, b.ln2_mean, b.ln2_rstd, b.residual_attention, w.ln2_weight, w.ln2_bias);
    block_linear_forward(adapters_, layer, BlockLinear::MlpFc, b.mlp_hidden.reshaped({N, 4 * C}),
                         b.ln2.reshaped({N, C}), w.fc_weight, w.fc_bias);
    ops::gelu_forward(b.mlp_gelu, b.mlp_hidden);
    block_linear_forward(adapters_, layer, BlockLinear::MlpProjection, b.mlp_proj.reshaped({N, C}),
                         b.mlp_gelu.reshaped({N, 4 * C}), w.mlp_proj_weight, w.mlp_proj_bias);
    ops::residual_forward(b.residual_mlp, b.residual_attention, b.mlp_proj);
    residual = b.residual_mlp;
    announce(&UnitHooks::after_forward, 1 + layer);
  }

  const int head = unit_count() - 1;
  announce(&UnitHooks::before_forward, head);
  ops::layernorm_forward(a.lnf, a.lnf_mean, a.lnf_rstd, residual, parameter("lnf.weight"), parameter("lnf.bias"));
  ops::matmul_forward(a.logits.reshaped({N, config().padded_vocab_size}), a.lnf.reshaped({N, C}),
                      parameter("lm_head.weight"), no_bias(dtype_));
  announce(&UnitHooks::after_forward, head);
}

void GPT::backward(double loss_scale) {
  LADDER_CHECK(has_targets_, "backward() needs a forward(batch) with targets first");
  has_targets_ = false;  // the logits are about to become their own gradient
  Activations& a = activations_;
  const std::int64_t N = std::int64_t{batch_size_} * sequence_length_;
  const std::int64_t C = config().channels;
  const std::int64_t Vp = config().padded_vocab_size;
  const auto zero = ops::set_zero;
  // A frozen model (no gradient storage) passes empty gradients, which the ops skip: only dinp is computed.
  const bool frozen = storage_.gradients == StorageOwner::None;
  auto gradient_of = [&](const std::string& name) { return frozen ? Tensor() : gradient(name); };

  const int head = unit_count() - 1;
  announce(&UnitHooks::before_backward, head);
  // d(mean loss · scale)/d(loss_i) is the same for every valid position.
  const double dloss = loss_scale / static_cast<double>(valid_targets_);
  Tensor logits = a.logits.reshaped({N, Vp});
  ops::softmax_cross_entropy_backward(logits, logits, a.targets.reshaped({N}), config().vocab_size, dloss);
  zero(a.d_channels);
  ops::matmul_backward(a.d_channels.reshaped({N, C}), gradient_of("lm_head.weight"), no_bias(dtype_), logits,
                       a.lnf.reshaped({N, C}), parameter("lm_head.weight"));
  Tensor last_residual = config().layer_count > 0 ? a.blocks.back().residual_mlp : a.embedded;
  zero(a.d_residual);
  ops::layernorm_backward(a.d_residual, gradient_of("lnf.weight"), gradient_of("lnf.bias"), a.d_channels, last_residual,
                          parameter("lnf.weight"), a.lnf_mean, a.lnf_rstd);
  announce(&UnitHooks::after_backward, head);

  // a.d_residual now holds d(loss)/d(residual stream) and flows down through the blocks: each branch's
  // input-gradient is accumulated straight into it, which is exactly the residual connection's backward.
  for (int layer = config().layer_count - 1; layer >= 0; --layer) {
    announce(&UnitHooks::before_backward, 1 + layer);
    const BlockWeights w = block_weights(unit_parameters(1 + layer), layout_, layer);
    const BlockWeights g = frozen ? BlockWeights{} : block_weights(unit_gradients(1 + layer), layout_, layer);
    BlockActivations& b = a.blocks[layer];
    Tensor block_input = layer == 0 ? a.embedded : a.blocks[layer - 1].residual_mlp;

    zero(a.d_mlp_gelu);
    block_linear_backward(adapters_, layer, BlockLinear::MlpProjection, a.d_mlp_gelu.reshaped({N, 4 * C}),
                          g.mlp_proj_weight, g.mlp_proj_bias, a.d_residual.reshaped({N, C}),
                          b.mlp_gelu.reshaped({N, 4 * C}), w.mlp_proj_weight);
    zero(a.d_mlp_hidden);
    ops::gelu_backward(a.d_mlp_hidden, b.mlp_hidden, a.d_mlp_gelu);
    zero(a.d_channels);
    block_linear_backward(adapters_, layer, BlockLinear::MlpFc, a.d_channels.reshaped({N, C}), g.fc_weight,
                          g.fc_bias, a.d_mlp_hidden.reshaped({N, 4 * C}), b.ln2.reshaped({N, C}), w.fc_weight);
    ops::layernorm_backward(a.d_residual, g.ln2_weight, g.ln2_bias, a.d_channels, b.residual_attention, w.ln2_weight,
                            b.ln2_mean, b.ln2_rstd);

    zero(a.d_channels);
    block_linear_backward(adapters_, layer, BlockLinear::AttentionProjection, a.d_channels.reshaped({N, C}),
                          g.proj_weight, g.proj_bias, a.d_residual.reshaped({N, C}),
                          b.attention_out.reshaped({N, C}), w.proj_weight);
    zero(a.d_qkv);
    if (a.attention() == AttentionKind::Fused) {
      ops::flash_attention_backward(a.d_qkv, a.d_channels, b.qkv, b.attention_out, b.attention_lse, config().head_count);
    } else {
      ops::attention_backward(a.d_qkv, a.d_channels, b.qkv, b.attention_probs, config().head_count);
    }
    zero(a.d_channels);
    block_linear_backward(adapters_, layer, BlockLinear::Qkv, a.d_channels.reshaped({N, C}), g.qkv_weight,
                          g.qkv_bias, a.d_qkv.reshaped({N, 3 * C}), b.ln1.reshaped({N, C}), w.qkv_weight);
    ops::layernorm_backward(a.d_residual, g.ln1_weight, g.ln1_bias, a.d_channels, block_input, w.ln1_weight, b.ln1_mean,
                            b.ln1_rstd);
    announce(&UnitHooks::after_backward, 1 + layer);
  }

  announce(&UnitHooks::before_backward, 0);
  if (!frozen) ops::embedding_backward(gradient("wte"), gradient("wpe"), a.d_residual, a.tokens);
  announce(&UnitHooks::after_backward, 0);
}

std::vector<float> GPT::logits_at(int row, int position) const {
  LADDER_CHECK(row >= 0 && row < batch_size_ && position >= 0 && position < sequence_length_, "logits position (", row,
               ", ", position, ") outside the last forward's ", batch_size_, "x", sequence_length_);
  const std::int64_t Vp = config().padded_vocab_size;
  const Tensor row_logits = activations_.logits.reshaped({std::int64_t{batch_size_} * sequence_length_ * Vp})
                                .slice((std::int64_t{row} * sequence_length_ + position) * Vp, config().vocab_size);
  std::vector<float> values(static_cast<std::size_t>(config().vocab_size));
  ops::convert_between_devices(Tensor(values.data(), DType::F32, {config().vocab_size}), row_logits);
  return values;
}

}  // namespace ladder
