/// @file gpt.hpp
/// @brief The GPT: parameters in one flat buffer of units, forward, and backward that announces each unit.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "common/data/data_source.hpp"
#include "common/memory.hpp"
#include "common/model/activations.hpp"
#include "common/model/linear_adapter.hpp"
#include "common/model/parameter_layout.hpp"
#include "common/model/unit_hooks.hpp"
#include "common/tensor.hpp"

namespace ladder {

/// Who holds a GPT's weights, or its gradients.
enum class StorageOwner {
  Model,  ///< the model allocates one flat buffer, laid out unit by unit, that lives as long as the model
  Stage,  ///< a stage attaches each unit's storage while the unit is in use and takes it back (ZeRO-2, FSDP)
  None,   ///< gradients only: there are none, the weights are frozen (LoRA's base); backward computes only the
          ///< activations' gradients, which flow to whatever trains (the adapters)
};

/// Where a GPT's weights and gradients live: by default both in the model's own flat buffers.
struct GPTStorage {
  StorageOwner parameters = StorageOwner::Model;  ///< Stage: FSDP gathers a unit's weights before each use
  StorageOwner gradients = StorageOwner::Model;   ///< Stage: ZeRO-2/FSDP hand out a unit's gradients during backward;
                                                  ///< None: a frozen model (stage 10)
};

/// A GPT-2-style decoder (pre-norm blocks, GELU MLP, untied head) with storage type `dtype` for weights,
/// gradients and activations, all on one device. Sized at construction for up to `batch_size` × `sequence_length`
/// tokens. On the CPU attention keeps its T×T probabilities (the readable reference); on the GPU it is fused.
class GPT {
 public:
  /// Allocates activations on `device`, and the flat parameter and gradient buffers (zero) that `storage` gives
  /// the model; `shard_multiple` pads every unit so it splits into that many equal shards.
  GPT(const GPTConfig& config, DType dtype, int batch_size, int sequence_length, int shard_multiple = 1,
      Device device = Device::CPU, GPTStorage storage = {});

  /// GPT-2 initialisation from `seed`: N(0, 0.02) matrices, residual projections scaled by 1/sqrt(2L),
  /// LayerNorm weights 1, biases 0, padded vocabulary rows 0. Each tensor draws from its own stream,
  /// so the values do not depend on padding or dtype (they are drawn in double, rounded to fp32, then stored).
  void initialize(std::uint64_t seed);
  /// The same initialisation for the tensors of one unit only (a stage that holds one unit at a time, FSDP).
  void initialize_unit(std::uint64_t seed, int unit);

  /// Runs the forward pass on a batch and returns the mean loss over its valid targets.
  double forward(const Batch& batch);
  /// Runs the forward pass up to the logits only (for generation); tokens are B×T row-major.
  void forward_logits(const std::vector<std::int32_t>& tokens, int batch_size, int sequence_length);
  /// Backward of the last forward(batch): adds d(loss · loss_scale)/dθ to the gradients.
  void backward(double loss_scale = 1.0);
  /// Sets every gradient (padding included) to zero: the flat buffer, or the units' attached storage (a frozen
  /// model has none).
  void zero_gradients();

  /// The flat parameter buffer (all units, padding included); throws when a stage holds the weights.
  Tensor parameters() const;
  /// The flat gradient buffer, in the same layout; throws when a stage holds the gradients.
  Tensor gradients() const;
  /// One named parameter as a shaped view (its unit's weights must be in place).
  Tensor parameter(const std::string& name) const;
  /// The gradient of one named parameter as a shaped view (its unit's gradients must be in place).
  Tensor gradient(const std::string& name) const;
  /// Unit `unit`'s weights, padding included (layout().units()[unit].size elements); throws naming the unit when
  /// a stage holds the weights and has not attached them.
  Tensor unit_parameters(int unit) const;
  /// Unit `unit`'s gradients, in the same layout; throws naming the unit when they are not attached.
  Tensor unit_gradients(int unit) const;
  /// Lends unit `unit` the weights in `storage` (the model's dtype and device, the unit's size) until detached.
  void attach_unit_parameters(int unit, Tensor storage);
  /// Lends unit `unit` gradient storage; backward accumulates into it, so it should hold zeros.
  void attach_unit_gradients(int unit, Tensor storage);
  /// Takes unit `unit`'s weights back; reading them before the next attach is an error.
  void detach_unit_parameters(int unit);
  /// Takes unit `unit`'s gradient storage back.
  void detach_unit_gradients(int unit);
  /// Calls `read` with unit `unit`'s weights between the unit's before_forward and after_forward hooks, so a stage
  /// that keeps the weights sharded (FSDP) gathers them for the call, as for a forward pass. Every rank must call it.
  void read_unit_weights(int unit, const std::function<void(Tensor)>& read);
  /// Who holds the weights and the gradients.
  const GPTStorage& storage() const { return storage_; }
  /// Logits of position (row, t) of the last forward, as fp32, real vocabulary only.
  std::vector<float> logits_at(int row, int position) const;

  /// Installs hooks called around every unit (nullptr: none). Not owned.
  void set_hooks(UnitHooks* hooks) { hooks_ = hooks; }
  /// Installs adapters called after every block linear (nullptr: none). Not owned.
  void set_linear_adapters(LinearAdapters* adapters) { adapters_ = adapters; }
  /// The layout of parameters and gradients.
  const ParameterLayout& layout() const { return layout_; }
  /// The model's shape.
  const GPTConfig& config() const { return layout_.config(); }
  /// Storage type of weights, gradients and activations.
  DType dtype() const { return dtype_; }
  /// Where weights, gradients and activations live.
  Device device() const { return device_; }
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
  void check_unit(int unit) const;
  Tensor check_attachable(int unit, Tensor storage, const char* what) const;

  ParameterLayout layout_;
  DType dtype_;
  int max_batch_size_;
  int max_sequence_length_;
  Device device_;
  GPTStorage storage_;
  Buffer parameter_storage_;  // empty when a stage holds the weights
  Buffer gradient_storage_;   // empty when a stage holds the gradients
  std::vector<Tensor> unit_parameters_;  // a slice of parameter_storage_, or what a stage attached (else empty)
  std::vector<Tensor> unit_gradients_;
  Activations activations_;
  UnitHooks* hooks_ = nullptr;
  LinearAdapters* adapters_ = nullptr;
  int batch_size_ = 0;       // shape of the last forward
  int sequence_length_ = 0;
  bool has_targets_ = false;  // whether the last forward computed a loss that backward can use
  std::int64_t valid_targets_ = 0;
};

}  // namespace ladder
