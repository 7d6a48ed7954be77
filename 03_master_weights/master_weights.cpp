#include "03_master_weights/master_weights.hpp"

#include "common/ops/ops.hpp"

namespace ladder::stage03 {

MasterWeights::MasterWeights(const GPT& model) : MasterWeights(model.parameters()) {}

MasterWeights::MasterWeights(Tensor working_weights)
    : storage_(working_weights.numel() * dtype_size(DType::F32), MemoryCategory::MasterWeights,
               working_weights.device()),
      weights_(view_of(storage_, DType::F32)) {
  ops::convert(weights_, working_weights);
}

void MasterWeights::copy_from(const GPT& model) { ops::convert(weights_, model.parameters()); }

void MasterWeights::assign(GPT& model, Tensor weights) {
  ops::convert(weights_, weights);
  ops::convert(model.parameters(), weights_);
}

double MasterWeights::step(AdamW& optimizer, GPT& model, double learning_rate, double gradient_scale) {
  return step(optimizer, model.parameters(), model.gradients(), learning_rate, gradient_scale);
}

double MasterWeights::step(AdamW& optimizer, Tensor working_weights, Tensor gradients, double learning_rate,
                           double gradient_scale) {
  // AdamW converts each fp16 gradient to fp32 as it reads it, so no fp32 gradient buffer is ever
  // allocated: the "copy gradient into fp32" step of the recipe costs no memory. It also makes the copy back,
  // the only rounding (fp32 master -> fp16 working weights), as it writes each updated master weight: one pass
  // over the weights instead of two. Elements outside the optimizer's spans (padding) are not written: their
  // master value is their working value widened, which the separate copy used to round back unchanged.
  return optimizer.step(weights_, gradients, learning_rate, gradient_scale, working_weights);
}

void MasterWeights::step_with_norm(AdamW& optimizer, GPT& model, double learning_rate, double gradient_norm) {
  optimizer.update(weights_, model.gradients(), learning_rate, gradient_norm, 1.0, model.parameters());
}

MasterWeightsTraining::MasterWeightsTraining(const GPTConfig& config, const AdamWConfig& adamw, int batch_size,
                                             int sequence_length, DType working_dtype, Device device,
                                             int shard_multiple)
    : model(config, working_dtype, batch_size, sequence_length, shard_multiple, device),
      master(model),
      optimizer(model.layout(), adamw, DType::F32, device) {}

}  // namespace ladder::stage03
