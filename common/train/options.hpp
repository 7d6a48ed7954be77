/// @file options.hpp
/// @brief Command-line options shared by every stage, parsed with CLI11 and validated.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>

namespace CLI {
class App;
}

namespace ladder {

/// Everything a stage's command line can set. Defaults are the CPU defaults of the README.
struct TrainOptions {
  std::string stage;                  ///< executable name, e.g. "01_fp32_baseline"
  // Model
  std::string model_name = "small";   ///< --model: tiny | small | gpt2-124m
  int layer_count = 0;                ///< --layers: override L (0 keeps the named config's)
  int head_count = 0;                 ///< --heads: override H
  int channels = 0;                   ///< --channels: override C
  int max_sequence_length = 0;        ///< --context: override the model's max T
  // Data
  std::string data = "addition";      ///< --data: addition | subtraction | text:PATH | tokens:PATH ("{rank}" in PATH: the rank)
  int batch_size = 64;                ///< --batch-size: B rows per rank
  int sequence_length = 0;            ///< --seq-len: T per row (0: the data's preferred length, else the context)
  // Optimisation
  std::int64_t steps = 1000;          ///< --steps (0: load, evaluate and report, no training)
  double learning_rate = 1e-3;        ///< --lr: peak learning rate (3e-3 stalls on some seeds)
  double min_learning_rate_ratio = 0.1;  ///< --lr-min-ratio: cosine decays to lr·ratio
  std::int64_t warmup_steps = 20;     ///< --warmup: linear warm-up steps
  double weight_decay = 0.1;          ///< --weight-decay (matrices and embeddings only)
  double beta1 = 0.9;                 ///< --beta1
  double beta2 = 0.95;                ///< --beta2
  double epsilon = 1e-8;              ///< --eps
  double gradient_clip = 1.0;         ///< --grad-clip: max global norm (0 disables)
  std::uint64_t seed = 1337;          ///< --seed: weights and data
  // Reporting
  std::int64_t log_every = 50;        ///< --log-every: console line every N steps
  std::int64_t eval_every = 250;      ///< --eval-every: held-out evaluation every N steps (0: only at the end)
  int eval_batches = 8;               ///< --eval-batches: held-out batches for the held-out loss
  int eval_problems = 256;            ///< --eval-problems: held-out problems for exact-match accuracy
  std::string metrics_path;           ///< --metrics: JSONL file, one line per step and evaluation
  // Checkpoints and sampling
  std::string checkpoint_out;         ///< --save: write a checkpoint here at the end
  std::string init_from;              ///< --load: start from this checkpoint's weights
  int sample_count = 4;               ///< --samples: problems (or text samples) to show at the end
  int sample_tokens = 64;             ///< --sample-tokens: tokens to generate per text sample
  std::string prompt;                 ///< --prompt: text to continue when sampling
  // Checkpoints of the whole training state (stopping and resuming)
  std::string checkpoint_dir;         ///< --checkpoint-dir: where the training state is written (--resume's, if not given)
  std::int64_t checkpoint_every = 0;  ///< --checkpoint-every: a checkpoint every K steps (0: only at the end or the stop)
  int keep_checkpoints = 2;           ///< --keep: how many of the newest checkpoints stay in the folder
  std::int64_t stop_at_step = 0;      ///< --stop-at-step: end after this step of the --steps schedule (0: at the end)
  std::string resume_dir;             ///< --resume: continue from the newest complete checkpoint in this folder
  std::int64_t debug_pause_checkpoint = 0;  ///< --debug-pause-checkpoint: stall halfway through writing this step's
                                            ///< checkpoint, so a test can kill the run mid-write (0: never)
  std::map<std::string, std::string> flag_values;  ///< every flag's value, given or default ("--lr" -> "0.001")
  // Execution
  std::string device = "auto";        ///< --device: auto (cuda where a GPU is visible, else cpu) | cpu | cuda | meta
  bool tf32 = false;                  ///< --tf32: let fp32 GEMMs on the GPU use TF32 tensor cores
  int threads = 0;                    ///< --threads: BLAS threads (0: all cores)
};

/// Registers a stage's own flags (e.g. stage 04's loss-scaler settings) on the parser before it runs.
using StageFlags = std::function<void(CLI::App&)>;

/// Parses argv into options, validating every value. --help prints usage and throws EarlyExit(0);
/// an unknown flag or bad value throws LadderError naming it. `stage_flags` adds the stage's own flags;
/// `defaults` are the values of flags not given (a stage may change some, as stage 10 trains on subtraction).
TrainOptions parse_options(int argc, char** argv, const std::string& stage, const std::string& description,
                           const StageFlags& stage_flags = {}, const TrainOptions& defaults = {});

/// Throws LadderError naming `flag` unless `path` (empty: none) can be written at the end of the run: not a folder,
/// and in a folder that exists. Stages check their own output flags with it.
void require_writable_location(const char* flag, const std::string& path);

/// Thrown to leave main() early with an exit code but no error (e.g. after --help).
struct EarlyExit {
  int code = 0;  ///< process exit code
};

}  // namespace ladder
