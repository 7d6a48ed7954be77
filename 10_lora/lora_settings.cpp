#include "10_lora/lora_settings.hpp"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <sstream>
#include <utility>

#include "10_lora/lora_checkpoint.hpp"
#include "common/error.hpp"
#include "common/train/atomic_file.hpp"

namespace ladder::stage10 {

const std::vector<LoraTarget>& lora_targets() {
  static const std::vector<LoraTarget> targets = {
      {"q", BlockLinear::Qkv, 0, "attn.q"},
      {"k", BlockLinear::Qkv, 1, "attn.k"},
      {"v", BlockLinear::Qkv, 2, "attn.v"},
      {"o", BlockLinear::AttentionProjection, -1, "attn.o"},
      {"fc", BlockLinear::MlpFc, -1, "mlp.fc"},
      {"proj", BlockLinear::MlpProjection, -1, "mlp.proj"},
  };
  return targets;
}

double LoraSettings::effective_alpha() const { return alpha > 0 ? alpha : rank; }

double LoraSettings::scaling() const { return effective_alpha() / rank; }

std::vector<std::string> parse_targets(const std::string& text) {
  std::vector<std::string> targets;
  std::istringstream names(text);
  for (std::string name; std::getline(names, name, ',');) {
    // "q, v" reads as "q,v": spaces around a name are not part of it.
    name.erase(0, name.find_first_not_of(' '));
    name.erase(name.find_last_not_of(' ') + 1);
    const auto& known = lora_targets();
    const bool exists = std::any_of(known.begin(), known.end(), [&](const LoraTarget& t) { return t.name == name; });
    LADDER_CHECK(exists, "--lora-targets ", text, ": unknown target '", name,
                 "'; expected a comma-separated list of q, k, v, o, fc, proj");
    LADDER_CHECK(std::find(targets.begin(), targets.end(), name) == targets.end(), "--lora-targets ", text,
                 ": target '", name, "' is named twice");
    targets.push_back(name);
  }
  LADDER_CHECK(!targets.empty(), "--lora-targets '", text, "': expected at least one of q, k, v, o, fc, proj");
  return targets;
}

void validate(const LoraSettings& settings, const GPTConfig& config) {
  LADDER_CHECK(settings.rank >= 1, "--lora-rank ", settings.rank, ": expected an integer >= 1");
  LADDER_CHECK(std::isfinite(settings.alpha) && settings.alpha >= 0, "--lora-alpha ", settings.alpha,
               ": expected a number >= 0 (0: equal to the rank)");
  LADDER_CHECK(settings.dropout >= 0 && settings.dropout < 1, "--lora-dropout ", settings.dropout,
               ": expected a number in [0, 1)");
  // ΔW = B·A has rank at most min(d, k): a larger r only adds parameters that cannot add rank.
  const std::int64_t C = config.channels;
  for (const std::string& name : settings.targets) {
    const bool fc = name == "fc", proj = name == "proj";
    const std::int64_t rows = fc ? 4 * C : C, columns = proj ? 4 * C : C;
    LADDER_CHECK(settings.rank <= std::min(rows, columns), "--lora-rank ", settings.rank, " is larger than target '",
                 name, "' allows: its weight is ", rows, "x", columns, ", so r <= ", std::min(rows, columns));
  }
}

namespace {

StageFlags lora_flags(LoraOptions& options) {
  return [&options](CLI::App& app) {
    app.add_option("--lora-targets", options.targets_text, "Weights to adapt, comma-separated: q, k, v, o, fc, proj")
        ->group("LoRA");
    app.add_option("--lora-rank", options.lora.rank, "Rank r of each adapter B·A")->group("LoRA");
    app.add_option("--lora-alpha", options.lora.alpha, "alpha; the update is (alpha/r)·B·A (0: alpha = r)")
        ->group("LoRA");
    app.add_option("--lora-dropout", options.lora.dropout, "Dropout on the adapters' input, in training only")
        ->group("LoRA");
    app.add_option("--base", options.base_path, "Trained model to adapt: a safetensors checkpoint of any stage's --save")
        ->group("LoRA");
    app.add_option("--base-steps", options.base_steps, "Without --base: train a base with stage 05's recipe this long")
        ->group("LoRA");
    app.add_option("--base-data", options.base_data, "Without --base: the task that base learns")->group("LoRA");
    app.add_option("--save-merged", options.merged_path,
                   "Write W0 + (alpha/r)·B·A as a full checkpoint that stages 01-05 --load")
        ->group("LoRA");
  };
}

}  // namespace

TrainOptions lora_defaults() {
  TrainOptions defaults;
  defaults.data = "subtraction";  // the base learnt addition (05's default task): adapt it to a related one
  // Adapters want a larger step than full fine-tuning: B starts at zero and ΔW = (α/r)·B·A must grow from
  // nothing. On the small model q,v at r = 8 reached 100% held-out in 1000 steps at 1e-2, 28% in 300 steps at 1e-2
  // and 20% in 400 of 600 steps at 3e-2 (stage 05's 1e-3 is far too slow for them).
  defaults.learning_rate = 1e-2;
  return defaults;
}

TrainOptions parse_lora_options(int argc, char** argv, LoraOptions& options) {
  TrainOptions run = parse_options(argc, argv, "10_lora",
                                   "Stage 10: LoRA, low-rank adapters B·A trained on a frozen bf16 base, then merged. "
                                   "--save and --load name adapter files.",
                                   lora_flags(options), lora_defaults());
  options.adapters_out = std::exchange(run.checkpoint_out, "");
  options.adapters_in = std::exchange(run.init_from, "");
  options.lora.targets = parse_targets(options.targets_text);
  if (!options.base_path.empty()) {
    LADDER_CHECK(std::filesystem::is_regular_file(options.base_path), "--base ", options.base_path,
                 ": no such file; expected a safetensors checkpoint (e.g. 05_bf16 --save)");
  }
  LADDER_CHECK(options.base_steps >= 1, "--base-steps ", options.base_steps, ": expected an integer >= 1");
  require_writable_location("--save-merged", options.merged_path);
  // Both files are renamed into place: a device node or a pipe of that name would be replaced by a file.
  if (!options.merged_path.empty()) require_replaceable_file(options.merged_path, "--save-merged");
  if (!options.adapters_out.empty()) {
    require_replaceable_file(adapter_config_path(options.adapters_out), "--save (its adapter config)");
  }
  return run;
}

}  // namespace ladder::stage10
