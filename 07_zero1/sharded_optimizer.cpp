#include "07_zero1/sharded_optimizer.hpp"

#include "common/error.hpp"
#include "common/ops/ops.hpp"
#include "common/optim/gradient_norm.hpp"

namespace ladder::stage07 {

void require_sensible_world_size(const GPTConfig& config, int world) {
  auto padding_at = [&](int ranks) {
    const ParameterLayout layout(config, ranks);
    return layout.padded_size() - layout.parameter_count();
  };
  const std::int64_t real = ParameterLayout(config, 1).parameter_count();
  if (padding_at(world) <= real) return;
  int largest = 1;
  while (padding_at(largest + 1) <= real) ++largest;
  throw LadderError(make_message("cannot shard the ", config.name, " model (", real, " parameters) over ", world,
                                 " ranks: each unit is padded to a multiple of 16 x ", world, " elements, ",
                                 padding_at(world), " zeros in all, more than the model itself; use at most ", largest,
                                 " ranks, or a larger model"));
}

namespace {

// The shard, once its world size is known to be sensible (checked before anything is allocated).
const ShardLayout& sensible(const ShardLayout& shard) {
  require_sensible_world_size(shard.layout().config(), shard.world());
  return shard;
}

}  // namespace

ShardedOptimizer::ShardedOptimizer(const ShardLayout& shard, const AdamWConfig& config, Device device)
    : shard_(sensible(shard)),
      master_storage_(shard.size() * dtype_size(DType::F32), MemoryCategory::MasterWeights, device),
      master_(view_of(master_storage_, DType::F32)),
      optimizer_(shard, config, DType::F32, device) {}

void ShardedOptimizer::copy_from_whole(Tensor weights) {
  LADDER_CHECK(weights.numel() == shard_.layout().padded_size(), "copy_from_whole expects the whole model's ",
               shard_.layout().padded_size(), " weights, got ", weights.numel());
  for (const UnitPiece& piece : shard_.pieces()) {
    ops::convert(master_.slice(piece.shard_offset, piece.size), weights.slice(piece.layout_offset, piece.size));
  }
}

void ShardedOptimizer::copy_from_shard(Tensor weights) { ops::convert(master_, weights); }

void ShardedOptimizer::update(Tensor gradients, double learning_rate, double gradient_norm) {
  optimizer_.update(master_, gradients, learning_rate, gradient_norm);
}

double global_gradient_norm(Communicator& communicator, const std::vector<Tensor>& owned_pieces) {
  std::vector<double> rank_sums(static_cast<std::size_t>(communicator.world_size()), 0.0);
  rank_sums[static_cast<std::size_t>(communicator.rank())] = sum_of_squares_of_pieces(owned_pieces);
  // x + 0 is exactly x, so whatever order the library adds in, every slot arrives bit for bit.
  communicator.all_reduce(Tensor(rank_sums.data(), DType::F64, {communicator.world_size()}), Reduction::Sum);
  return norm_from_rank_sums(rank_sums);
}

}  // namespace ladder::stage07
