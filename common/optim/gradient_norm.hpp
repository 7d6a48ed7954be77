/// @file gradient_norm.hpp
/// @brief The global gradient norm added up shard by shard, so data-parallel and sharded stages clip alike.
#pragma once

#include <vector>

#include "common/model/shard_layout.hpp"
#include "common/tensor.hpp"

namespace ladder {

/// The sum of squares of one rank's gradient pieces (in unit order), each piece continuing the running sum of the
/// one before: on the CPU exactly one pass over the pieces laid end to end.
double sum_of_squares_of_pieces(const std::vector<Tensor>& pieces);

/// Rank `shard.rank()`'s pieces of whole-model gradients (the layout's padded size), as views.
std::vector<Tensor> pieces_of(Tensor gradients, const ShardLayout& shard);

/// The norm from every rank's sum of squares, added in rank order (0, 1, ..., N-1) then square-rooted.
double norm_from_rank_sums(const std::vector<double>& rank_sums);

/// The global norm of whole-model `gradients` as N ranks that each hold one shard add it up: each rank's pieces
/// summed, then the N sums in rank order. A replica holding every gradient (DDP) calls this to clip with the
/// very bits a sharded stage (ZeRO, FSDP) gets. With N = 1 it is the plain sum over the whole buffer.
double gradient_norm_by_shards(Tensor gradients, const ParameterLayout& layout, int world);

}  // namespace ladder
