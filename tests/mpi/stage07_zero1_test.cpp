// Stage 07 under mpiexec against stage 06: the same arithmetic (identical bits), the mean gradient of each rank's
// shard, the bytes on the wire, and the memory each rank holds.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "common/random.hpp"

#include "tests/mpi/reduced_gradient_checks.hpp"
#include "tests/mpi/run_stage06.hpp"
#include "tests/mpi/run_stage07.hpp"

namespace ladder::sharded_runs {
namespace {

TEST(Stage07Zero1, SameBitsAsStage06WithItsAllReduceComposedOfReduceScatterAndAllGather) {
  const StageRun zero1 = run_stage07(stage06::DdpSettings{});
  const StageRun ddp = run_stage06(stage06::DdpSettings{}, /*composed=*/true);
  for (double norm : zero1.norms) EXPECT_GT(norm, clipped_adamw().gradient_clip) << "clipping must be active";
  expect_identical(zero1, ddp);
}

TEST(Stage07Zero1, SameBitsAsStage06ItselfAtTwoRanksElseWithinTolerance) {
  const StageRun zero1 = run_stage07(stage06::DdpSettings{});
  const StageRun ddp = run_stage06(stage06::DdpSettings{});
  if (world().world_size() == 2) {
    expect_identical(zero1, ddp);  // a + b is the same sum in any order
    return;
  }
  // At 4 ranks MPI's all-reduce may add the four contributions in another order than its reduce-scatter; the fp32
  // means then differ in the last bit now and then, which can flip a bf16 rounding: 1e-6 relative on the weights.
  for (std::size_t i = 0; i < ddp.master.size(); ++i) {
    ASSERT_NEAR(zero1.master[i], ddp.master[i], 1e-6 * (1 + std::abs(ddp.master[i]))) << i;
  }
}

TEST(Stage07Zero1, TheGlobalNormHasTheBitsOfStage06sShardByShardSum) {
  // Gradients over twelve binades, where the order of the four ranks' additions shows in the last bits: the norm
  // each rank gets from its own pieces must be what a replica holding everything computes (stage 06).
  const ParameterLayout layout(tiny_config(), world().world_size());
  const ShardLayout shard(layout, world().rank(), world().world_size());
  int differing = 0;
  for (std::uint64_t trial = 0; trial < 64; ++trial) {
    Random random(trial);
    std::vector<float> gradients(static_cast<std::size_t>(layout.padded_size()));
    for (float& value : gradients) value = static_cast<float>(random.normal() * std::pow(2.0, 40 * random.uniform() - 20));
    const Tensor whole(gradients.data(), DType::F32, {layout.padded_size()});
    differing += stage07::global_gradient_norm(world(), pieces_of(whole, shard)) !=
                 gradient_norm_by_shards(whole, layout, world().world_size());
  }
  EXPECT_EQ(differing, 0) << "of 64 norms differ from stage 06's";
}

TEST(Stage07Zero1, EachRankHoldsTheMeanGradientOfItsShard) {
  expect_mean_of_global_batch(GPTStorage{}, [](GPT& model, const Batch& batch) {
    const ShardLayout shard(model.layout(), world().rank(), world().world_size());
    stage07::ReduceScatterBuckets gradients(model, world(), shard, stage06::DdpSettings{});
    model.set_hooks(&gradients);
    model.forward(batch);
    model.zero_gradients();
    model.backward();
    gradients.wait_all();
    std::vector<std::pair<std::int64_t, std::vector<float>>> pieces;
    for (const UnitPiece& piece : shard.pieces()) {
      pieces.emplace_back(piece.layout_offset, floats_of(gradients.owned_gradients()[piece.unit]));
    }
    return pieces;
  });
}

TEST(Stage06Ddp, EveryRankHoldsTheMeanGradientOfTheGlobalBatch) {
  expect_mean_of_global_batch(GPTStorage{}, [](GPT& model, const Batch& batch) {
    stage06::GradientBuckets buckets(model, world(), stage06::DdpSettings{});
    model.set_hooks(&buckets);
    model.forward(batch);
    model.zero_gradients();
    model.backward();
    buckets.wait_all();
    return std::vector<std::pair<std::int64_t, std::vector<float>>>{{0, floats_of(model.gradients())}};
  });
}

TEST(Stage07Zero1, ReduceScatterPlusAllGatherSendWhatTheAllReduceSent) {
  const int N = world().world_size();
  const std::int64_t padded = ParameterLayout(tiny_config(), N).padded_size();
  const double share = (N - 1.0) / N;  // 1/2 or 3/4: exact in binary, so the sums below are exact
  auto ring = [](const CommStats& stats, Collective collective) {
    return stats.ring_bytes[static_cast<int>(collective)];
  };
  // One element type throughout: bf16 gradients reduced in bf16, bf16 weights gathered.
  stage06::DdpSettings bf16;
  bf16.reduce_dtype = DType::BF16;
  const CommStats ddp = run_stage06(bf16, false, 1).last_step;
  const CommStats zero1 = run_stage07(bf16, 1).last_step;
  EXPECT_EQ(ring(ddp, Collective::AllReduce), 2 * share * 2 * padded);
  EXPECT_EQ(ring(zero1, Collective::ReduceScatter) + ring(zero1, Collective::AllGather),
            ring(ddp, Collective::AllReduce));
  // Besides, one all-reduce of N doubles: each rank's sum of squares, for the global norm.
  EXPECT_EQ(zero1.logical_bytes[static_cast<int>(Collective::AllReduce)], 8 * N);
  // The default reduces in fp32 (4 bytes a gradient) but gathers bf16 weights (2): 6 bytes a parameter against
  // stage 06's 8, because the weights come back already rounded.
  const CommStats fp32 = run_stage07(stage06::DdpSettings{}, 1).last_step;
  EXPECT_EQ(ring(fp32, Collective::ReduceScatter), share * 4 * padded);
  EXPECT_EQ(ring(fp32, Collective::AllGather), share * 2 * padded);
}

TEST(Stage07Zero1, AnInjectedDelayChangesNoBit) {
  stage06::DdpSettings per_unit, delayed;
  per_unit.bucket_bytes = 1;
  delayed.bucket_bytes = 1;
  delayed.debug_delay_ms = 2;
  expect_identical(run_stage07(per_unit, 3), run_stage07(delayed, 3));
}

}  // namespace
}  // namespace ladder::sharded_runs
