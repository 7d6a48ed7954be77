#include "common/train/options.hpp"

#include <CLI/CLI.hpp>

#include <charconv>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <iostream>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "common/error.hpp"
#include "common/train/atomic_file.hpp"
#include "common/train/checkpoint_options.hpp"

namespace ladder {
namespace {

/// Throws "<flag> <value>: expected <expectation>" unless `holds`; every range check below reads as one line.
template <class Value>
void require(bool holds, const char* flag, const Value& value, const char* expectation) {
  LADDER_CHECK(holds, flag, " ", value, ": expected ", expectation);
}

/// Range checks alone would let infinity through (and read oddly for NaN), so real-valued flags must be finite.
void require_finite(const char* flag, double value) {
  require(std::isfinite(value), flag, value, "a finite number");
}

void validate(const TrainOptions& options) {
  require(options.layer_count >= 0, "--layers", options.layer_count, "an integer >= 0 (0 keeps the model's)");
  require(options.head_count >= 0, "--heads", options.head_count, "an integer >= 0 (0 keeps the model's)");
  require(options.channels >= 0, "--channels", options.channels, "an integer >= 0 (0 keeps the model's)");
  require(options.max_sequence_length >= 0, "--context", options.max_sequence_length,
          "an integer >= 0 (0 keeps the model's)");

  require(!options.data.empty(), "--data", "''", "addition, subtraction, text:PATH or tokens:PATH");
  require(options.batch_size >= 1, "--batch-size", options.batch_size, "an integer >= 1");
  require(options.sequence_length >= 0, "--seq-len", options.sequence_length,
          "an integer >= 0 (0 uses the model's context)");

  require(options.steps >= 0, "--steps", options.steps, "an integer >= 0 (0 only evaluates, e.g. a --load)");
  require_finite("--lr", options.learning_rate);
  require(options.learning_rate > 0, "--lr", options.learning_rate, "a number > 0");
  require(options.min_learning_rate_ratio >= 0 && options.min_learning_rate_ratio <= 1, "--lr-min-ratio",
          options.min_learning_rate_ratio, "a number in [0, 1]");
  require(options.warmup_steps >= 0, "--warmup", options.warmup_steps, "an integer >= 0");
  require_finite("--weight-decay", options.weight_decay);
  require(options.weight_decay >= 0, "--weight-decay", options.weight_decay, "a number >= 0");
  require(options.beta1 >= 0 && options.beta1 < 1, "--beta1", options.beta1, "a number in [0, 1)");
  require(options.beta2 >= 0 && options.beta2 < 1, "--beta2", options.beta2, "a number in [0, 1)");
  require_finite("--eps", options.epsilon);
  require(options.epsilon > 0, "--eps", options.epsilon, "a number > 0");
  require_finite("--grad-clip", options.gradient_clip);
  require(options.gradient_clip >= 0, "--grad-clip", options.gradient_clip, "a number >= 0 (0 disables clipping)");

  require(options.log_every >= 1, "--log-every", options.log_every, "an integer >= 1");
  require(options.eval_every >= 0, "--eval-every", options.eval_every,
          "an integer >= 0 (0 evaluates only at the end)");
  require(options.eval_batches >= 1, "--eval-batches", options.eval_batches, "an integer >= 1");
  require(options.eval_problems >= 0, "--eval-problems", options.eval_problems, "an integer >= 0");
  require_writable_location("--metrics", options.metrics_path);

  require_writable_location("--save", options.checkpoint_out);
  if (!options.checkpoint_out.empty()) require_replaceable_file(options.checkpoint_out, "--save");
  if (!options.init_from.empty()) {
    LADDER_CHECK(std::filesystem::exists(options.init_from), "--load ", options.init_from,
                 ": the file does not exist");
    LADDER_CHECK(std::filesystem::is_regular_file(options.init_from), "--load ", options.init_from,
                 ": is not a regular file; expected a safetensors checkpoint");
  }
  require(options.sample_count >= 0, "--samples", options.sample_count, "an integer >= 0");
  require(options.sample_tokens >= 0, "--sample-tokens", options.sample_tokens, "an integer >= 0");

  LADDER_CHECK(options.device == "auto" || options.device == "cpu" || options.device == "cuda" ||
                   options.device == "meta",
               "--device ", options.device, ": expected auto, cpu, cuda or meta");
  require(options.threads >= 0, "--threads", options.threads, "an integer >= 0 (0 uses all cores)");
}

/// CLI11 2.1 saturates an out-of-range 64-bit integer and wraps "-1" into an unsigned flag without complaint,
/// so these flags are checked on their text first: such a typo is reported instead of silently changed.
template <class Integer>
CLI::Validator representable() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        const auto first = text.find_first_not_of(" \t");
        if (first == std::string::npos) return {};
        if (std::is_unsigned_v<Integer> && text[first] == '-') return text + ": expected an integer >= 0";
        const char* begin = text.data() + first + (text[first] == '+' ? 1 : 0);
        Integer parsed{};
        if (std::from_chars(begin, text.data() + text.size(), parsed).ec == std::errc::result_out_of_range) {
          return text + ": out of range, expected at most " + std::to_string(std::numeric_limits<Integer>::max());
        }
        return {};  // anything else unparsable is left to CLI11's own conversion error
      },
      "");
}

}  // namespace

