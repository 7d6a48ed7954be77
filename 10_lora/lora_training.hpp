/// @file lora_training.hpp
/// @brief Stage 10's state: a frozen bf16 base, and adapters trained with stage 05's precision recipe.
#pragma once

#include <cstdint>
#include <string>

#include "03_master_weights/master_weights.hpp"
#include "10_lora/lora_adapters.hpp"
#include "common/model/gpt.hpp"
#include "common/optim/adamw.hpp"

namespace ladder::stage10 {

/// Bytes each base parameter costs: its bf16 weight, and nothing else (no gradient, master copy or moments).
inline constexpr int kBytesPerBaseParameter = 2;
/// Bytes each adapter parameter costs, stage 05's: 2 (bf16) + 2 (bf16 gradient) + 4 (fp32 master) + 8 (fp32 moments).
inline constexpr int kBytesPerAdapterParameter = 2 + 2 + 4 + 4 + 4;

/// The frozen base with adapters installed, the adapters' fp32 master copy and their AdamW. Only A and B train;
/// the base holds its weights and nothing else. Not copyable or movable: the model keeps a pointer to the adapters.
struct LoraTraining {
  /// A frozen GPT of `dtype` (bf16 in the stage) for B×T batches on `device`, its adapters initialised from `seed`,
  /// their fp32 master copy and fp32 moments.
  LoraTraining(const GPTConfig& config, const AdamWConfig& adamw, const LoraSettings& settings, std::uint64_t seed,
               int batch_size, int sequence_length, Device device = Device::CPU, DType dtype = DType::BF16);
  LoraTraining(const LoraTraining&) = delete;
  LoraTraining& operator=(const LoraTraining&) = delete;

  /// Stage 05's steps 4-6 on the adapters alone: clipped fp32 AdamW on the master, rounded into the working copy.
  /// Returns the adapters' gradient norm before clipping.
  double step(double learning_rate);
  /// Starts from the adapters in `path` (save_adapters' format): into the master, then rounded into the copy.
  void load(const std::string& path);
  /// W0 + (α/r)·B·A, from the fp32 master, into the base's weights; the adapters come off the model, which alone
  /// now computes the adapted function, as fast as the base.
  void merge();

  GPT model;                      ///< the base: bf16 weights (2 B/param), no gradients; the adapters installed
  LoraAdapters adapters;          ///< A and B: bf16 working copy (2 B/param) and gradients (2 B/param)
  stage03::MasterWeights master;  ///< their fp32 master copy (4 B/param); the base has none
  AdamW optimizer;                ///< fp32 moments of A and B (8 B/param); the base has none
};

}  // namespace ladder::stage10
