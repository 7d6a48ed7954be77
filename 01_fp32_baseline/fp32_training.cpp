#include "01_fp32_baseline/fp32_training.hpp"

namespace ladder::stage01 {

Fp32Training::Fp32Training(const GPTConfig& config, const AdamWConfig& adamw, int batch_size, int sequence_length)
    : model(config, DType::F32, batch_size, sequence_length), optimizer(model.layout(), adamw, DType::F32) {}

}  // namespace ladder::stage01
