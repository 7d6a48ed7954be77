#include "common/optim/adamw.hpp"

#include <algorithm>
#include <cmath>
#include <utility>

#include "common/ops/ops.hpp"

namespace ladder {

AdamW::AdamW(const ParameterLayout& layout, const AdamWConfig& config, DType state_dtype, Device device)
    : AdamW(ShardLayout(layout, 0, 1), config, state_dtype, device) {}

AdamW::AdamW(const ShardLayout& shard, const AdamWConfig& config, DType state_dtype, Device device)
    : AdamW(shard.spans(), shard.size(), shard.layout().padded_size(), config, state_dtype, device) {}

AdamW::AdamW(std::vector<ShardSpan> spans, std::int64_t size, const AdamWConfig& config, DType state_dtype,
             Device device)
    : AdamW(std::move(spans), size, size, config, state_dtype, device) {}

AdamW::AdamW(std::vector<ShardSpan> spans, std::int64_t size, std::int64_t layout_size, const AdamWConfig& config,
             DType state_dtype, Device device)
    : config_(config),
      spans_(std::move(spans)),
      size_(size),
      layout_size_(layout_size),
      first_moment_storage_(size * dtype_size(state_dtype), MemoryCategory::OptimizerState, device),
      second_moment_storage_(size * dtype_size(state_dtype), MemoryCategory::OptimizerState, device),
      first_moment_(view_of(first_moment_storage_, state_dtype)),
      second_moment_(view_of(second_moment_storage_, state_dtype)) {}

void AdamW::set_step_count(std::int64_t steps) {
  LADDER_CHECK(steps >= 0, "AdamW: a step count of ", steps, " is negative");
  step_count_ = steps;
}

double clip_coefficient(double gradient_norm, double max_norm) {
  if (max_norm <= 0) return 1.0;
  return std::min(1.0, max_norm / (gradient_norm + 1e-6));
}

double AdamW::step(Tensor parameters, Tensor gradients, double learning_rate, double gradient_scale,
                   Tensor rounded_copy) {
  LADDER_CHECK(size_ == layout_size_, "AdamW::step measures the norm of this rank's gradients alone; a shard's "
                                      "optimizer needs the norm over all shards: call update() with it");
  LADDER_CHECK(gradients.numel() == size_, "AdamW expects gradients of ", size_, " elements, got ", gradients.numel());
  const double norm = std::sqrt(ops::sum_of_squares(gradients)) * gradient_scale;
  update(parameters, gradients, learning_rate, norm, gradient_scale, rounded_copy);
  return norm;
}

void AdamW::update(Tensor parameters, Tensor gradients, double learning_rate, double gradient_norm,
                   double gradient_scale, Tensor rounded_copy) {
  LADDER_CHECK(parameters.numel() == size_ && (gradients.numel() == size_ || gradients.numel() == layout_size_),
               "AdamW expects parameters of ", size_, " elements and gradients of ", size_, " (or ", layout_size_,
               ", the whole layout), got ", parameters.numel(), " and ", gradients.numel());
  // Whole-layout gradients are read at each span's place in the layout; shard-sized ones at its place in the shard.
  const bool gradients_in_layout = gradients.numel() != size_;
  const bool copies = rounded_copy.data() != nullptr;
  LADDER_CHECK(!copies || rounded_copy.numel() == size_, "AdamW: the rounded copy has ", rounded_copy.numel(),
               " elements, the parameters ", size_);
  ++step_count_;
  ops::AdamWStep hyper;
  hyper.learning_rate = learning_rate;
  hyper.beta1 = config_.beta1;
  hyper.beta2 = config_.beta2;
  hyper.epsilon = config_.epsilon;
  hyper.step = step_count_;
  hyper.gradient_scale = gradient_scale * clip_coefficient(gradient_norm, config_.gradient_clip);
  for (const ShardSpan& span : spans_) {
    hyper.weight_decay = span.decays ? config_.weight_decay : 0.0;
    const std::int64_t gradient_offset = gradients_in_layout ? span.layout_offset : span.shard_offset;
    ops::adamw_update(parameters.slice(span.shard_offset, span.size), gradients.slice(gradient_offset, span.size),
                      first_moment_.slice(span.shard_offset, span.size),
                      second_moment_.slice(span.shard_offset, span.size), hyper,
                      copies ? rounded_copy.slice(span.shard_offset, span.size) : Tensor());
  }
}

}  // namespace ladder
