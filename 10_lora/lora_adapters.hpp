/// @file lora_adapters.hpp
/// @brief Stage 10's technique: trainable low-rank adapters B·A beside the frozen weights of chosen block linears.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "10_lora/lora_settings.hpp"
#include "common/memory.hpp"
#include "common/model/gpt.hpp"
#include "common/model/linear_adapter.hpp"
#include "common/model/shard_layout.hpp"
#include "common/tensor.hpp"

namespace ladder::stage10 {

/// One adapted weight block W0 (d×k) of one layer, and where its A (r×k) and B (d×r) sit in the adapters' buffer.
struct LoraAdapter {
  int layer = 0;                  ///< the block
  const LoraTarget* target = nullptr;  ///< which weight (q, k, v, o, fc, proj)
  std::string name;               ///< module path, e.g. "blocks.0.attn.q" (the PEFT reference model's)
  std::string weight_name;        ///< the GPT parameter holding W0, e.g. "blocks.0.attn.qkv.weight"
  std::int64_t row_offset = 0;    ///< first row of W0 in that parameter (q 0, k C, v 2C; else 0)
  std::int64_t rows = 0;          ///< d: output features of the block
  std::int64_t columns = 0;       ///< k: input features
  std::int64_t a_offset = 0;      ///< A's first element in the flat buffer
  std::int64_t b_offset = 0;      ///< B's first element
};

/// Adapters on every layer's chosen targets: out = x·W0ᵀ + b + (α/r)·(x·Aᵀ)·Bᵀ, with W0 frozen and only A and B
/// trained (Hu et al., 2021). Installed in a GPT as its LinearAdapters, so the model's code has no LoRA in it.
///
/// The weights live in one flat buffer (every adapter's A then B, layer by layer) in the model's dtype, with gradients
/// in the same layout: 2 + 2 bytes per adapter parameter. Its fp32 master and moments are the stage's, as in 05.
/// A target inside the fused QKV matrix (q, k or v) adapts only its C rows: its B acts as a 3C×r matrix that is
/// zero outside those rows, so the added term lands in the right columns of the qkv output with one GEMM.
class LoraAdapters : public LinearAdapters {
 public:
  /// Lays out adapters for `model`'s shape, allocates them on its device in its dtype and initialises them from
  /// `seed`; throws LadderError naming the setting that the model cannot take (validate()).
  LoraAdapters(const GPT& model, const LoraSettings& settings, std::uint64_t seed);

  /// (Again) PEFT's default initialisation from `seed`: A Kaiming-uniform (a = √5, so U(-1/√k, 1/√k)), B zero. B = 0 makes
  /// the adapted model start as the base, bit for bit. Each adapter draws from its own stream.
  void initialize(std::uint64_t seed);
  /// Every A and B, flat, in the model's dtype.
  Tensor weights() const { return weights_; }
  /// Their gradients, in the same layout.
  Tensor gradients() const { return gradients_; }
  /// Sets every gradient to zero (backward accumulates).
  void zero_gradients();
  /// The adapters, layer by layer, targets in q, k, v, o, fc, proj order.
  const std::vector<LoraAdapter>& adapters() const { return adapters_; }
  /// A of adapter `index` as a view (r, k) of `values` (weights(), gradients(), or the master in that layout).
  Tensor a_of(Tensor values, std::size_t index) const;
  /// B of adapter `index` as a view (d, r) of `values`.
  Tensor b_of(Tensor values, std::size_t index) const;
  /// Trainable parameters: Σ r·(d + k).
  std::int64_t parameter_count() const { return weights_.numel(); }
  /// The runs AdamW updates: every A and B, all with weight decay (they are matrices).
  std::vector<ShardSpan> spans() const;
  /// The settings they were built with.
  const LoraSettings& settings() const { return settings_; }

  /// Dropout on the adapters' input in the forwards that follow, with masks drawn for training step `step`.
  void enable_dropout(std::int64_t step);
  /// No dropout (evaluation, generation): the default.
  void disable_dropout();

  /// W0 += sign·(α/r)·B·A for every adapter, with A and B read from `values` (any float dtype, this layout), summed in
  /// double and rounded once into the model's dtype. sign +1 merges (the adapters must then be uninstalled: the
  /// model alone computes the adapted function); -1 unmerges, which recovers W0 within that dtype's rounding.
  void merge_into(GPT& model, Tensor values, double sign = 1.0) const;

  /// Adds (α/r)·(x·Aᵀ)·Bᵀ to out for this linear's adapters (LinearAdapters).
  void forward(int layer, BlockLinear linear, Tensor out, Tensor inp) override;
  /// Accumulates dA, dB and the term's dinp (LinearAdapters).
  void backward(int layer, BlockLinear linear, Tensor dinp, Tensor dout, Tensor inp) override;

 private:
  Tensor full_b(std::size_t index, Tensor b);
  Tensor hidden_of(std::size_t index, std::int64_t tokens) const;
  std::uint64_t mask_seed(std::size_t index) const;
  std::vector<std::size_t>& adapters_at(int layer, BlockLinear linear);

  LoraSettings settings_;
  DType dtype_;
  std::int64_t max_tokens_;
  std::vector<LoraAdapter> adapters_;
  std::vector<std::vector<std::size_t>> by_linear_;  // [layer·4 + linear]: indices into adapters_
  Buffer weight_storage_;    // parameters: every A and B
  Buffer gradient_storage_;  // gradients
  Buffer hidden_storage_;    // activations: (α/r)·x·Aᵀ of each adapter, saved for backward
  Buffer scratch_storage_;   // workspace, shared by every adapter in turn
  Tensor weights_, gradients_;
  Tensor term_, hidden_gradient_, padded_b_, padded_b_gradient_, dropped_input_, dropped_input_gradient_;
  std::optional<std::int64_t> dropout_step_;       // set: dropout in the next forwards
  std::optional<std::int64_t> forward_dropout_step_;  // what the last forward used, which backward repeats
  std::uint64_t dropout_seed_ = 0;
};

}  // namespace ladder::stage10
