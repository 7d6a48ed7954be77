#include "01_fp32_baseline/fp32_training.hpp"

namespace ladder::stage01 {

Fp32Training::Fp32Training(const GPTConfig& config, const AdamWConfig& adamw, int batch_size, int sequence_length,
                           Device device)
    : model(config, DType::F32, batch_size, sequence_length, 1, device),
      optimizer(model.layout(), adamw, DType::F32, device) {}

}  // namespace ladder::stage01
