/// @file lora_settings.hpp
/// @brief What LoRA adapts and how: the targets by the names of the paper and PEFT, the rank, α and dropout.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/model/gpt_config.hpp"
#include "common/model/linear_adapter.hpp"
#include "common/train/options.hpp"

/// Stage 10: LoRA on a frozen bf16 base.
namespace ladder::stage10 {

/// A weight matrix LoRA may adapt, named as the LoRA paper (Wq, Wk, Wv, Wo) and PEFT's target_modules name it.
struct LoraTarget {
  std::string name;    ///< the --lora-targets name: q, k, v, o, fc or proj
  BlockLinear linear;  ///< the block linear that holds it
  int row_block = -1;  ///< q, k, v: which C-row block of the fused QKV weight (0, 1, 2); -1: the whole matrix
  std::string module;  ///< its module path inside a block, as the PEFT reference model names it ("attn.q")
};

/// The six targets in block order: q, k, v, o, fc, proj.
const std::vector<LoraTarget>& lora_targets();

/// The adapter's hyper-parameters, with PEFT's defaults where PEFT has one.
struct LoraSettings {
  std::vector<std::string> targets = {"q", "v"};  ///< --lora-targets (the paper's best pair; see the README)
  int rank = 8;                                   ///< --lora-rank r
  double alpha = 0;                               ///< --lora-alpha α; 0 means α = r (scaling 1)
  double dropout = 0;                             ///< --lora-dropout: on the adapter's input, in training only
  /// α/r, the factor of B·A in W0 + (α/r)·B·A.
  double scaling() const;
  /// α as used (r when --lora-alpha was left at 0).
  double effective_alpha() const;
};

/// The targets of `text` ("q,v"), in the order given. Throws LadderError naming an unknown or repeated target.
std::vector<std::string> parse_targets(const std::string& text);

/// Throws LadderError naming the flag and value unless every setting is possible for a model of shape `config`:
/// r >= 1 and at most min(d, k) of every adapted d×k block, α >= 0, dropout in [0, 1).
void validate(const LoraSettings& settings, const GPTConfig& config);

/// Stage 10's own flags besides the adapter's.
struct LoraOptions {
  LoraSettings lora;             ///< --lora-targets, --lora-rank, --lora-alpha, --lora-dropout
  std::string targets_text = "q,v";  ///< --lora-targets as typed (parsed into lora.targets)
  std::string base_path;         ///< --base: the trained model to adapt (any stage's --save)
  std::int64_t base_steps = 1000;  ///< --base-steps: without --base, stage 05 trains a base this long first
  std::string base_data = "addition";  ///< --base-data: and on this task
  std::string merged_path;       ///< --save-merged: W0 + (α/r)·B·A as a full checkpoint
  std::string adapters_out;      ///< --save: the adapters alone (taken from the common flag)
  std::string adapters_in;       ///< --load: adapters to start from (taken from the common flag)
};

/// Stage 10's defaults where they differ from the other stages': it adapts to subtraction (the base knows addition),
/// with a learning rate for adapters (1e-2).
TrainOptions lora_defaults();

/// Parses the command line with stage 10's flags and defaults. --save and --load name adapter files here, so they are
/// moved into `lora` (the experiment neither saves nor loads a whole model); everything is validated.
TrainOptions parse_lora_options(int argc, char** argv, LoraOptions& lora);


}  // namespace ladder::stage10
