/// @file checkpoint_options.hpp
/// @brief The flags of resumable training (--checkpoint-dir, --checkpoint-every, --keep, --stop-at-step, --resume),
/// registered and checked apart from the other flags, which parse_options adds them to.
#pragma once

#include <map>
#include <string>

#include "common/train/options.hpp"

namespace ladder {

/// Registers the checkpoint flags on `app`, writing into `options`.
void add_checkpoint_flags(CLI::App& app, TrainOptions& options);

/// Checks the checkpoint flags once parsing is done (each error names the flag, the value and what was expected) and
/// fills in what follows from them: --resume DIR without --checkpoint-dir keeps writing checkpoints into DIR.
void validate_checkpoint_options(TrainOptions& options);

/// Every flag's value after parsing, given or default, keyed by its long name ("--lr" -> "0.001"): what a checkpoint
/// records of the run that wrote it, so that a resume with other settings is refused by name.
std::map<std::string, std::string> flag_values_of(const CLI::App& app);

}  // namespace ladder
