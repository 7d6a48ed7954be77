// The harness behind every stage's benchmark: builds the workload, times real steps, reads the accountant.
#include "bench/step_benchmark.hpp"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <exception>
#include <map>
#include <string>
#include <vector>

#include "common/memory.hpp"
#include "common/model/parameter_layout.hpp"
#include "common/random.hpp"
#ifdef LADDER_WITH_CUDA
#include "common/ops/cuda/cuda_check.hpp"
#endif

namespace ladder::bench {

namespace {

// A fixed learning rate: the benchmark times steps, and the schedule does not change their cost.
constexpr double kLearningRate = 1e-4;
// Enough distinct batches that no step sees the data its predecessor left in cache.
constexpr int kBatchCount = 4;
constexpr int kGpt2Vocabulary = 50257;
// The batch of the CPU's GPT-2 124M benchmark: 4 rows of 64 tokens, a few seconds a step on two cores.
constexpr int kCpuGpt2BatchSize = 4;
constexpr int kCpuGpt2SequenceLength = 64;
// The batch of the GPU benchmark: what PyTorch's and llm.c's GPT-2 124M figures are usually quoted at.
constexpr int kGpuBatchSize = 16;
constexpr int kGpuSequenceLength = 1024;

// "optimizer state" -> "optimizer_state": counter names without spaces read better on the console and in JSON.
std::string counter_suffix(MemoryCategory category) {
  std::string name = category_name(category);
  for (char& character : name) {
    if (character == ' ') character = '_';
  }
  return name;
}

bool is_model_state(MemoryCategory category) {
  return category == MemoryCategory::Parameters || category == MemoryCategory::Gradients ||
         category == MemoryCategory::MasterWeights || category == MemoryCategory::OptimizerState;
}

// Peak bytes this benchmark added, per category, read before its state goes away. The accountant is shared by
// the whole process, so peaks are reset first and what was already allocated is subtracted.
// Only the workload's device counts: a GPU workload's host side (the batches, staging) is not its footprint.
// peak_bytes is the highest total over set-up and steps alike, weights and optimizer state included (what
// torch.cuda.max_memory_allocated reports for bench/pytorch_reference.py).
void add_memory_counters(benchmark::State& state, const MemoryAccountant& before, std::int64_t parameter_count,
                         Device device) {
  const MemoryAccountant& now = memory_accountant();
  const double parameters = static_cast<double>(parameter_count);
  double state_bytes = 0;
  for (int c = 0; c < kMemoryCategoryCount; ++c) {
    const auto category = static_cast<MemoryCategory>(c);
    const double peak = static_cast<double>(now.usage(device, category).peak -
                                            before.usage(device, category).current);
    if (is_model_state(category)) state_bytes += peak;
    // Only the categories this stage uses: a column of zeros for comm buffers says nothing on one process.
    if (peak <= 0) continue;
    state.counters["peak_bytes_" + counter_suffix(category)] =
        benchmark::Counter(peak, benchmark::Counter::kDefaults, benchmark::Counter::kIs1024);
    state.counters["bytes_per_parameter_" + counter_suffix(category)] = peak / parameters;
  }
  const double peak_total = static_cast<double>(now.peak_total(device) - before.current_total(device));
  state.counters["peak_bytes"] = benchmark::Counter(peak_total, benchmark::Counter::kDefaults, benchmark::Counter::kIs1024);
  state.counters["bytes_per_parameter"] = peak_total / parameters;
  state.counters["state_bytes_per_parameter"] = state_bytes / parameters;
  state.counters["parameters"] = parameters;
}

// Waits for the GPU's queued kernels, so that a step's time covers its work and not only its launches.
void wait_for_device(Device device) {
#ifdef LADDER_WITH_CUDA
  if (device == Device::CUDA) ops::cuda::check_cuda(cudaDeviceSynchronize(), "cudaDeviceSynchronize after a step");
#else
  (void)device;  // without CUDA no workload reaches the GPU (its benchmark stops at cuda_device_available)
#endif
}

// Seconds that one step takes, waiting for the device.
double timed_step(const StepFunction& step, const Batch& batch, Device device) {
  const auto start = std::chrono::steady_clock::now();
  step(batch, kLearningRate);
  wait_for_device(device);
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// "<model>, batch BxT" (and ", cuda" on the GPU): the label of a step benchmark's row.
std::string workload_label(const StepWorkload& workload) {
  return workload.config.describe() + ", batch " + std::to_string(workload.batch_size) + "x" +
         std::to_string(workload.sequence_length) + (workload.device == Device::CUDA ? ", cuda" : "");
}

void add_throughput_counters(benchmark::State& state, const StepWorkload& workload, std::int64_t steps,
                             double step_seconds) {
  const double tokens_per_step = static_cast<double>(workload.batch_size) * workload.sequence_length;
  const double flops_per_step =
      training_flops_per_step(workload.config, workload.batch_size, workload.sequence_length);
  const double step_count = static_cast<double>(steps);
  // Rates over Google Benchmark's wall time of the loop, which includes the wait for the GPU after each step.
  state.counters["tokens_per_second"] = benchmark::Counter(tokens_per_step * step_count, benchmark::Counter::kIsRate);
  state.counters["tflops_per_second"] =
      benchmark::Counter(flops_per_step * step_count / 1e12, benchmark::Counter::kIsRate);
  if (workload.device == Device::CUDA) {
    state.counters["fp32_peak_fraction"] =
        benchmark::Counter(flops_per_step * step_count / kH100SxmFp32PeakFlops, benchmark::Counter::kIsRate);
  }
  state.counters["step_seconds"] = benchmark::Counter(step_seconds, benchmark::Counter::kAvgIterations);
}

void run_step_benchmark(benchmark::State& state, const MakeStepFunction& make_step, StepWorkload (*make_workload)()) {
  const StepWorkload workload = make_workload();
  const MemoryAccountant before = memory_accountant();
  memory_accountant().reset_peaks();
  // A stage that cannot build this workload (no CUDA path, GPU out of memory) gives an error row, with the
  // reason, instead of ending the whole run and the other stages' results with it.
  try {
    StepFunction step = make_step(workload);
    // One untimed step first: it touches every buffer once, as the first step of a real run does.
    step(workload.batches.front(), kLearningRate);
    wait_for_device(workload.device);

    double step_seconds = 0;
    std::int64_t steps = 0;
    for (auto _ : state) {
      step_seconds += timed_step(step, workload.batches[static_cast<std::size_t>(steps % kBatchCount)],
                                 workload.device);
      ++steps;
    }
    add_throughput_counters(state, workload, steps, step_seconds);
    add_memory_counters(state, before, ParameterLayout(workload.config).parameter_count(), workload.device);
  } catch (const std::exception& error) {
    state.SkipWithError(error.what());
    return;
  }
  state.SetLabel(workload_label(workload));
}

// Random ids stand in for text: a step costs the same whatever the tokens say.
StepWorkload random_gpt2_workload(int batch_size, int sequence_length, Device device) {
  StepWorkload workload;
  workload.batch_size = batch_size;
  workload.sequence_length = sequence_length;
  workload.device = device;
  workload.config = named_config("gpt2-124m", kGpt2Vocabulary);
  Random random(kBenchmarkSeed);
  for (int step = 0; step < kBatchCount; ++step) {
    Batch batch;
    batch.batch_size = workload.batch_size;
    batch.sequence_length = workload.sequence_length;
    const int tokens = workload.batch_size * workload.sequence_length;
    std::vector<std::int32_t> stream(static_cast<std::size_t>(tokens) + 1);
    for (std::int32_t& token : stream) token = static_cast<std::int32_t>(random.below(kGpt2Vocabulary));
    batch.inputs.assign(stream.begin(), stream.end() - 1);
    batch.targets.assign(stream.begin() + 1, stream.end());
    workload.batches.push_back(std::move(batch));
  }
  return workload;
}

// The stage every paired benchmark times a stage against. A literal, not a std::string: other files' static
// initialisers read it, perhaps before this file's would have constructed one.
constexpr const char* kBaselineStage = "stage01";
// Pairs of steps per paired benchmark: the small model's steps take tens of milliseconds, GPT-2's seconds.
constexpr int kSmallPairs = 40;
constexpr int kGpt2Pairs = 8;

// Each registered stage's maker, by name, so that a stage registered before or after stage 01 can be paired
// with it.
std::map<std::string, MakeStepFunction>& registered_stages() {
  static std::map<std::string, MakeStepFunction> stages;
  return stages;
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const std::size_t middle = values.size() / 2;
  return values.size() % 2 == 1 ? values[middle] : (values[middle - 1] + values[middle]) / 2;
}

// A stage and the baseline built side by side in one process, their steps taken in turn (baseline first in
// even pairs, the stage first in odd ones, so neither always follows the other), each pair's ratio of times
// formed from two steps a few seconds apart. On a shared machine whose speed drifts by 10% or more over a
// minute, those ratios hold still where two benchmarks run one after the other do not.
void run_paired_benchmark(benchmark::State& state, const MakeStepFunction& make_step,
                          const MakeStepFunction& make_baseline_step, StepWorkload (*make_workload)()) {
  const StepWorkload workload = make_workload();
  try {
    StepFunction baseline = make_baseline_step(workload);
    StepFunction step = make_step(workload);
    baseline(workload.batches.front(), kLearningRate);  // untimed: every buffer touched once, as in a run
    step(workload.batches.front(), kLearningRate);
    wait_for_device(workload.device);

    std::vector<double> ratios;
    double stage_seconds = 0, baseline_seconds = 0;
    std::int64_t pairs = 0;
    for (auto _ : state) {
      const Batch& batch = workload.batches[static_cast<std::size_t>(pairs % kBatchCount)];
      double stage_time = 0, baseline_time = 0;
      if (pairs % 2 == 0) {
        baseline_time = timed_step(baseline, batch, workload.device);
        stage_time = timed_step(step, batch, workload.device);
      } else {
        stage_time = timed_step(step, batch, workload.device);
        baseline_time = timed_step(baseline, batch, workload.device);
      }
      ratios.push_back(stage_time / baseline_time);
      stage_seconds += stage_time;
      baseline_seconds += baseline_time;
      ++pairs;
    }
    const double count = static_cast<double>(pairs);
    state.counters["step_seconds"] = stage_seconds / count;
    state.counters["baseline_step_seconds"] = baseline_seconds / count;
    state.counters["time_ratio"] = median(ratios);
    state.counters["time_ratio_lowest"] = *std::min_element(ratios.begin(), ratios.end());
    state.counters["time_ratio_highest"] = *std::max_element(ratios.begin(), ratios.end());
  } catch (const std::exception& error) {
    state.SkipWithError(error.what());
    return;
  }
  state.SetLabel(workload_label(workload) + ", against " + kBaselineStage);
}

// "paired/<stage>/small" and "paired/<stage>/gpt2-124m": the stage's step time over the baseline's (CPU only).
void register_paired_benchmarks(const std::string& stage, const MakeStepFunction& make_step,
                                const MakeStepFunction& make_baseline_step) {
  struct PairedWorkload {
    const char* name;
    StepWorkload (*make)();
    int pairs;
  };
  const PairedWorkload workloads[] = {{"small", small_workload, kSmallPairs},
                                      {"gpt2-124m", gpt2_124m_workload, kGpt2Pairs}};
  for (const auto& [workload_name, make_workload, pairs] : workloads) {
    benchmark::RegisterBenchmark(("paired/" + stage + "/" + workload_name).c_str(),
                                 [make_step, make_baseline_step, make_workload](benchmark::State& state) {
                                   run_paired_benchmark(state, make_step, make_baseline_step, make_workload);
                                 })
        ->Iterations(pairs)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
  }
}

}  // namespace

StepWorkload small_workload() {
  StepWorkload workload;
  workload.batch_size = 64;
  workload.sequence_length = preferred_sequence_length("addition");
  const auto data = make_data_source("addition", DataSlice{0, 1, workload.batch_size, workload.sequence_length},
                                     kBenchmarkSeed);
  workload.config = named_config("small", data->vocab_size());
  for (int step = 0; step < kBatchCount; ++step) workload.batches.push_back(data->train_batch(step));
  return workload;
}

StepWorkload gpt2_124m_workload() { return random_gpt2_workload(kCpuGpt2BatchSize, kCpuGpt2SequenceLength, Device::CPU); }

StepWorkload gpt2_124m_gpu_workload() {
  return random_gpt2_workload(kGpuBatchSize, kGpuSequenceLength, Device::CUDA);
}

// The estimate of PaLM's appendix B, as nanoGPT's estimate_mfu and PyTorch's MFU figures use it:
//   FLOPs per step = 6·N·tokens + 12·L·H·hs·T·tokens,   tokens = B·T, H·hs = C.
// 6·N: each weight that multiplies does one multiply-add (2 FLOPs) per token forward and two backward (the
// gradients of its input and of itself). N leaves out wte and wpe, which are looked up, not multiplied;
// lm_head counts, padded rows included, since its GEMM computes them (nanoGPT ties lm_head to wte and counts
// that matrix once, so its N is the same). 12·L·H·hs·T: attention's two T×T products (scores Q·Kᵀ and the
// weighted sum with V) at 2 FLOPs a multiply-add, times 3 for forward and backward, over all T keys: the
// causal mask halves the useful work, but the estimate counts the full square, as PyTorch's does.
double training_flops_per_step(const GPTConfig& config, int batch_size, int sequence_length) {
  const ParameterLayout layout(config);
  const double multiplying_parameters = static_cast<double>(
      layout.parameter_count() - layout.tensor("wte").numel - layout.tensor("wpe").numel);
  const double tokens = static_cast<double>(batch_size) * sequence_length;
  const double attention_per_token =
      12.0 * config.layer_count * static_cast<double>(config.channels) * sequence_length;
  return (6.0 * multiplying_parameters + attention_per_token) * tokens;
}

bool register_step_benchmarks(const std::string& stage, MakeStepFunction make_step) {
  // Static initialisers run in no fixed order between files: whichever of a stage and the baseline registers
  // second registers their pair.
  if (stage == kBaselineStage) {
    for (const auto& [other, make_other] : registered_stages()) {
      register_paired_benchmarks(other, make_other, make_step);
    }
  } else if (registered_stages().count(kBaselineStage) != 0) {
    register_paired_benchmarks(stage, make_step, registered_stages().at(kBaselineStage));
  }
  registered_stages()[stage] = make_step;
  // Wall-clock time: OpenBLAS runs the GEMMs on several threads, which the main thread's CPU time would miss.
  benchmark::RegisterBenchmark((stage + "/small").c_str(),
                               [make_step](benchmark::State& state) {
                                 run_step_benchmark(state, make_step, small_workload);
                               })
      ->UseRealTime()
      ->Unit(benchmark::kMillisecond);
  // Seconds per step: Google Benchmark's first trial of one step already exceeds its default minimum time,
  // so a plain run measures one step; --benchmark_min_time asks for more. The smoke test's filter skips it.
  benchmark::RegisterBenchmark((stage + "/gpt2-124m").c_str(),
                               [make_step](benchmark::State& state) {
                                 run_step_benchmark(state, make_step, gpt2_124m_workload);
                               })
      ->UseRealTime()
      ->Unit(benchmark::kMillisecond);
  // The GPU benchmark, side by side with bench/pytorch_reference.py (scripts/gpu_check.sh runs both). Where no
  // GPU is visible (CI, a laptop) it is an error row that says so; the smoke test's filter leaves it out.
  benchmark::RegisterBenchmark((stage + "/gpt2-124m-cuda").c_str(),
                               [make_step](benchmark::State& state) {
                                 if (!cuda_device_available()) {
                                   state.SkipWithError("no CUDA GPU visible");
                                   return;
                                 }
                                 run_step_benchmark(state, make_step, gpt2_124m_gpu_workload);
                               })
      ->UseRealTime()
      ->Unit(benchmark::kMillisecond);
  return true;
}

}  // namespace ladder::bench