// An output file is only written at the end of a run: catching a missing folder now saves the whole run.
void require_writable_location(const char* flag, const std::string& path) {
  if (path.empty()) return;
  const std::filesystem::path file(path);
  LADDER_CHECK(!std::filesystem::is_directory(file), flag, " ", path, ": is a folder; expected a file path");
  const std::filesystem::path folder = file.parent_path();
  if (folder.empty()) return;  // a bare file name lands in the current folder, which exists
  LADDER_CHECK(std::filesystem::is_directory(folder), flag, " ", path, ": the folder '", folder.string(),
               "' does not exist; create it first");
}

TrainOptions parse_options(int argc, char** argv, const std::string& stage, const std::string& description,
                           const StageFlags& stage_flags, const TrainOptions& defaults) {
  TrainOptions options = defaults;
  options.stage = stage;

  CLI::App app{description, stage};
  // Every flag shows its default in --help: the defaults are part of what a student reads.
  app.option_defaults()->always_capture_default();

  app.add_option("--model", options.model_name, "Named model config")
      ->check(CLI::IsMember({"tiny", "small", "gpt2-124m"}))
      ->group("Model");
  app.add_option("--layers", options.layer_count, "Override the number of layers L (0 keeps the config's)")
      ->group("Model");
  app.add_option("--heads", options.head_count, "Override the number of heads H (0 keeps the config's)")
      ->group("Model");
  app.add_option("--channels", options.channels, "Override the width C (0 keeps the config's)")->group("Model");
  app.add_option("--context", options.max_sequence_length, "Override the maximum sequence length (0 keeps it)")
      ->group("Model");

  app.add_option("--data", options.data, "addition | subtraction | text:PATH | tokens:PATH")->group("Data");
  app.add_option("--batch-size", options.batch_size, "Rows per rank per step (B)")->group("Data");
  app.add_option("--seq-len", options.sequence_length, "Tokens per row (T; 0: the data's preferred length, else the model's context)")
      ->group("Data");

  app.add_option("--steps", options.steps, "Training steps (0: evaluate the --load weights and report)")
      ->check(representable<std::int64_t>())
      ->group("Optimisation");
  app.add_option("--lr", options.learning_rate, "Peak learning rate")->group("Optimisation");
  app.add_option("--lr-min-ratio", options.min_learning_rate_ratio, "Cosine decay ends at lr x this ratio")
      ->group("Optimisation");
  app.add_option("--warmup", options.warmup_steps, "Linear warm-up steps")
      ->check(representable<std::int64_t>())
      ->group("Optimisation");
  app.add_option("--weight-decay", options.weight_decay, "AdamW weight decay (matrices and embeddings)")
      ->group("Optimisation");
  app.add_option("--beta1", options.beta1, "AdamW first-moment decay")->group("Optimisation");
  app.add_option("--beta2", options.beta2, "AdamW second-moment decay")->group("Optimisation");
  app.add_option("--eps", options.epsilon, "AdamW epsilon")->group("Optimisation");
  app.add_option("--grad-clip", options.gradient_clip, "Maximum global gradient norm (0 disables)")
      ->group("Optimisation");
  app.add_option("--seed", options.seed, "Seed for the weights and the data")
      ->check(representable<std::uint64_t>())
      ->group("Optimisation");

  app.add_option("--log-every", options.log_every, "Console line every N steps")
      ->check(representable<std::int64_t>())
      ->group("Reporting");
  app.add_option("--eval-every", options.eval_every, "Held-out evaluation every N steps (0: only at the end)")
      ->check(representable<std::int64_t>())
      ->group("Reporting");
  app.add_option("--eval-batches", options.eval_batches, "Held-out batches for the held-out loss")
      ->group("Reporting");
  app.add_option("--eval-problems", options.eval_problems, "Held-out problems for exact-match accuracy")
      ->group("Reporting");
  app.add_option("--metrics", options.metrics_path, "JSONL file: one line per step and evaluation")
      ->group("Reporting");

  app.add_option("--save", options.checkpoint_out, "Write a safetensors checkpoint here at the end")
      ->group("Checkpoints and sampling");
  app.add_option("--load", options.init_from, "Start from this safetensors checkpoint's weights")
      ->group("Checkpoints and sampling");
  app.add_option("--samples", options.sample_count, "Problems (or text samples) to show at the end")
      ->group("Checkpoints and sampling");
  app.add_option("--sample-tokens", options.sample_tokens, "Tokens to generate per text sample")
      ->group("Checkpoints and sampling");
  app.add_option("--prompt", options.prompt, "Text to continue when sampling")
      ->group("Checkpoints and sampling");

  add_checkpoint_flags(app, options);

  app.add_option("--device", options.device,
                 "Where to run: auto (cuda where a GPU is visible), cpu, cuda, or meta (plan memory: no arithmetic)")
      ->group("Execution");
  app.add_flag("--tf32", options.tf32, "Let fp32 GEMMs on the GPU use TF32 tensor cores (default: true fp32)")
      ->group("Execution");
  app.add_option("--threads", options.threads, "BLAS threads (0: all cores)")->group("Execution");
  if (stage_flags) stage_flags(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::cout << app.help() << std::flush;
    throw EarlyExit{0};
  } catch (const CLI::ParseError& error) {
    throw LadderError(std::string(error.what()) + " (run with --help for the list of flags)");
  }
  validate(options);
  validate_checkpoint_options(options);
  options.flag_values = flag_values_of(app);
  return options;
}

}  // namespace ladder
