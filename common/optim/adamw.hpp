/// @file adamw.hpp
/// @brief AdamW over the flat parameter layout, with global-norm gradient clipping (PyTorch semantics).
#pragma once

#include <cstdint>

#include "common/memory.hpp"
#include <vector>

#include "common/model/parameter_layout.hpp"
#include "common/model/shard_layout.hpp"
#include "common/tensor.hpp"

namespace ladder {

/// AdamW hyper-parameters that stay fixed for a run.
struct AdamWConfig {
  double beta1 = 0.9;           ///< first-moment decay
  double beta2 = 0.95;          ///< second-moment decay
  double epsilon = 1e-8;        ///< added to sqrt(v̂)
  double weight_decay = 0.1;    ///< decoupled decay of matrices and embeddings
  double gradient_clip = 1.0;   ///< max global gradient norm; 0 disables clipping
};

/// Adam's two moments for every parameter of a layout, or of one rank's shard of it, and the update. The moments'
/// dtype is a choice of the stage: fp32 normally, fp16 in the naive stage 02. They are accounted as optimizer state.
class AdamW {
 public:
  /// Allocates zeroed moments for `layout` in `state_dtype` on `device` (the device of the weights it updates).
  AdamW(const ParameterLayout& layout, const AdamWConfig& config, DType state_dtype = DType::F32,
        Device device = Device::CPU);
  /// Allocates zeroed moments for one rank's shard only (ZeRO): shard.size() elements instead of the layout's.
  AdamW(const ShardLayout& shard, const AdamWConfig& config, DType state_dtype = DType::F32,
        Device device = Device::CPU);
  /// Allocates zeroed moments for a flat buffer of `size` elements outside the GPT's layout (stage 10's adapters),
  /// of which it updates `spans` (each span's shard and layout offsets are its place in that buffer).
  AdamW(std::vector<ShardSpan> spans, std::int64_t size, const AdamWConfig& config, DType state_dtype = DType::F32,
        Device device = Device::CPU);
  /// One step of the whole model: measures the global norm of gradients·gradient_scale, clips it to
  /// gradient_clip, and updates every tensor of `parameters` (weight decay only where the layout says it decays).
  /// Returns the norm before clipping. gradient_scale undoes a loss scale (stage 04); 1 otherwise. Given a
  /// `rounded_copy` of fp32 parameters (the working weights of a master copy), each updated span is also rounded
  /// into it, in the update's pass: afterwards it equals ops::convert of the parameters at every span.
  double step(Tensor parameters, Tensor gradients, double learning_rate, double gradient_scale = 1.0,
              Tensor rounded_copy = Tensor());
  /// The same update with the norm measured elsewhere (over all ranks' shards). `parameters` has size()
  /// elements; `gradients` has size() elements (laid out like the parameters) or the layout's padded size (the
  /// whole model's gradients, of which this optimizer reads its spans).
  void update(Tensor parameters, Tensor gradients, double learning_rate, double gradient_norm,
              double gradient_scale = 1.0, Tensor rounded_copy = Tensor());
  /// Elements of parameters and moments it updates: the layout's padded size, or the shard's.
  std::int64_t size() const { return size_; }
  /// Steps taken so far (bias correction uses it).
  std::int64_t step_count() const { return step_count_; }
  /// Sets the steps taken so far: a run restored from a checkpoint continues its bias correction from there.
  void set_step_count(std::int64_t steps);
  /// The first moments, in the parameters' layout.
  Tensor first_moment() const { return first_moment_; }
  /// The second moments, in the parameters' layout.
  Tensor second_moment() const { return second_moment_; }
  /// The fixed hyper-parameters.
  const AdamWConfig& config() const { return config_; }

 private:
  AdamW(std::vector<ShardSpan> spans, std::int64_t size, std::int64_t layout_size, const AdamWConfig& config,
        DType state_dtype, Device device);

  AdamWConfig config_;
  std::vector<ShardSpan> spans_;  // the real parameters it updates (padding stays zero)
  std::int64_t size_ = 0;
  std::int64_t layout_size_ = 0;  // the whole layout's padded size
  Buffer first_moment_storage_;
  Buffer second_moment_storage_;
  Tensor first_moment_;
  Tensor second_moment_;
  std::int64_t step_count_ = 0;
};

/// The clip factor torch.nn.utils.clip_grad_norm_ applies: min(1, max_norm / (norm + 1e-6)); 1 when max_norm is 0.
double clip_coefficient(double gradient_norm, double max_norm);

}  // namespace ladder
