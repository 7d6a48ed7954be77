#include "common/optim/gradient_norm.hpp"

#include <cmath>

#include "common/ops/ops.hpp"

namespace ladder {

double sum_of_squares_of_pieces(const std::vector<Tensor>& pieces) {
  double total = 0.0;
  for (const Tensor& piece : pieces) total = ops::sum_of_squares(piece, total);
  return total;
}

std::vector<Tensor> pieces_of(Tensor gradients, const ShardLayout& shard) {
  LADDER_CHECK(gradients.numel() == shard.layout().padded_size(), "expected whole-model gradients of ",
               shard.layout().padded_size(), " elements, got ", gradients.numel());
  std::vector<Tensor> pieces;
  for (const UnitPiece& piece : shard.pieces()) pieces.push_back(gradients.slice(piece.layout_offset, piece.size));
  return pieces;
}

double norm_from_rank_sums(const std::vector<double>& rank_sums) {
  double total = 0.0;
  for (double sum : rank_sums) total += sum;
  return std::sqrt(total);
}

double gradient_norm_by_shards(Tensor gradients, const ParameterLayout& layout, int world) {
  std::vector<double> rank_sums;
  for (int rank = 0; rank < world; ++rank) {
    rank_sums.push_back(sum_of_squares_of_pieces(pieces_of(gradients, ShardLayout(layout, rank, world))));
  }
  return norm_from_rank_sums(rank_sums);
}

}  // namespace ladder
