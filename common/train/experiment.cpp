#include "common/train/experiment.hpp"

#include <algorithm>
#include <sstream>

#include "common/error.hpp"
#include "common/model/generate.hpp"
#include "common/ops/device_dispatch.hpp"
#include "common/ops/ops.hpp"
#include "common/train/evaluation.hpp"
#include "common/train/model_checkpoint.hpp"

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
  // Rank 0 speaks for the job: it alone prints and writes the metrics file.
  log_ = std::make_unique<TrainingLog>(options_.stage, options_.steps, options_.log_every,
                                       rank == 0 ? options_.metrics_path : std::string(), rank == 0);
  log_->info(options_.stage + " | model " + model_config_.describe());
  log_->info(options_.stage + " | data " + data_->describe());
  std::ostringstream line;
  line << options_.stage << " | device " << device_name(device_) << (options_.tf32 ? " (TF32 GEMMs)" : "") << ", batch " << options_.batch_size * world << "x" << sequence_length_ << " tokens, "
       << options_.steps << " steps, lr " << options_.learning_rate << ", seed " << options_.seed;
  log_->info(line.str());
}

AdamWConfig Experiment::adamw_config() const {
  return {options_.beta1, options_.beta2, options_.epsilon, options_.weight_decay, options_.gradient_clip};
}

void Experiment::initialize(GPT& model) const {
  if (options_.init_from.empty()) {
    model.initialize(options_.seed);
  } else {
    load_model_checkpoint(options_.init_from, model);
    log_->info(options_.stage + " | weights loaded from " + options_.init_from);
  }
}

void Experiment::record_step(GPT& model, std::int64_t step, double loss, double learning_rate, double gradient_norm,
                             double step_seconds, std::vector<std::pair<std::string, double>> extras) {
  StepMetrics metrics;
  metrics.step = step + 1;
  metrics.loss = loss;
  metrics.learning_rate = learning_rate;
  metrics.gradient_norm = gradient_norm;
  metrics.tokens = std::int64_t{options_.batch_size} * world_ * sequence_length_;
  metrics.step_seconds = step_seconds;
  metrics.extras = std::move(extras);
  log_->log_step(metrics);
  const std::int64_t done = step + 1;
  if (options_.eval_every > 0 && done % options_.eval_every == 0 && done < options_.steps) evaluate(model, done);
}

void Experiment::evaluate(GPT& model, std::int64_t steps_done) {
  last_eval_ = held_out_metrics(model, *data_, options_.eval_batches, options_.eval_problems, steps_done);
  log_->log_eval(last_eval_);
  last_eval_step_ = steps_done;
}

void Experiment::finish(GPT& model) {
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
  if (!options_.checkpoint_out.empty() && rank_ == 0) {
    save_model_checkpoint(options_.checkpoint_out, model,
                          {{"stage", options_.stage}, {"steps", std::to_string(options_.steps)},
                           {"data", options_.data}, {"seed", std::to_string(options_.seed)}});
    log_->info(options_.stage + " | checkpoint written to " + options_.checkpoint_out);
  }
  log_->log_summary();
  log_->log_memory(memory_accountant(), device_, model.layout().parameter_count());
}

}  // namespace ladder
