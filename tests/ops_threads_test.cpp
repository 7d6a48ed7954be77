// The worker pool of the CPU ops (common/ops/cpu/worker_pool.hpp), and the promise it exists to keep: every op
// gives the same bits at any thread count. The op checks use sizes above the pools' thresholds, so the work is
// really spread, and compare the raw bytes of every output at 1, 2 and 3 threads (3: blocks that do not divide
// evenly among the threads).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/memory.hpp"
#include "common/ops/cpu/worker_pool.hpp"
#include "common/ops/ops.hpp"
#include "common/random.hpp"

namespace ladder {
namespace {

using ops::cpu::parallel_for;

// Puts the default thread count back after each test.
class WorkerPool : public ::testing::Test {
 protected:
  void TearDown() override { ops::set_cpu_threads(0); }
};

TEST_F(WorkerPool, EveryIndexRunsExactlyOnceOnASlotBelowTheThreadCount) {
  for (const int threads : {1, 2, 3, 4}) {
    ops::set_cpu_threads(threads);
    ASSERT_EQ(ops::cpu::worker_threads(), threads);
    std::vector<std::atomic<int>> runs(1000);
    std::atomic<int> bad_slots{0};
    parallel_for(static_cast<std::int64_t>(runs.size()), [&](std::int64_t index, int slot) {
      runs[static_cast<std::size_t>(index)].fetch_add(1);
      if (slot < 0 || slot >= threads) bad_slots.fetch_add(1);
    });
    for (std::size_t i = 0; i < runs.size(); ++i) ASSERT_EQ(runs[i].load(), 1) << "index " << i << ", " << threads << " threads";
    EXPECT_EQ(bad_slots.load(), 0) << threads << " threads";
  }
}

TEST_F(WorkerPool, TwoThreadsWorkAtOnce) {
  // Each of two tasks waits for the other to start: only two threads at once can finish both. (The wait is
  // bounded, so a pool that runs tasks one after another fails instead of hanging.)
  ops::set_cpu_threads(2);
  std::mutex mutex;
  std::condition_variable changed;
  int started = 0;
  std::atomic<int> saw_the_other{0};
  parallel_for(2, [&](std::int64_t, int) {
    std::unique_lock lock(mutex);
    ++started;
    changed.notify_all();
    if (changed.wait_for(lock, std::chrono::seconds(30), [&] { return started == 2; })) saw_the_other.fetch_add(1);
  });
  EXPECT_EQ(saw_the_other.load(), 2);
}

TEST_F(WorkerPool, ATasksExceptionReachesTheCallerAndThePoolKeepsWorking) {
  ops::set_cpu_threads(2);
  EXPECT_THROW(parallel_for(100,
                            [](std::int64_t index, int) {
                              if (index == 37) throw LadderError("task 37 failed");
                            }),
               LadderError);
  std::atomic<std::int64_t> sum{0};
  parallel_for(100, [&](std::int64_t index, int) { sum.fetch_add(index); });
  EXPECT_EQ(sum.load(), 99 * 100 / 2);
}

TEST_F(WorkerPool, ALoopStartedInsideATaskRunsThereWithoutWaitingForThePool) {
  ops::set_cpu_threads(2);
  std::vector<std::atomic<int>> runs(8 * 50);
  parallel_for(8, [&](std::int64_t outer, int) {
    parallel_for(50, [&](std::int64_t inner, int) { runs[static_cast<std::size_t>(outer * 50 + inner)].fetch_add(1); });
  });
  for (std::size_t i = 0; i < runs.size(); ++i) ASSERT_EQ(runs[i].load(), 1) << "index " << i;
}

// An owned tensor of random values (scale 1, or `scale`), or of zeros.
struct Owned {
  Owned(DType dtype, std::initializer_list<std::int64_t> shape, Random* random, double scale = 1.0) {
    std::int64_t count = 1;
    for (const std::int64_t extent : shape) count *= extent;
    buffer = Buffer(static_cast<std::size_t>(count) * dtype_size(dtype), MemoryCategory::Activations);
    tensor = Tensor(buffer.data(), dtype, shape);
    if (random == nullptr) return;
    std::vector<float> values(static_cast<std::size_t>(count));
    for (float& value : values) value = static_cast<float>(scale * random->normal());
    ops::convert(tensor, Tensor(values.data(), DType::F32, {count}));
  }
  std::string bytes() const { return std::string(static_cast<const char*>(buffer.data()), buffer.bytes()); }
  Buffer buffer;
  Tensor tensor;
};

// Every op of a training step on inputs made from one seed; returns the bytes of every output by name.
std::map<std::string, std::string> run_every_op(DType dtype) {
  Random random(4242);
  const std::int64_t B = 4, T = 24, C = 384, heads = 6, V = 1000, N = B * T;
  Owned inp(dtype, {N, C}, &random), weight(dtype, {3 * C, C}, &random, 0.05), bias(dtype, {3 * C}, &random);
  Owned qkv(dtype, {B, T, 3 * C}, nullptr), dqkv(dtype, {B, T, 3 * C}, &random), dinp(dtype, {N, C}, &random);
  Owned dweight(dtype, {3 * C, C}, &random), dbias(dtype, {3 * C}, &random);
  Owned att(dtype, {B, heads, T, T}, nullptr), attended(dtype, {B, T, C}, nullptr);
  Owned dattended(dtype, {B, T, C}, &random), hidden(dtype, {N, 4 * C}, &random), gelu(dtype, {N, 4 * C}, nullptr);
  Owned dgelu(dtype, {N, 4 * C}, &random), dhidden(dtype, {N, 4 * C}, &random), sum(dtype, {N, 4 * C}, nullptr);
  Owned logits(dtype, {N, V}, &random, 3.0), dlogits(dtype, {N, V}, nullptr);
  Owned losses(dtype == DType::F64 ? DType::F64 : DType::F32, {N}, nullptr), targets(DType::I32, {N}, nullptr);
  for (std::int64_t n = 0; n < N; ++n) targets.tensor.as<std::int32_t>()[n] = static_cast<std::int32_t>((n * 37) % (V - 7));
  Owned params(dtype, {N * C}, &random), grads(dtype, {N * C}, &random), m(DType::F32, {N * C}, &random, 0.1);
  Owned v(DType::F32, {N * C}, &random, 0.01), master(DType::F32, {N * C}, nullptr);

  ops::matmul_forward(qkv.tensor, inp.tensor.reshaped({N, C}), weight.tensor, bias.tensor);
  ops::matmul_backward(dinp.tensor, dweight.tensor, dbias.tensor, dqkv.tensor.reshaped({N, 3 * C}), inp.tensor,
                       weight.tensor);
  ops::attention_forward(attended.tensor, att.tensor, qkv.tensor, static_cast<int>(heads));
  ops::attention_backward(dqkv.tensor, dattended.tensor, qkv.tensor, att.tensor, static_cast<int>(heads));
  ops::gelu_forward(gelu.tensor, hidden.tensor);
  ops::gelu_backward(dhidden.tensor, hidden.tensor, dgelu.tensor);
  ops::residual_forward(sum.tensor, gelu.tensor, hidden.tensor);
  ops::softmax_cross_entropy_forward(losses.tensor, logits.tensor, targets.tensor, V - 7);
  ops::softmax_cross_entropy_backward(dlogits.tensor, logits.tensor, targets.tensor, V - 7, 1.0 / N);
  ops::AdamWStep hyper;
  hyper.weight_decay = 0.1;
  ops::adamw_update(params.tensor, grads.tensor, m.tensor, v.tensor, hyper);
  ops::convert(master.tensor, params.tensor);
  ops::accumulate(master.tensor, grads.tensor);
  ops::scale(master.tensor, 0.25);
  return {{"qkv", qkv.bytes()},       {"dinp", dinp.bytes()},         {"dweight", dweight.bytes()},
          {"dbias", dbias.bytes()},   {"att", att.bytes()},           {"attended", attended.bytes()},
          {"dqkv", dqkv.bytes()},     {"gelu", gelu.bytes()},         {"dhidden", dhidden.bytes()},
          {"sum", sum.bytes()},       {"losses", losses.bytes()},     {"dlogits", dlogits.bytes()},
          {"params", params.bytes()}, {"m", m.bytes()},               {"v", v.bytes()},
          {"master", master.bytes()}};
}

void expect_same_bits_at_any_thread_count(DType dtype) {
  ops::set_cpu_threads(1);
  const auto one_thread = run_every_op(dtype);
  for (const int threads : {2, 3}) {
    ops::set_cpu_threads(threads);
    const auto several = run_every_op(dtype);
    for (const auto& [name, bytes] : one_thread) {
      EXPECT_TRUE(several.at(name) == bytes) << name << " differs between 1 and " << threads << " threads";
    }
  }
}

TEST_F(WorkerPool, EveryFp32OpGivesTheSameBitsAtOneTwoAndThreeThreads) { expect_same_bits_at_any_thread_count(DType::F32); }
TEST_F(WorkerPool, EveryFp16OpGivesTheSameBitsAtOneTwoAndThreeThreads) { expect_same_bits_at_any_thread_count(DType::F16); }
TEST_F(WorkerPool, EveryBf16OpGivesTheSameBitsAtOneTwoAndThreeThreads) {
  expect_same_bits_at_any_thread_count(DType::BF16);
}

}  // namespace
}  // namespace ladder
