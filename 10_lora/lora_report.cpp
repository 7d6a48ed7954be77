// The end of a stage 10 run: its files, and the numbers that say what LoRA bought.
#include <iomanip>
#include <sstream>

#include "10_lora/lora_checkpoint.hpp"
#include "10_lora/lora_run.hpp"
#include "common/train/model_checkpoint.hpp"

namespace ladder::stage10 {

namespace {

std::string percent(const EvalMetrics& metrics) {
  std::ostringstream text;
  text << std::fixed << std::setprecision(1) << 100 * metrics.accuracy.value_or(0) << "%";
  return text.str();
}

std::string with_separators(std::int64_t value) {
  const std::string digits = std::to_string(value);
  std::string text;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) text += ',';
    text += digits[i];
  }
  return text;
}

}  // namespace

void save_outputs(LoraTraining& training, const LoraOptions& lora, Experiment& experiment) {
  const TrainOptions& run = experiment.options();
  if (!lora.adapters_out.empty()) {
    save_adapters(lora.adapters_out, training.adapters, training.master.weights(), training.model.config());
    experiment.log().info("10_lora | adapters written to " + lora.adapters_out + " and " +
                          adapter_config_path(lora.adapters_out));
  }
  if (!lora.merged_path.empty()) {
    save_model_checkpoint(lora.merged_path, training.model,
                          {{"stage", "10_lora"}, {"steps", std::to_string(run.steps)}, {"data", run.data},
                           {"seed", std::to_string(run.seed)}, {"lora", "merged: W0 + (alpha/r)·B·A"}});
    experiment.log().info("10_lora | merged model written to " + lora.merged_path + " (stages 01-05 --load it)");
  }
}

void report(const LoraTraining& training, const EvalMetrics& before, const EvalMetrics& adapted,
            Experiment& experiment) {
  TrainingLog& log = experiment.log();
  const EvalMetrics& merged = experiment.last_eval();
  const LoraSettings& settings = training.adapters.settings();
  std::ostringstream line;
  line << std::fixed << std::setprecision(4) << "10_lora | held-out on " << experiment.options().data << ": accuracy "
       << percent(before) << " before (the base) -> " << percent(merged) << " after (" << percent(adapted)
       << " before merging); loss " << before.loss << " -> " << merged.loss << " (" << adapted.loss << ")";
  log.info(line.str());

  const std::int64_t base = training.model.layout().parameter_count();
  const std::int64_t trainable = training.adapters.parameter_count();
  std::string targets;
  for (const std::string& name : settings.targets) targets += (targets.empty() ? "" : ",") + name;
  line.str("");
  line << std::setprecision(2) << "10_lora | trainable: " << with_separators(trainable) << " parameters, "
       << 100.0 * static_cast<double>(trainable) / static_cast<double>(base) << "% of the base's "
       << with_separators(base) << " (A and B on " << targets << " of " << training.model.config().layer_count
       << " layers, r = " << settings.rank << ", alpha = " << settings.effective_alpha() << ")";
  log.info(line.str());

  // Stage 05 fine-tunes every weight of the same model: 2 + 2 + 4 + 8 bytes per parameter of its padded layout.
  const std::int64_t padded = training.model.layout().padded_size();
  const MemoryCategory categories[] = {MemoryCategory::Parameters, MemoryCategory::Gradients,
                                       MemoryCategory::MasterWeights, MemoryCategory::OptimizerState};
  const std::int64_t stage05_bytes[] = {2 * padded, 2 * padded, 4 * padded, 8 * padded};
  line.str("");
  line << "10_lora | model state against stage 05 fine-tuning every weight of the same model:\n"
       << std::left << std::setw(18) << "category" << std::right << std::setw(13) << "10_lora" << std::setw(13)
       << "05_bf16" << "\n";
  std::int64_t ours_total = 0, theirs_total = 0;
  for (int i = 0; i < 4; ++i) {
    const std::int64_t ours = memory_accountant().usage(training.model.device(), categories[i]).current;
    ours_total += ours;
    theirs_total += stage05_bytes[i];
    line << std::left << std::setw(18) << category_name(categories[i]) << std::right << std::setw(13)
         << format_bytes(ours) << std::setw(13) << format_bytes(stage05_bytes[i]) << "\n";
  }
  line << std::left << std::setw(18) << "total" << std::right << std::setw(13) << format_bytes(ours_total)
       << std::setw(13) << format_bytes(theirs_total) << "   (" << std::setprecision(1)
       << static_cast<double>(theirs_total) / static_cast<double>(ours_total) << "x less)";
  log.info(line.str());
}

}  // namespace ladder::stage10
