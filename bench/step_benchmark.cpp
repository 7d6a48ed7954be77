// The harness behind every stage's benchmark: builds the workload, times real steps, reads the accountant.
#include "bench/step_benchmark.hpp"

#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <string>

#include "common/memory.hpp"
#include "common/model/parameter_layout.hpp"
#include "common/random.hpp"

namespace ladder::bench {

namespace {

// A fixed learning rate: the benchmark times steps, and the schedule does not change their cost.
constexpr double kLearningRate = 1e-4;
// Enough distinct batches that no step sees the data its predecessor left in cache.
constexpr int kBatchCount = 4;
constexpr int kGpt2Vocabulary = 50257;

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
void add_memory_counters(benchmark::State& state, const MemoryAccountant& before, std::int64_t parameter_count) {
  const MemoryAccountant& now = memory_accountant();
  const double parameters = static_cast<double>(parameter_count);
  double state_bytes = 0;
  for (int c = 0; c < kMemoryCategoryCount; ++c) {
    const auto category = static_cast<MemoryCategory>(c);
    const double peak = static_cast<double>(now.usage(Device::CPU, category).peak -
                                            before.usage(Device::CPU, category).current);
    if (is_model_state(category)) state_bytes += peak;
    // Only the categories this stage uses: a column of zeros for comm buffers says nothing on one process.
    if (peak <= 0) continue;
    state.counters["peak_bytes_" + counter_suffix(category)] =
        benchmark::Counter(peak, benchmark::Counter::kDefaults, benchmark::Counter::kIs1024);
    state.counters["bytes_per_parameter_" + counter_suffix(category)] = peak / parameters;
  }
  const double peak_total = static_cast<double>(now.peak_total(Device::CPU) - before.current_total(Device::CPU));
  state.counters["peak_bytes"] = benchmark::Counter(peak_total, benchmark::Counter::kDefaults, benchmark::Counter::kIs1024);
  state.counters["bytes_per_parameter"] = peak_total / parameters;
  state.counters["state_bytes_per_parameter"] = state_bytes / parameters;
  state.counters["parameters"] = parameters;
}

void run_step_benchmark(benchmark::State& state, const MakeStepFunction& make_step, StepWorkload (*make_workload)()) {
  const StepWorkload workload = make_workload();
  const MemoryAccountant before = memory_accountant();
  memory_accountant().reset_peaks();
  StepFunction step = make_step(workload);
  // One untimed step first: it touches every buffer once, as the first step of a real run does.
  step(workload.batches.front(), kLearningRate);

  double step_seconds = 0;
  std::int64_t steps = 0;
  for (auto _ : state) {
    const Batch& batch = workload.batches[static_cast<std::size_t>(steps % kBatchCount)];
    const auto start = std::chrono::steady_clock::now();
    step(batch, kLearningRate);
    step_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    ++steps;
  }
  const double tokens_per_step = static_cast<double>(workload.batch_size) * workload.sequence_length;
  state.counters["tokens_per_second"] =
      benchmark::Counter(tokens_per_step * static_cast<double>(steps), benchmark::Counter::kIsRate);
  state.counters["step_seconds"] = benchmark::Counter(step_seconds, benchmark::Counter::kAvgIterations);
  add_memory_counters(state, before, ParameterLayout(workload.config).parameter_count());
  state.SetLabel(workload.config.describe() + ", batch " + std::to_string(workload.batch_size) + "x" +
                 std::to_string(workload.sequence_length));
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

StepWorkload gpt2_124m_workload() {
  StepWorkload workload;
  workload.batch_size = 1;
  workload.sequence_length = 64;
  workload.config = named_config("gpt2-124m", kGpt2Vocabulary);
  // Random ids stand in for text: a step costs the same whatever the tokens say.
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

bool register_step_benchmarks(const std::string& stage, MakeStepFunction make_step) {
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
  return true;
}

}  // namespace ladder::bench
