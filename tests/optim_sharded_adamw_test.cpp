// AdamW over one rank's shard (ZeRO): N shard optimizers, each given the global gradient norm, update exactly the
// bits the whole-model optimizer updates, whether they read whole-model or shard-sized gradients.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "common/optim/adamw.hpp"
#include "common/optim/gradient_norm.hpp"
#include "common/random.hpp"
#include "tests/test_support.hpp"

namespace ladder {
namespace {

std::vector<float> draw(std::int64_t count, std::uint64_t seed, double scale) {
  Random random(seed);
  std::vector<float> values(static_cast<std::size_t>(count));
  for (float& value : values) value = static_cast<float>(scale * random.normal());
  return values;
}

// The layout's real parameters get values; padding stays zero, as in a model.
std::vector<float> real_values(const ParameterLayout& layout, std::uint64_t seed, double scale) {
  std::vector<float> values(static_cast<std::size_t>(layout.padded_size()), 0.0f);
  const std::vector<float> drawn = draw(layout.padded_size(), seed, scale);
  for (const ParameterTensor& tensor : layout.tensors()) {
    std::copy(drawn.begin() + tensor.offset, drawn.begin() + tensor.offset + tensor.numel,
              values.begin() + tensor.offset);
  }
  return values;
}

Tensor view(std::vector<float>& values) { return Tensor(values.data(), DType::F32, {std::int64_t(values.size())}); }

TEST(ShardedAdamW, ShardsTogetherUpdateTheSameBitsAsTheWholeModel) {
  for (int world : {1, 2, 3, 4}) {
    for (bool shard_sized_gradients : {false, true}) {
      const ParameterLayout layout(named_config("tiny", 13), world);
      std::vector<float> weights = real_values(layout, 1, 0.02);
      const AdamWConfig config;  // clipping at 1: the gradients below have a norm far above it, so it is active
      AdamW whole(layout, config);
      std::vector<float> expected = weights;
      std::vector<AdamW> shards;
      std::vector<std::vector<float>> shard_weights;
      for (int rank = 0; rank < world; ++rank) {
        const ShardLayout shard(layout, rank, world);
        shards.emplace_back(shard, config);
        shard_weights.emplace_back();
        for (const UnitPiece& piece : shard.pieces()) {
          shard_weights.back().insert(shard_weights.back().end(), weights.begin() + piece.layout_offset,
                                      weights.begin() + piece.layout_offset + piece.size);
        }
      }
      for (int step = 0; step < 3; ++step) {
        std::vector<float> gradients = real_values(layout, 100 + step, 1.0);
        const double norm = gradient_norm_by_shards(view(gradients), layout, world);
        ASSERT_GT(norm, 10.0);
        whole.update(view(expected), view(gradients), 1e-2, norm);
        for (int rank = 0; rank < world; ++rank) {
          const ShardLayout shard(layout, rank, world);
          std::vector<float> shard_gradients;
          for (const UnitPiece& piece : shard.pieces()) {
            shard_gradients.insert(shard_gradients.end(), gradients.begin() + piece.layout_offset,
                                   gradients.begin() + piece.layout_offset + piece.size);
          }
          shards[rank].update(view(shard_weights[rank]), shard_sized_gradients ? view(shard_gradients) : view(gradients),
                              1e-2, norm);
        }
      }
      for (int rank = 0; rank < world; ++rank) {
        const ShardLayout shard(layout, rank, world);
        for (const UnitPiece& piece : shard.pieces()) {
          for (std::int64_t i = 0; i < piece.size; ++i) {
            ASSERT_EQ(shard_weights[rank][piece.shard_offset + i], expected[piece.layout_offset + i])
                << "world " << world << ", rank " << rank << ", element " << piece.layout_offset + i;
          }
        }
      }
    }
  }
}

TEST(ShardedAdamW, AShardCannotMeasureTheNormAlone) {
  const ParameterLayout layout(named_config("tiny", 13), 2);
  AdamW shard(ShardLayout(layout, 1, 2), AdamWConfig{});
  std::vector<float> weights(static_cast<std::size_t>(shard.size())), gradients(weights.size());
  const std::string message = testing_support::error_message_of([&] { shard.step(view(weights), view(gradients), 1e-3); });
  EXPECT_NE(message.find("norm over all shards"), std::string::npos) << message;
  EXPECT_THROW(shard.update(view(weights), view(gradients = std::vector<float>(7)), 1e-3, 1.0), LadderError);
}

TEST(ShardedAdamW, AShardHoldsMomentsForItsShareOnly) {
  const ParameterLayout layout(named_config("small", 16), 4);
  const MemoryAccountant before = memory_accountant();
  AdamW shard(ShardLayout(layout, 3, 4), AdamWConfig{});
  const std::int64_t added = memory_accountant().usage(Device::CPU, MemoryCategory::OptimizerState).current -
                             before.usage(Device::CPU, MemoryCategory::OptimizerState).current;
  EXPECT_EQ(added, 2 * 4 * layout.padded_size() / 4);
}

}  // namespace
}  // namespace ladder
