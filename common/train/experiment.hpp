/// @file experiment.hpp
/// @brief What every stage sets up and reports the same way, so that a stage's main.cpp shows only its technique.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/comm/communicator.hpp"
#include "common/data/data_source.hpp"
#include "common/model/gpt.hpp"
#include "common/optim/adamw.hpp"
#include "common/optim/learning_rate.hpp"
#include "common/train/options.hpp"
#include "common/train/training_log.hpp"
#include "common/train/training_state.hpp"

namespace ladder {

class RunCheckpoints;

/// Wall time of one step, started at construction.
class Stopwatch {
 public:
  Stopwatch() : start_(std::chrono::steady_clock::now()) {}
  /// Seconds since construction.
  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  std::chrono::steady_clock::time_point start_;
};

/// A run of one stage: its options, data, model shape, schedule, log, evaluation and final report.
class Experiment {
 public:
  /// Builds the data source (this rank's slice) and the model config from options; prints the run's header.
  explicit Experiment(TrainOptions options, int rank = 0, int world = 1);
  ~Experiment();

  /// The parsed options.
  const TrainOptions& options() const { return options_; }
  /// Where the model trains: --device, with auto resolved (cuda where a GPU is visible, else cpu).
  Device device() const { return device_; }
  /// This rank's data.
  const DataSource& data() const { return *data_; }
  /// The model shape: the named config, the overrides, and the data's vocabulary.
  const GPTConfig& model_config() const { return model_config_; }
  /// Tokens per row this run trains on.
  int sequence_length() const { return sequence_length_; }
  /// AdamW settings from the options.
  AdamWConfig adamw_config() const;
  /// The learning rate of 0-based step `step`.
  double learning_rate(std::int64_t step) const { return schedule_.at(step); }

  /// Initialises `model` from the seed, or loads --load's checkpoint into it.
  void initialize(GPT& model) const;
  /// The same, one unit at a time, for a model whose weights a stage keeps sharded (FSDP): `lend(unit)` must attach
  /// storage for the unit's weights, which are then set from the seed or --load, and `keep(unit)` takes the stage's
  /// share of them before the storage goes back. Units are done in order, so every rank makes the same calls.
  void initialize_by_unit(GPT& model, const std::function<void(int)>& lend, const std::function<void(int)>& keep) const;
  /// Takes the stage's training state, for the checkpoints record_step writes (--checkpoint-dir), and under --resume
  /// overwrites it with the newest checkpoint's. Call once every object of the state exists, before the first step.
  /// Stages with several ranks pass their communicator: every rank calls it.
  void resume(TrainingState& state, Communicator& communicator);
  /// The same for a stage of one process.
  void resume(TrainingState& state);
  /// The 0-based step the training loop starts at: the resumed checkpoint's step count, else 0.
  std::int64_t first_step() const;
  /// The step the training loop ends before: --stop-at-step, else --steps.
  std::int64_t end_step() const;
  /// True when --resume restored a checkpoint into the training state (what the stage set up before is replaced).
  bool resuming() const;
  /// True when the loop stopped before --steps (--stop-at-step): the end of the run (evaluation, --save) is to come.
  bool stopped_early() const { return end_step() < options_.steps; }
  /// Records one finished step (0-based `step`) and evaluates when due. `extras` are stage-specific numbers for the
  /// console line and the metrics file; `records` go to the metrics file only. Writes a checkpoint when one is due.
  void record_step(GPT& model, std::int64_t step, double loss, double learning_rate, double gradient_norm,
                   double step_seconds, std::vector<std::pair<std::string, double>> extras = {},
                   std::vector<std::pair<std::string, double>> records = {});
  /// Final evaluation, sample answers, checkpoint (--save) and the memory table; a run stopped by --stop-at-step
  /// says how to resume it and leaves the final evaluation, samples and --save to the run that reaches the end.
  void finish(GPT& model);
  /// The log, for stages that print more.
  TrainingLog& log() { return *log_; }
  /// The last held-out evaluation (after finish(): the final one).
  const EvalMetrics& last_eval() const { return last_eval_; }

 private:
  void evaluate(GPT& model, std::int64_t steps_done);

  TrainOptions options_;
  Device device_ = Device::CPU;
  int rank_;
  int world_;
  std::unique_ptr<DataSource> data_;
  GPTConfig model_config_;
  int sequence_length_ = 0;
  LearningRateSchedule schedule_;
  std::unique_ptr<TrainingLog> log_;
  EvalMetrics last_eval_;
  std::int64_t last_eval_step_ = -1;
  std::unique_ptr<RunCheckpoints> checkpoints_;
  std::unique_ptr<Communicator> own_communicator_;  // the one-rank communicator of resume(state)
};

}  // namespace ladder
