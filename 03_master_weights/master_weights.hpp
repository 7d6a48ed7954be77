/// @file master_weights.hpp
/// @brief Stage 03's technique: an fp32 master copy of the fp16 weights, which is what the optimizer updates.
#pragma once

#include "common/memory.hpp"
#include "common/model/gpt.hpp"
#include "common/optim/adamw.hpp"
#include "common/tensor.hpp"

/// Stage 03: fp32 master weights.
namespace ladder::stage03 {

/// An fp32 copy of every weight of a reduced-precision model, in the model's layout (4 bytes per parameter,
/// accounted as master weights). Small updates accumulate here, where fp32 can hold them; the model only ever
/// receives the rounded result, so an update smaller than half an fp16 ulp is delayed, not lost.
class MasterWeights {
 public:
  /// Allocates the fp32 copy on the model's device and fills it from the model's current weights.
  explicit MasterWeights(const GPT& model);
  /// The same for any flat buffer of reduced-precision weights (stage 10 keeps one for its adapters).
  explicit MasterWeights(Tensor working_weights);
  /// Refills the fp32 copy from the model's weights (after the model was initialised or loaded).
  void copy_from(const GPT& model);
  /// Sets the master copy to `weights` (any float dtype, the model's layout) and rounds it into the model.
  void assign(GPT& model, Tensor weights);
  /// One optimizer step on the master copy, then the copy back (lecture steps 4-6): the optimizer reads the
  /// model's reduced-precision gradients as fp32 (times gradient_scale, which undoes a loss scale), updates the
  /// fp32 master weights with fp32 moments, and the result is rounded into the model's weights.
  /// Returns the gradient norm before clipping, as AdamW::step does.
  double step(AdamW& optimizer, GPT& model, double learning_rate, double gradient_scale = 1.0);
  /// The same step for a flat buffer of working weights and their gradients (stage 10's adapters).
  double step(AdamW& optimizer, Tensor working_weights, Tensor gradients, double learning_rate,
              double gradient_scale = 1.0);
  /// The same step with the gradient norm measured by the caller: stage 06 adds it up shard by shard, in the
  /// order the sharded stages must use, so that all of them clip with the same bits.
  void step_with_norm(AdamW& optimizer, GPT& model, double learning_rate, double gradient_norm);
  /// The fp32 master weights.
  Tensor weights() const { return weights_; }

 private:
  Buffer storage_;
  Tensor weights_;
};

/// Bytes each parameter costs in this stage: 2 (fp16 weight) + 2 (fp16 gradient) + 4 (fp32 master) + 8 (fp32 moments).
inline constexpr int kBytesPerParameter = 2 + 2 + 4 + 4 + 4;

/// Stage 03's state: a reduced-precision model, its fp32 master weights, and AdamW with fp32 moments.
/// `working_dtype` is fp16 here; stage 05 reuses this with bf16.
struct MasterWeightsTraining {
  /// Allocates the model (working_dtype), the fp32 master copy and fp32 moments for B×T batches; the layout's
  /// units are padded to split into `shard_multiple` equal pieces (stage 06 pads for its world size).
  MasterWeightsTraining(const GPTConfig& config, const AdamWConfig& adamw, int batch_size, int sequence_length,
                        DType working_dtype = DType::F16, Device device = Device::CPU, int shard_multiple = 1);

  GPT model;             ///< fp16 weights (2 B/param) and gradients (2 B/param), fp16 activations
  MasterWeights master;  ///< fp32 master weights (4 B/param)
  AdamW optimizer;       ///< fp32 first and second moments (8 B/param)
};

}  // namespace ladder::stage03
