#include "common/train/experiment.hpp"

#include <algorithm>
#include <iomanip>
#include <sstream>

#include "common/comm/local_communicator.hpp"
#include "common/error.hpp"
#include "common/model/generate.hpp"
#include "common/ops/device_dispatch.hpp"
#include "common/ops/ops.hpp"
#include "common/train/evaluation.hpp"
#include "common/train/metrics_continuation.hpp"
#include "common/train/model_checkpoint.hpp"
#include "common/train/run_checkpoints.hpp"

namespace ladder {

namespace {

GPTConfig resolve_config(const TrainOptions& options, int vocab_size) {
  GPTConfig config = named_config(options.model_name, vocab_size);
  if (options.layer_count > 0) config.layer_count = options.layer_count;
  if (options.head_count > 0) config.head_count = options.head_count;
  if (options.channels > 0) config.channels = options.channels;
  if (options.max_sequence_length > 0) config.max_sequence_length = options.max_sequence_length;
  config.validate();
  return config;
}

int resolve_sequence_length(const TrainOptions& options) {
  // The data needs T before the model exists, so the named config's context is looked up by name here.
  const int context = options.max_sequence_length > 0 ? options.max_sequence_length
                                                      : named_config(options.model_name, 2).max_sequence_length;
  const int preferred = preferred_sequence_length(options.data);
  const int length = options.sequence_length > 0 ? options.sequence_length
                     : preferred > 0             ? std::min(preferred, context)
                                                 : context;
  LADDER_CHECK(length <= context, "--seq-len ", length, " is longer than the model's context of ", context,
               " (raise --context or lower --seq-len)");
  return length;
}

// --device: "auto" takes the GPU where one is visible; "cuda" without one is an error that says why.
Device resolve_device(const TrainOptions& options) {
  if (options.device == "meta") {
    LADDER_CHECK(!options.tf32, "--tf32 applies to GPU GEMMs, but --device is meta");
    LADDER_CHECK(options.checkpoint_out.empty(), "--save ", options.checkpoint_out,
                 ": the meta device holds no values to save (it only accounts memory)");
    LADDER_CHECK(options.checkpoint_dir.empty() && options.resume_dir.empty(),
                 "--checkpoint-dir and --resume: the meta device holds no training state (it only accounts memory)");
    return Device::Meta;
  }
  const bool gpu_visible = cuda_device_available();
  if (options.device == "cpu") {
    LADDER_CHECK(!options.tf32, "--tf32 applies to GPU GEMMs, but --device is cpu");
    return Device::CPU;
  }
  if (options.device == "cuda") {
    LADDER_CHECK(gpu_visible, "--device cuda: no CUDA GPU is visible",
                 ops::kCudaBuild ? " (cudaGetDeviceCount found none)" : " (this build of ladder has no CUDA)");
  }
  if (!gpu_visible) {
    LADDER_CHECK(!options.tf32, "--tf32 needs a GPU, and none is visible");
    return Device::CPU;
  }
  return Device::CUDA;
}

// "{rank}" in a data spec becomes the rank, so each rank can read a file of its own (text:shard_{rank}.txt).
std::string with_rank(std::string spec, int rank) {
  const std::string placeholder = "{rank}";
  for (auto at = spec.find(placeholder); at != std::string::npos; at = spec.find(placeholder)) {
    spec.replace(at, placeholder.size(), std::to_string(rank));
  }
  return spec;
}

}  // namespace

Experiment::Experiment(TrainOptions options, int rank, int world)
    : options_(std::move(options)), device_(resolve_device(options_)), rank_(rank), world_(world) {
  ops::set_cpu_threads(options_.threads);
  if (device_ == Device::CUDA) ops::set_tf32(options_.tf32);
  sequence_length_ = resolve_sequence_length(options_);
  DataSlice slice{rank, world, options_.batch_size, sequence_length_};
  data_ = make_data_source(with_rank(options_.data, rank), slice, options_.seed);
  model_config_ = resolve_config(options_, data_->vocab_size());
  schedule_ = {options_.learning_rate, options_.min_learning_rate_ratio, options_.warmup_steps, options_.steps};
  checkpoints_ = std::make_unique<RunCheckpoints>(options_, run_identity(options_, model_config_, world), device_);
  // Rank 0 speaks for the job: it alone prints and writes the metrics file (continued, when resuming).
  const bool continue_metrics =
      rank == 0 && checkpoints_->resuming() && continue_metrics_after(options_.metrics_path, first_step());
  log_ = std::make_unique<TrainingLog>(options_.stage, options_.steps, options_.log_every,
                                       rank == 0 ? options_.metrics_path : std::string(), rank == 0, continue_metrics);
  log_->info(options_.stage + " | model " + model_config_.describe());
  log_->info(options_.stage + " | data " + data_->describe());
  std::ostringstream line;
  line << options_.stage << " | device " << device_name(device_) << (options_.tf32 ? " (TF32 GEMMs)" : "")
       << (device_ == Device::Meta ? " (a plan: memory accounted, no arithmetic)" : "") << ", batch " << options_.batch_size * world << "x" << sequence_length_ << " tokens, "
       << options_.steps << " steps, lr " << options_.learning_rate << ", seed " << options_.seed;
  log_->info(line.str());
  if (checkpoints_->resuming()) log_->info(options_.stage + " | " + checkpoints_->describe_resume());
  if (device_ == Device::CPU) log_->info(options_.stage + " | cpu gemm: " + ops::cpu_gemm_description());
}

Experiment::~Experiment() = default;

void Experiment::resume(TrainingState& state, Communicator& communicator) {
  const Stopwatch stopwatch;
  checkpoints_->attach(state, communicator);
  if (!checkpoints_->resuming()) return;
  std::ostringstream line;
  line << options_.stage << " | training state restored in " << std::fixed << std::setprecision(2)
       << stopwatch.seconds() << "s";
  log_->info(line.str());
}

void Experiment::resume(TrainingState& state) {
  LADDER_CHECK(world_ == 1, "Experiment::resume: a run of ", world_, " ranks must pass its communicator");
  own_communicator_ = std::make_unique<LocalCommunicator>();
  resume(state, *own_communicator_);
}

std::int64_t Experiment::first_step() const { return checkpoints_->first_step(); }

bool Experiment::resuming() const { return checkpoints_->resuming(); }

std::int64_t Experiment::end_step() const { return checkpoints_->end_step(); }

AdamWConfig Experiment::adamw_config() const {
  return {options_.beta1, options_.beta2, options_.epsilon, options_.weight_decay, options_.gradient_clip};
}

void Experiment::initialize(GPT& model) const {
  initialize_by_unit(model, [](int) {}, [](int) {});
}

void Experiment::initialize_by_unit(GPT& model, const std::function<void(int)>& lend,
                                    const std::function<void(int)>& keep) const {
  std::unique_ptr<ModelCheckpointReader> checkpoint;
  if (!options_.init_from.empty()) checkpoint = std::make_unique<ModelCheckpointReader>(options_.init_from, model.config());
  for (int unit = 0; unit < model.unit_count(); ++unit) {
    lend(unit);
    if (checkpoint) checkpoint->read_unit(model, unit);
    else model.initialize_unit(options_.seed, unit);
    keep(unit);
  }
  if (checkpoint) log_->info(options_.stage + " | weights loaded from " + options_.init_from);
}

void Experiment::record_step(GPT& model, std::int64_t step, double loss, double learning_rate, double gradient_norm,
                             double step_seconds, std::vector<std::pair<std::string, double>> extras,
                             std::vector<std::pair<std::string, double>> records) {
  StepMetrics metrics;
  metrics.step = step + 1;
  metrics.loss = loss;
  metrics.learning_rate = learning_rate;
  metrics.gradient_norm = gradient_norm;
  metrics.tokens = std::int64_t{options_.batch_size} * world_ * sequence_length_;
  metrics.step_seconds = step_seconds;
  metrics.extras = std::move(extras);
  metrics.records = std::move(records);
  log_->log_step(metrics);
  const std::int64_t done = step + 1;
  const bool due = options_.eval_every > 0 && done % options_.eval_every == 0 && done < options_.steps;
  if (due && device_ != Device::Meta) evaluate(model, done);  // a plan has no values to evaluate
  checkpoints_->after_step(done, *log_);
}

void Experiment::evaluate(GPT& model, std::int64_t steps_done) {
  last_eval_ = held_out_metrics(model, *data_, options_.eval_batches, options_.eval_problems, steps_done);
  log_->log_eval(last_eval_);
  last_eval_step_ = steps_done;
}

void Experiment::finish(GPT& model) {
  const bool planned = device_ == Device::Meta;
  if (planned || stopped_early()) {
    if (planned) {
      log_->info(options_.stage + " | meta device: memory planned, no arithmetic done, so nothing to evaluate");
    } else {
      // Stopped like a job at its time limit: the end of the run (final evaluation, samples, --save) is to come.
      log_->info(options_.stage + " | stopped after step " + std::to_string(end_step()) + " of " +
                 std::to_string(options_.steps) + "; continue with the same flags and --resume " +
                 options_.checkpoint_dir);
    }
    log_->log_summary();
    log_->log_memory(memory_accountant(), device_, model.layout().parameter_count());
    return;
  }
  if (last_eval_step_ != options_.steps) evaluate(model, options_.steps);
  if (options_.sample_count > 0) {
    const auto answered = answer_problems(model, *data_, options_.sample_count);
    for (const AnsweredProblem& problem : answered) {
      log_->info(options_.stage + " | sample " + problem.prompt + problem.answer + "   (expected " + problem.prompt +
                 problem.expected + (problem.correct ? ", right)" : ", wrong)"));
    }
    if (answered.empty()) {
      // Plain text or token shards: continue --prompt, or the opening of the held-out text.
      std::vector<std::int32_t> prompt;
      if (!options_.prompt.empty()) {
        prompt = data_->encode(options_.prompt);
      } else {
        const Batch opening = data_->eval_batch(0);
        prompt.assign(opening.inputs.begin(), opening.inputs.begin() + std::min(16, sequence_length_));
      }
      const auto continuation = greedy_decode(model, {prompt}, options_.sample_tokens, data_->stop_token());
      log_->info(options_.stage + " | sample [" + data_->decode(prompt) + "]" + data_->decode(continuation[0]));
    }
  }
  if (!options_.checkpoint_out.empty()) {
    // Every rank walks the units (a sharded stage gathers each one); rank 0 alone writes the file.
    save_model_checkpoint(options_.checkpoint_out, model,
                          {{"stage", options_.stage}, {"steps", std::to_string(options_.steps)},
                           {"data", options_.data}, {"seed", std::to_string(options_.seed)}},
                          rank_ == 0);
    log_->info(options_.stage + " | checkpoint written to " + options_.checkpoint_out);
  }
  log_->log_summary();
  log_->log_memory(memory_accountant(), device_, model.layout().parameter_count());
}

}  // namespace ladder
