/// @file lora_run.hpp
/// @brief What stage 10's main does around its recipe: find a base, measure before and after, save, report.
#pragma once

#include "10_lora/lora_settings.hpp"
#include "10_lora/lora_training.hpp"
#include "common/train/experiment.hpp"
#include "common/train/training_log.hpp"
#include "common/train/training_state.hpp"

namespace ladder::stage10 {

/// Puts the trained base into `model`: --base's weights (refused, naming the field, when its shape differs), or,
/// without --base, a base trained first with stage 05's recipe (--base-steps of --base-data), said so on the console.
void prepare_base(GPT& model, const LoraOptions& lora, Experiment& experiment);

/// The held-out loss and accuracy of `model` as it is now, on the run's task, as of `step` training steps.
EvalMetrics evaluate(GPT& model, const Experiment& experiment, std::int64_t step);

/// Adds the base's held-out loss and accuracy (`before`, measured before the first step) to the training state, so
/// a resumed run reports them without the base it no longer has on its own (its adapters are restored with it).
void keep_base_evaluation(TrainingState& state, EvalMetrics& before);

/// --save: the adapters (fp32 master) and their adapter_config.json; --save-merged: the merged model, which stages
/// 01-05 load with --load. Call after merge().
void save_outputs(LoraTraining& training, const LoraOptions& lora, Experiment& experiment);

/// The closing lines: accuracy before and after (unmerged and merged), the trainable share, and the model state's
/// memory per category beside stage 05's for the same model.
void report(const LoraTraining& training, const EvalMetrics& before, const EvalMetrics& adapted,
            Experiment& experiment);

}  // namespace ladder::stage10
