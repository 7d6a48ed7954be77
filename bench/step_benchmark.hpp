/// @file step_benchmark.hpp
/// @brief The shared harness of the per-stage benchmarks: real training steps, timed, with memory counters.
///
/// A stage's benchmark file gives two things: how to build its training state for a workload, and one
/// training step on that state (the recipe of its main.cpp). The harness registers it at three workloads,
/// "<stage>/small" (the CPU default), "<stage>/gpt2-124m" (the GPU benchmark shape, with a batch small enough
/// for a CPU) and "<stage>/gpt2-124m-cuda" (that shape at B=16, T=1024 on the GPU; an error row where no GPU
/// is visible), and reports for each: tokens per second, seconds per step, achieved TFLOP/s, the parameter
/// count, and the peak bytes of every memory category the accountant saw on the workload's device, also per
/// parameter. Paired benchmarks time a stage against stage 01, step for step, on the two CPU workloads.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/data/data_source.hpp"
#include "common/memory.hpp"
#include "common/model/gpt.hpp"
#include "common/model/gpt_config.hpp"
#include "common/optim/adamw.hpp"

/// Google Benchmark harnesses of the ladder.
namespace ladder::bench {

/// Seed of the weights and batches of every step benchmark, so that all stages start from the same point.
inline constexpr std::uint64_t kBenchmarkSeed = 1337;

/// A model shape and the batches a step benchmark cycles through.
struct StepWorkload {
  GPTConfig config;             ///< the model's shape
  int batch_size = 0;           ///< B: rows per step
  int sequence_length = 0;      ///< T: tokens per row
  std::vector<Batch> batches;   ///< made before timing starts, used in turn, one per step
  Device device = Device::CPU;  ///< where the stage builds its state and runs the step
};

/// The CPU default of every stage: the small model on 64×10-token batches of the addition task.
StepWorkload small_workload();

/// The GPT-2 124M shape (L=12, H=12, C=768, vocabulary 50257 padded to 50304) on 4 rows of 64 random GPT-2
/// token ids: a few seconds per step on a two-core CPU.
StepWorkload gpt2_124m_workload();

/// The GPT-2 124M shape on the GPU at the batch PyTorch and llm.c are usually measured at: 16 rows of 1024
/// random GPT-2 token ids (bench/pytorch_reference.py times the same shape).
StepWorkload gpt2_124m_gpu_workload();

/// Model FLOPs of one training step (forward and backward) of `config` on batch_size×sequence_length tokens,
/// by the estimate PyTorch's and nanoGPT's MFU figures use (see step_benchmark.cpp for the formula).
double training_flops_per_step(const GPTConfig& config, int batch_size, int sequence_length);

/// H100 SXM's peak fp32 rate without tensor cores, 67 TFLOP/s: the denominator of the fp32_peak_fraction
/// counter of GPU workloads.
inline constexpr double kH100SxmFp32PeakFlops = 67e12;

/// One training step of a stage on `batch` at `learning_rate`: forward, backward and the optimizer's update.
using StepFunction = std::function<void(const Batch& batch, double learning_rate)>;

/// Builds a stage's training state for a workload and returns a step that owns it.
using MakeStepFunction = std::function<StepFunction(const StepWorkload& workload)>;

/// Registers "<stage>/small", "<stage>/gpt2-124m" and "<stage>/gpt2-124m-cuda" with Google Benchmark, and for
/// every stage but stage 01 "paired/<stage>/small" and "paired/<stage>/gpt2-124m": its steps and stage 01's in
/// turn in one process, with the median ratio of their times (time_ratio). Returns true, so that a benchmark
/// file can register itself from the initialiser of a namespace-scope constant.
bool register_step_benchmarks(const std::string& stage, MakeStepFunction make_step);

/// The form each stage's file uses: `make_state(workload)` returns a std::unique_ptr to the stage's state
/// (initialised with kBenchmarkSeed), and `step(state, batch, learning_rate)` is one training step on it.
/// The state is held by pointer because it must not move: an optimizer keeps a reference to its model's layout.
template <class MakeState, class Step>
bool register_stage_benchmarks(const std::string& stage, MakeState make_state, Step step) {
  return register_step_benchmarks(stage, [make_state, step](const StepWorkload& workload) -> StepFunction {
    std::shared_ptr state{make_state(workload)};
    return [state, step](const Batch& batch, double learning_rate) { step(*state, batch, learning_rate); };
  });
}

/// A stage's state built for a workload on its device and initialised with kBenchmarkSeed (stages 01 and
/// 02, whose state is a model and the AdamW that updates its own weights).
template <class Training>
std::unique_ptr<Training> make_plain_training(const StepWorkload& workload) {
  auto training = std::make_unique<Training>(workload.config, AdamWConfig{}, workload.batch_size,
                                             workload.sequence_length, workload.device);
  training->model.initialize(kBenchmarkSeed);
  return training;
}

/// The recipe of 01_fp32_baseline/main.cpp (and of 02, in fp16), without the logging: forward, backward, and
/// AdamW on the model's own weights.
template <class Training>
void plain_step(Training& training, const Batch& batch, double learning_rate) {
  GPT& model = training.model;
  model.forward(batch);
  model.zero_gradients();
  model.backward();
  training.optimizer.step(model.parameters(), model.gradients(), learning_rate);
}

}  // namespace ladder::bench
