#include "common/optim/adamw.hpp"

#include <algorithm>
#include <cmath>

#include "common/ops/ops.hpp"

namespace ladder {

AdamW::AdamW(const ParameterLayout& layout, const AdamWConfig& config, DType state_dtype, Device device)
    : layout_(layout),
      config_(config),
      first_moment_storage_(layout.padded_size() * dtype_size(state_dtype), MemoryCategory::OptimizerState, device),
      second_moment_storage_(layout.padded_size() * dtype_size(state_dtype), MemoryCategory::OptimizerState, device),
      first_moment_(view_of(first_moment_storage_, state_dtype)),
      second_moment_(view_of(second_moment_storage_, state_dtype)) {}

double clip_coefficient(double gradient_norm, double max_norm) {
  if (max_norm <= 0) return 1.0;
  return std::min(1.0, max_norm / (gradient_norm + 1e-6));
}

double AdamW::step(Tensor parameters, Tensor gradients, double learning_rate, double gradient_scale) {
  LADDER_CHECK(parameters.numel() == layout_.padded_size() && gradients.numel() == layout_.padded_size(),
               "AdamW expects parameters and gradients of ", layout_.padded_size(), " elements, got ", parameters.numel(),
               " and ", gradients.numel());
  const double norm = std::sqrt(ops::sum_of_squares(gradients)) * gradient_scale;
  ++step_count_;
  ops::AdamWStep hyper;
  hyper.learning_rate = learning_rate;
  hyper.beta1 = config_.beta1;
  hyper.beta2 = config_.beta2;
  hyper.epsilon = config_.epsilon;
  hyper.step = step_count_;
  hyper.gradient_scale = gradient_scale * clip_coefficient(norm, config_.gradient_clip);
  for (const ParameterTensor& tensor : layout_.tensors()) {
    hyper.weight_decay = tensor.decays ? config_.weight_decay : 0.0;
    ops::adamw_update(parameters.slice(tensor.offset, tensor.numel), gradients.slice(tensor.offset, tensor.numel),
                      first_moment_.slice(tensor.offset, tensor.numel), second_moment_.slice(tensor.offset, tensor.numel),
                      hyper);
  }
  return norm;
}

}  // namespace ladder
