// Stage 09 under mpiexec against stage 08: the same arithmetic (identical bits) with prefetch and resharding on or
// off, the schedule of gathers and frees the README draws, and 1.5 times stage 06's bytes on the wire.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/mpi/run_stage06.hpp"
#include "tests/mpi/run_stage08.hpp"
#include "tests/mpi/run_stage09.hpp"

namespace ladder::sharded_runs {
namespace {

stage09::FsdpSettings fsdp(bool prefetch, bool reshard_after_forward) {
  stage09::FsdpSettings settings;
  settings.prefetch = prefetch;
  settings.reshard_after_forward = reshard_after_forward;
  return settings;
}

TEST(Stage09Fsdp, SameBitsAsStage08WithPrefetchAndReshardingOnOrOff) {
  // Stage 08 with one unit per bucket reduce-scatters exactly what FSDP does, unit by unit.
  stage06::DdpSettings per_unit;
  per_unit.bucket_bytes = 1;
  const StageRun zero2 = run_stage08(per_unit);
  for (bool prefetch : {true, false}) {
    for (bool reshard : {true, false}) {
      SCOPED_TRACE("prefetch " + std::to_string(prefetch) + ", reshard after forward " + std::to_string(reshard));
      expect_identical(run_stage09(fsdp(prefetch, reshard)), zero2);
    }
  }
}

TEST(Stage09Fsdp, OneStepFollowsTheReadmesSchedule) {
  // Units 0 (embeddings), 1 and 2 (blocks), 3 (head). With prefetch the next unit's gather is issued before the
  // current unit computes; with resharding every unit is freed after its forward and gathered again for backward.
  std::vector<std::string> schedule;
  run_stage09(fsdp(true, true), 2, &schedule);
  const std::vector<std::string> prefetched = {
      "gather issued 0", "gather waited 0", "gather issued 1", "forward 0", "freed 0",
      "gather waited 1", "gather issued 2", "forward 1", "freed 1",
      "gather waited 2", "gather issued 3", "forward 2", "freed 2",
      "gather waited 3", "forward 3", "freed 3",
      "gather issued 3", "gather waited 3", "gather issued 2", "backward 3", "reduce-scatter issued 3", "freed 3",
      "gather waited 2", "gather issued 1", "backward 2", "reduce-scatter issued 2", "freed 2",
      "gather waited 1", "gather issued 0", "backward 1", "reduce-scatter issued 1", "freed 1",
      "gather waited 0", "backward 0", "reduce-scatter issued 0", "freed 0"};
  EXPECT_EQ(schedule, prefetched);
  run_stage09(fsdp(false, true), 2, &schedule);
  const std::vector<std::string> on_demand = {
      "gather issued 0", "gather waited 0", "forward 0", "freed 0",
      "gather issued 1", "gather waited 1", "forward 1", "freed 1",
      "gather issued 2", "gather waited 2", "forward 2", "freed 2",
      "gather issued 3", "gather waited 3", "forward 3", "freed 3",
      "gather issued 3", "gather waited 3", "backward 3", "reduce-scatter issued 3", "freed 3",
      "gather issued 2", "gather waited 2", "backward 2", "reduce-scatter issued 2", "freed 2",
      "gather issued 1", "gather waited 1", "backward 1", "reduce-scatter issued 1", "freed 1",
      "gather issued 0", "gather waited 0", "backward 0", "reduce-scatter issued 0", "freed 0"};
  EXPECT_EQ(schedule, on_demand);
  run_stage09(fsdp(true, false), 2, &schedule);
  const std::vector<std::string> kept = {
      "gather issued 0", "gather waited 0", "gather issued 1", "forward 0",
      "gather waited 1", "gather issued 2", "forward 1",
      "gather waited 2", "gather issued 3", "forward 2",
      "gather waited 3", "forward 3",
      "backward 3", "reduce-scatter issued 3", "freed 3",
      "backward 2", "reduce-scatter issued 2", "freed 2",
      "backward 1", "reduce-scatter issued 1", "freed 1",
      "backward 0", "reduce-scatter issued 0", "freed 0"};
  EXPECT_EQ(schedule, kept);
}

TEST(Stage09Fsdp, TwoAllGathersAndAReduceScatterAreOneAndAHalfAllReduces) {
  const int N = world().world_size();
  const std::int64_t padded = ParameterLayout(tiny_config(), N).padded_size();
  const double share = (N - 1.0) / N;
  auto ring = [](const CommStats& stats, Collective collective) {
    return stats.ring_bytes[static_cast<int>(collective)];
  };
  stage09::FsdpSettings bf16 = fsdp(true, true);
  bf16.reduction.reduce_dtype = DType::BF16;
  stage06::DdpSettings ddp_bf16;
  ddp_bf16.reduce_dtype = DType::BF16;
  const double all_reduce = ring(run_stage06(ddp_bf16, false, 1).last_step, Collective::AllReduce);
  const CommStats fsdp_step = run_stage09(bf16, 1).last_step;
  EXPECT_EQ(ring(fsdp_step, Collective::AllGather), 2 * share * 2 * padded) << "every unit gathered twice";
  EXPECT_EQ(ring(fsdp_step, Collective::ReduceScatter), share * 2 * padded);
  EXPECT_EQ(ring(fsdp_step, Collective::AllGather) + ring(fsdp_step, Collective::ReduceScatter), 1.5 * all_reduce);
  stage09::FsdpSettings kept = bf16;
  kept.reshard_after_forward = false;
  EXPECT_EQ(ring(run_stage09(kept, 1).last_step, Collective::AllGather), share * 2 * padded)
      << "without resharding, one gather per unit per step";
}

TEST(Stage09Fsdp, AnInjectedDelayChangesNoBit) {
  stage09::FsdpSettings delayed = fsdp(true, true);
  delayed.reduction.debug_delay_ms = 2;
  expect_identical(run_stage09(fsdp(true, true), 3), run_stage09(delayed, 3));
}

}  // namespace
}  // namespace ladder::sharded_runs
