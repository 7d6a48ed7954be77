// The split of the layout over ranks (ZeRO, FSDP): every real parameter owned by exactly one rank, pieces equal and
// aligned, and the gradient norm added up shard by shard equal to the plain one where it must be.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "common/model/shard_layout.hpp"
#include "common/ops/ops.hpp"
#include "common/optim/gradient_norm.hpp"
#include "common/random.hpp"
#include "tests/test_support.hpp"

namespace ladder {
namespace {

TEST(ShardLayout, EveryRealParameterIsOwnedByExactlyOneRank) {
  for (int world : {1, 2, 3, 4}) {
    const ParameterLayout layout(named_config("tiny", 13), world);
    std::vector<int> owners(static_cast<std::size_t>(layout.padded_size()), 0);
    std::vector<int> spanned(static_cast<std::size_t>(layout.padded_size()), 0);
    for (int rank = 0; rank < world; ++rank) {
      const ShardLayout shard(layout, rank, world);
      EXPECT_EQ(shard.size() * world, layout.padded_size());
      std::int64_t shard_cursor = 0;
      for (const UnitPiece& piece : shard.pieces()) {
        EXPECT_EQ(piece.shard_offset, shard_cursor) << "pieces follow each other in the shard";
        EXPECT_EQ(piece.size, layout.units()[piece.unit].size / world);
        EXPECT_EQ(piece.layout_offset % ParameterLayout::kTensorAlignment, 0);
        shard_cursor += piece.size;
        for (std::int64_t i = 0; i < piece.size; ++i) ++owners[static_cast<std::size_t>(piece.layout_offset + i)];
      }
      EXPECT_EQ(shard_cursor, shard.size());
      for (const ShardSpan& span : shard.spans()) {
        for (std::int64_t i = 0; i < span.size; ++i) ++spanned[static_cast<std::size_t>(span.layout_offset + i)];
      }
    }
    for (int count : owners) ASSERT_EQ(count, 1) << "world " << world;
    // The spans are exactly the real parameters: each once, padding never.
    std::vector<int> real(static_cast<std::size_t>(layout.padded_size()), 0);
    for (const ParameterTensor& tensor : layout.tensors()) {
      for (std::int64_t i = 0; i < tensor.numel; ++i) real[static_cast<std::size_t>(tensor.offset + i)] = 1;
    }
    EXPECT_EQ(spanned, real) << "world " << world;
  }
}

TEST(ShardLayout, SpansKeepTheirTensorsDecayFlagAndShardPlace) {
  const ParameterLayout layout(named_config("tiny", 13), 3);
  const ShardLayout shard(layout, 2, 3);
  for (const ShardSpan& span : shard.spans()) {
    bool found = false;
    for (const ParameterTensor& tensor : layout.tensors()) {
      if (span.layout_offset >= tensor.offset && span.layout_offset + span.size <= tensor.offset + tensor.numel) {
        EXPECT_EQ(span.decays, tensor.decays) << tensor.name;
        found = true;
      }
    }
    EXPECT_TRUE(found) << "span at " << span.layout_offset << " crosses a tensor boundary";
    const UnitPiece* owner = nullptr;
    for (const UnitPiece& piece : shard.pieces()) {
      if (span.layout_offset >= piece.layout_offset && span.layout_offset < piece.layout_offset + piece.size) {
        owner = &piece;
      }
    }
    ASSERT_NE(owner, nullptr);
    EXPECT_EQ(span.shard_offset - owner->shard_offset, span.layout_offset - owner->layout_offset);
  }
}

TEST(ShardLayout, ALayoutNotPaddedForTheWorldIsRefusedByName) {
  const ParameterLayout unpadded(named_config("tiny", 13), 1);
  const std::string message = testing_support::error_message_of([&] { ShardLayout(unpadded, 0, 3); });
  EXPECT_NE(message.find("shard_multiple 3"), std::string::npos) << message;
  EXPECT_THROW(ShardLayout(ParameterLayout(named_config("tiny", 13), 2), 2, 2), LadderError);
}

std::vector<float> random_gradients(std::int64_t count, std::uint64_t seed) {
  Random random(seed);
  std::vector<float> values(static_cast<std::size_t>(count));
  // Magnitudes over many binades, so that the order of the additions matters for the last bits.
  for (float& value : values) value = static_cast<float>(random.normal() * std::pow(10.0, 6 * random.uniform() - 3));
  return values;
}

TEST(GradientNorm, ByShardsOnOneRankIsThePlainSumOverTheWholeBuffer) {
  const ParameterLayout layout(named_config("small", 16), 1);
  std::vector<float> gradients = random_gradients(layout.padded_size(), 7);
  const Tensor whole(gradients.data(), DType::F32, {layout.padded_size()});
  EXPECT_EQ(gradient_norm_by_shards(whole, layout, 1), std::sqrt(ops::sum_of_squares(whole)));
}

TEST(GradientNorm, ByShardsAddsEachRanksPiecesThenTheRanksInOrder) {
  for (int world : {2, 3, 4}) {
    const ParameterLayout layout(named_config("small", 16), world);
    std::vector<float> gradients = random_gradients(layout.padded_size(), 11);
    const Tensor whole(gradients.data(), DType::F32, {layout.padded_size()});
    // The independent answer: each rank's pieces copied end to end, summed in one pass; ranks added in order.
    double total = 0;
    for (int rank = 0; rank < world; ++rank) {
      std::vector<float> shard;
      const ShardLayout owned(layout, rank, world);
      for (const UnitPiece& piece : owned.pieces()) {
        shard.insert(shard.end(), gradients.begin() + piece.layout_offset,
                     gradients.begin() + piece.layout_offset + piece.size);
      }
      double sum = 0;
      for (float value : shard) sum += double(value) * double(value);
      total += sum;
    }
    EXPECT_EQ(gradient_norm_by_shards(whole, layout, world), std::sqrt(total)) << "world " << world;
  }
}

}  // namespace
}  // namespace ladder
