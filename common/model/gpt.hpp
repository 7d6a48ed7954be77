/// @file gpt.hpp
/// @brief The GPT: parameters in one flat buffer of units, forward, and backward that announces each unit.
#pragma once

#include <cstdint>
#include <vector>

#include "common/data/data_source.hpp"
#include "common/memory.hpp"
#include "common/model/activations.hpp"
#include "common/model/parameter_layout.hpp"
#include "common/model/unit_hooks.hpp"
#include "common/tensor.hpp"

namespace ladder {

/// A GPT-2-style decoder (pre-norm blocks, GELU MLP, untied head) with storage type `dtype` for weights,
/// gradients and activations, all on one device. Sized at construction for up to `batch_size` × `sequence_length`
/// tokens. On the CPU attention keeps its T×T probabilities (the readable reference); on the GPU it is fused.
class GPT {
 public:
  /// Allocates parameters, gradients (both zero) and activations on `device`; `shard_multiple` pads units for
  /// sharding.
  GPT(const GPTConfig& config, DType dtype, int batch_size, int sequence_length, int shard_multiple = 1,
      Device device = Device::CPU);

  /// GPT-2 initialisation from `seed`: N(0, 0.02) matrices, residual projections scaled by 1/sqrt(2L),
  /// LayerNorm weights 1, biases 0, padded vocabulary rows 0. Each tensor draws from its own stream,
  /// so the values do not depend on padding or dtype (they are drawn in double, rounded to fp32, then stored).
  void initialize(std::uint64_t seed);

  /// Runs the forward pass on a batch and returns the mean loss over its valid targets.
  double forward(const Batch& batch);
  /// Runs the forward pass up to the logits only (for generation); tokens are B×T row-major.
  void forward_logits(const std::vector<std::int32_t>& tokens, int batch_size, int sequence_length);
  /// Backward of the last forward(batch): adds d(loss · loss_scale)/dθ to the gradients.
  void backward(double loss_scale = 1.0);
  /// Sets every gradient (padding included) to zero.
  void zero_gradients();

  /// The flat parameter buffer (all units, padding included).
  Tensor parameters() const { return parameters_; }
  /// The flat gradient buffer, in the same layout.
  Tensor gradients() const { return gradients_; }
  /// One named parameter as a shaped view.
  Tensor parameter(const std::string& name) const;
  /// The gradient of one named parameter as a shaped view.
  Tensor gradient(const std::string& name) const;
  /// Logits of position (row, t) of the last forward, as fp32, real vocabulary only.
  std::vector<float> logits_at(int row, int position) const;

  /// Installs hooks called around every unit (nullptr: none). Not owned.
  void set_hooks(UnitHooks* hooks) { hooks_ = hooks; }
  /// The layout of parameters and gradients.
  const ParameterLayout& layout() const { return layout_; }
  /// The model's shape.
  const GPTConfig& config() const { return layout_.config(); }
  /// Storage type of weights, gradients and activations.
  DType dtype() const { return dtype_; }
  /// Where weights, gradients and activations live.
  Device device() const { return parameter_storage_.device(); }
  /// Most rows a forward can take (the activations' size).
  int max_batch_size() const { return max_batch_size_; }
  /// Longest sequence a forward can take (the activations' size, at most the model's context).
  int max_sequence_length() const { return max_sequence_length_; }
  /// Number of units (L + 2).
  int unit_count() const { return static_cast<int>(layout_.units().size()); }

 private:
  void load_inputs(const std::vector<std::int32_t>& tokens, int batch_size, int sequence_length);
  void run_forward(int batch_size, int sequence_length);
  void announce(void (UnitHooks::*call)(int), int unit);

  ParameterLayout layout_;
  DType dtype_;
  int max_batch_size_;
  int max_sequence_length_;
  Buffer parameter_storage_;
  Buffer gradient_storage_;
  Tensor parameters_;
  Tensor gradients_;
  Activations activations_;
  UnitHooks* hooks_ = nullptr;
  int batch_size_ = 0;       // shape of the last forward
  int sequence_length_ = 0;
  bool has_targets_ = false;  // whether the last forward computed a loss that backward can use
  std::int64_t valid_targets_ = 0;
};

}  // namespace ladder
