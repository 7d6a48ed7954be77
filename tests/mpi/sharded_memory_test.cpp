// What each rank of stages 06-09 holds, per category, read off the memory accountant after one real step, against
// the formulas of the README at every world size the job runs with (1, 2, 3 and 4 ranks: 3 exercises padding).
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <vector>

#include "tests/mpi/run_stage06.hpp"
#include "tests/mpi/run_stage07.hpp"
#include "tests/mpi/run_stage08.hpp"
#include "tests/mpi/run_stage09.hpp"

namespace ladder::sharded_runs {
namespace {

// Peak bytes per category that the code inside `run` added, over what was held before it began.
class PeakBytes {
 public:
  explicit PeakBytes(const std::function<void()>& run) {
    const MemoryAccountant before = memory_accountant();
    memory_accountant().reset_peaks();
    run();
    for (int c = 0; c < kMemoryCategoryCount; ++c) {
      const auto category = static_cast<MemoryCategory>(c);
      peaks_[c] = memory_accountant().usage(Device::CPU, category).peak - before.usage(Device::CPU, category).current;
    }
  }
  std::int64_t operator[](MemoryCategory category) const { return peaks_[static_cast<int>(category)]; }

 private:
  std::int64_t peaks_[kMemoryCategoryCount] = {};
};

struct Sizes {
  std::int64_t P = 0;               // the padded layout's elements
  std::int64_t S = 0;               // one rank's shard: P / N
  std::int64_t largest_unit = 0;
  std::int64_t largest_pair = 0;    // the two largest neighbouring units together
  int N = 1;
};

Sizes sizes() {
  Sizes s;
  s.N = world().world_size();
  const ParameterLayout layout(tiny_config(), s.N);
  s.P = layout.padded_size();
  s.S = s.P / s.N;
  const auto& units = layout.units();
  for (std::size_t u = 0; u < units.size(); ++u) {
    s.largest_unit = std::max(s.largest_unit, units[u].size);
    if (u + 1 < units.size()) s.largest_pair = std::max(s.largest_pair, units[u].size + units[u + 1].size);
  }
  return s;
}

TEST(ShardedMemory, UnitsArePaddedToMultiplesOfSixteenTimesTheWorldSize) {
  const int N = world().world_size();
  const ParameterLayout padded(tiny_config(), N);
  const ParameterLayout unpadded(tiny_config(), 1);
  std::int64_t expected = 0;
  for (const ParameterUnit& unit : unpadded.units()) expected += (unit.size + 16 * N - 1) / (16 * N) * (16 * N);
  EXPECT_EQ(padded.padded_size(), expected);
  // The padding's bytes are in every figure below: the per-parameter figures are over the real parameters.
  RecordProperty("padding_elements", static_cast<int>(padded.padded_size() - padded.parameter_count()));
}

TEST(ShardedMemory, Stage06HoldsEverythingOnEveryRank) {
  const Sizes s = sizes();
  const PeakBytes peak([] { run_stage06(stage06::DdpSettings{}, false, 1); });
  EXPECT_EQ(peak[MemoryCategory::Parameters], 2 * s.P);
  EXPECT_EQ(peak[MemoryCategory::Gradients], 2 * s.P);
  EXPECT_EQ(peak[MemoryCategory::MasterWeights], 4 * s.P);
  EXPECT_EQ(peak[MemoryCategory::OptimizerState], 8 * s.P);
  EXPECT_EQ(peak[MemoryCategory::CommBuffers], 4 * s.P) << "fp32 buckets for every gradient";
}

TEST(ShardedMemory, Stage07ShardsTheMasterWeightsAndMoments) {
  const Sizes s = sizes();
  const PeakBytes peak([] { run_stage07(stage06::DdpSettings{}, 1); });
  EXPECT_EQ(peak[MemoryCategory::Parameters], 2 * s.P);
  EXPECT_EQ(peak[MemoryCategory::Gradients], 2 * s.P);
  EXPECT_EQ(peak[MemoryCategory::MasterWeights], 4 * s.S);
  EXPECT_EQ(peak[MemoryCategory::OptimizerState], 8 * s.S);
  // One bucket (the tiny model is far below 25 MiB): packed in fp32 (4P) and this rank's fp32 mean (4S), freed
  // before the bf16 weights are gathered (2S sent, 2P received).
  EXPECT_EQ(peak[MemoryCategory::CommBuffers], 4 * s.P + 4 * s.S);
}

TEST(ShardedMemory, Stage08ShardsTheGradientsAndHoldsOnlyTheBucketsInFlight) {
  const Sizes s = sizes();
  const PeakBytes one_bucket([] { run_stage08(stage06::DdpSettings{}, 1); });
  EXPECT_EQ(one_bucket[MemoryCategory::Parameters], 2 * s.P);
  EXPECT_EQ(one_bucket[MemoryCategory::Gradients], 2 * s.S) << "the owned slice only";
  EXPECT_EQ(one_bucket[MemoryCategory::GradientBuckets], 2 * s.P) << "one bucket holds the whole tiny model";
  EXPECT_EQ(one_bucket[MemoryCategory::MasterWeights], 4 * s.S);
  EXPECT_EQ(one_bucket[MemoryCategory::OptimizerState], 8 * s.S);
  EXPECT_EQ(one_bucket[MemoryCategory::CommBuffers], 4 * s.P + 4 * s.S);
  // A bucket per unit: backward holds one unit's full gradients at a time, and two units' fp32 buffers are in
  // flight at once (the one being reduced and the next).
  stage06::DdpSettings per_unit;
  per_unit.bucket_bytes = 1;
  const PeakBytes small_buckets([&] { run_stage08(per_unit, 1); });
  EXPECT_EQ(small_buckets[MemoryCategory::Gradients], 2 * s.S);
  EXPECT_EQ(small_buckets[MemoryCategory::GradientBuckets], 2 * s.largest_unit);
  EXPECT_EQ(small_buckets[MemoryCategory::CommBuffers], 4 * s.largest_pair + 4 * s.largest_pair / s.N);
  EXPECT_LT(small_buckets[MemoryCategory::GradientBuckets], one_bucket[MemoryCategory::GradientBuckets]);
}

TEST(ShardedMemory, Stage09ShardsTheWeightsAndGathersAtMostTwoUnits) {
  const Sizes s = sizes();
  stage09::FsdpSettings prefetch;
  const PeakBytes peak([&] { run_stage09(prefetch, 1); });
  EXPECT_EQ(peak[MemoryCategory::Parameters], 2 * s.S);
  EXPECT_EQ(peak[MemoryCategory::Gradients], 2 * s.S);
  EXPECT_EQ(peak[MemoryCategory::MasterWeights], 4 * s.S);
  EXPECT_EQ(peak[MemoryCategory::OptimizerState], 8 * s.S);
  EXPECT_EQ(peak[MemoryCategory::GatheredParameters], 2 * s.largest_pair) << "a unit and the next one, prefetched";
  EXPECT_EQ(peak[MemoryCategory::GradientBuckets], 2 * s.largest_unit);
  EXPECT_EQ(peak[MemoryCategory::CommBuffers], 4 * s.largest_pair + 4 * s.largest_pair / s.N);
  stage09::FsdpSettings on_demand;
  on_demand.prefetch = false;
  const PeakBytes without([&] { run_stage09(on_demand, 1); });
  EXPECT_EQ(without[MemoryCategory::GatheredParameters], 2 * s.largest_unit) << "one unit at a time";
}

}  // namespace
}  // namespace ladder::sharded_runs
