#include "05_bf16/bf16_training.hpp"

namespace ladder::stage05 {

// The same three pieces as stage 03 (model, master, optimizer); only the working dtype differs, so the state
// is stage 03's and the memory per parameter is unchanged: bf16 and fp16 are both 2 bytes.
Bf16Training::Bf16Training(const GPTConfig& config, const AdamWConfig& adamw, int batch_size, int sequence_length,
                           Device device, int shard_multiple)
    : stage03::MasterWeightsTraining(config, adamw, batch_size, sequence_length, DType::BF16, device, shard_multiple) {}

}  // namespace ladder::stage05
