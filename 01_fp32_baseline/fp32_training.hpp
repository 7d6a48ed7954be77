/// @file fp32_training.hpp
/// @brief Stage 01's state: everything in fp32, which is what the later rungs learn to shrink.
#pragma once

#include "common/model/gpt.hpp"
#include "common/optim/adamw.hpp"

/// Stage 01: the fp32 baseline.
namespace ladder::stage01 {

/// Bytes each parameter costs in this stage: 4 (weight) + 4 (gradient) + 8 (Adam's two moments).
inline constexpr int kBytesPerParameter = 4 + 4 + 8;

/// The model and its optimizer, all in fp32: the reference every later stage is compared against.
struct Fp32Training {
  /// Allocates an fp32 GPT (weights and gradients) for B×T batches and fp32 AdamW moments, on `device`.
  Fp32Training(const GPTConfig& config, const AdamWConfig& adamw, int batch_size, int sequence_length,
               Device device = Device::CPU);

  GPT model;        ///< fp32 weights (4 B/param), fp32 gradients (4 B/param), fp32 activations
  AdamW optimizer;  ///< fp32 first and second moments (8 B/param)
};

}  // namespace ladder::stage01
