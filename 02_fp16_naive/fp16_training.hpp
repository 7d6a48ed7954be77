/// @file fp16_training.hpp
/// @brief Stage 02's state: the fp32 baseline with every number stored in fp16, the update included.
#pragma once

#include "common/model/gpt.hpp"
#include "common/optim/adamw.hpp"
#include "common/train/update_diagnostics.hpp"

/// Stage 02: naive fp16.
namespace ladder::stage02 {

/// Bytes each parameter costs in this stage: 2 (weight) + 2 (gradient) + 4 (Adam's two moments, fp16).
inline constexpr int kBytesPerParameter = 2 + 2 + 4;

/// The model and its optimizer with everything in fp16: half the memory of stage 01, and the failures the
/// lecture warns of (updates smaller than half an ulp of the weight vanish, small gradients flush to zero).
struct Fp16Training {
  /// Allocates an fp16 GPT (weights, gradients, activations) for B×T batches and fp16 AdamW moments.
  Fp16Training(const GPTConfig& config, const AdamWConfig& adamw, int batch_size, int sequence_length,
               Device device = Device::CPU);

  GPT model;        ///< fp16 weights (2 B/param), fp16 gradients (2 B/param), fp16 activations
  AdamW optimizer;  ///< fp16 first and second moments (4 B/param); the update is rounded into fp16 weights
};

/// The diagnostics stage 02 introduced, kept under their old name for the stages that build on it.
using UpdateDiagnostics = ladder::UpdateDiagnostics;

}  // namespace ladder::stage02
