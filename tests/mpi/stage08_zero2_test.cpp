// Stage 08 under mpiexec against stage 07: the same arithmetic (identical bits), and each rank holding only the
// mean gradient of its shard.
#include <gtest/gtest.h>

#include <vector>

#include "tests/mpi/reduced_gradient_checks.hpp"
#include "tests/mpi/run_stage07.hpp"
#include "tests/mpi/run_stage08.hpp"

namespace ladder::sharded_runs {
namespace {

TEST(Stage08Zero2, SameBitsAsStage07) {
  // The same buckets on both sides: the same reduce-scatters, so the same additions at any number of ranks.
  for (std::int64_t bucket_bytes : {std::int64_t{1}, stage08::kDefaultBucketBytes}) {
    stage06::DdpSettings settings;
    settings.bucket_bytes = bucket_bytes;
    const StageRun zero2 = run_stage08(settings);
    for (double norm : zero2.norms) EXPECT_GT(norm, clipped_adamw().gradient_clip) << "clipping must be active";
    expect_identical(zero2, run_stage07(settings));
  }
}

TEST(Stage08Zero2, EachRankHoldsTheMeanGradientOfItsShard) {
  expect_mean_of_global_batch(GPTStorage{StorageOwner::Model, StorageOwner::Stage}, [](GPT& model, const Batch& batch) {
    const ShardLayout shard(model.layout(), world().rank(), world().world_size());
    stage06::DdpSettings per_unit;
    per_unit.bucket_bytes = 1;
    stage08::ShardedGradients gradients(model, world(), shard, per_unit);
    model.set_hooks(&gradients);
    model.forward(batch);
    model.backward();
    gradients.wait_all();
    std::vector<std::pair<std::int64_t, std::vector<float>>> pieces;
    for (const UnitPiece& piece : shard.pieces()) {
      pieces.emplace_back(piece.layout_offset,
                          floats_of(gradients.gradient_shard().slice(piece.shard_offset, piece.size)));
    }
    return pieces;
  });
}

TEST(Stage08Zero2, AnInjectedDelayChangesNoBit) {
  stage06::DdpSettings delayed;
  delayed.debug_delay_ms = 2;
  expect_identical(run_stage08(stage06::DdpSettings{}, 3), run_stage08(delayed, 3));
}

}  // namespace
}  // namespace ladder::sharded_runs
