/// @file bf16_training.hpp
/// @brief Stage 05's state: stage 03's mixed precision with bf16 as the working type, and therefore no loss scaler.
#pragma once

#include "03_master_weights/master_weights.hpp"
#include "common/model/gpt.hpp"
#include "common/optim/adamw.hpp"

/// Stage 05: bf16 mixed precision.
namespace ladder::stage05 {

/// Bytes each parameter costs: 2 (bf16 weight) + 2 (bf16 gradient) + 4 (fp32 master) + 8 (fp32 moments), as in 03/04.
inline constexpr int kBytesPerParameter = 2 + 2 + 4 + 4 + 4;

/// Largest relative error of rounding one value to bf16 (round to nearest even, 8 significant bits): 2^-8.
inline constexpr double kBf16UnitRoundoff = 1.0 / 256;

/// Stage 03's recipe (fp32 master weights, reduced-precision forward and backward, fp32 AdamW) built with bf16
/// instead of fp16. No loss scaler is needed, which is the whole point of the stage:
///
/// - bf16 keeps fp32's 8 exponent bits, so it spans the same range (about 1e-38 to 3.4e38; subnormals to 9e-41).
///   Gradients that fall below fp16's smallest subnormal (6e-8) and flush to zero stay representable, and
///   activations or gradients above fp16's largest value (65504) stay finite instead of becoming inf.
///   Stage 04's scaler only exists to move values into fp16's narrow range; with bf16 there is nothing to move.
/// - What bf16 gives up is precision: 8 significant bits (7 stored + 1 implicit) against fp16's 11 and fp32's 24,
///   so a stored value is only good to about 2-3 decimal digits (relative error up to 2^-8 ≈ 0.4%). The fp32 master
///   weights are what makes that affordable: the update is still computed and accumulated in fp32, and only the
///   working copy the forward and backward read is rounded to bf16.
struct Bf16Training : stage03::MasterWeightsTraining {
  /// Allocates a bf16 GPT (weights, gradients, activations) for B×T batches, its fp32 master copy and fp32 moments;
  /// `shard_multiple` pads the layout's units to split over that many ranks (stage 06 passes its world size).
  Bf16Training(const GPTConfig& config, const AdamWConfig& adamw, int batch_size, int sequence_length,
               Device device = Device::CPU, int shard_multiple = 1);
};

}  // namespace ladder::stage05
