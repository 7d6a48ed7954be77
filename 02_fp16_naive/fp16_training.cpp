#include "02_fp16_naive/fp16_training.hpp"

#include "common/ops/ops.hpp"

namespace ladder::stage02 {

Fp16Training::Fp16Training(const GPTConfig& config, const AdamWConfig& adamw, int batch_size, int sequence_length,
                           Device device)
    : model(config, DType::F16, batch_size, sequence_length, 1, device),
      optimizer(model.layout(), adamw, DType::F16, device) {}

}  // namespace ladder::stage02
