/// @file sharded_optimizer.hpp
/// @brief Stage 07's technique: each rank keeps the fp32 master weights and Adam moments of its own shard only.
#pragma once

#include <vector>

#include "common/comm/communicator.hpp"
#include "common/memory.hpp"
#include "common/model/shard_layout.hpp"
#include "common/optim/adamw.hpp"
#include "common/tensor.hpp"

/// Stage 07: ZeRO stage 1, optimizer state sharded.
namespace ladder::stage07 {

/// Bytes per parameter each rank holds for a world of N: 2 (bf16 weights) + 2 (bf16 gradients), every one of them,
/// and 12/N: the fp32 master weights (4) and Adam's two moments (8) of its own shard. Padding (each unit rounded
/// up to a multiple of 16·N elements) is counted in the bytes the accountant reports.
inline constexpr double bytes_per_parameter(int world) { return 2 + 2 + 12.0 / world; }

/// Refuses a world size that the model cannot be split over sensibly: each unit is padded to a multiple of 16·N
/// elements, and past the point where that padding outweighs the model's real parameters, more ranks only add
/// zeros to store and send. The message gives the figures and the largest world size that works.
void require_sensible_world_size(const GPTConfig& config, int world);

/// The fp32 master weights and AdamW moments of one rank's shard (ZeRO-1's "optimizer state"): 12/N bytes per
/// parameter instead of stage 06's 12. The rank updates only its shard; an all-gather then hands every rank the
/// others' updated weights.
class ShardedOptimizer {
 public:
  /// Allocates the shard's fp32 master weights (master weights) and moments (optimizer state) on `device`.
  ShardedOptimizer(const ShardLayout& shard, const AdamWConfig& config, Device device);
  /// Sets the master shard from this rank's pieces of the whole model's `weights` (any float dtype).
  void copy_from_whole(Tensor weights);
  /// Sets the master shard from a shard-sized tensor laid out like the shard (FSDP's weight shard).
  void copy_from_shard(Tensor weights);
  /// One AdamW step of the shard, clipped with the norm over all shards. `gradients` is the whole model's (the
  /// rank reads its pieces) or shard-sized.
  void update(Tensor gradients, double learning_rate, double gradient_norm);
  /// The fp32 master weights of the shard: pieces of every unit, in unit order.
  Tensor master() const { return master_; }
  /// Which part of the layout this rank owns.
  const ShardLayout& shard() const { return shard_; }
  /// The AdamW over the shard (its moments and step count).
  const AdamW& adamw() const { return optimizer_; }
  /// The same, for a checkpoint to restore.
  AdamW& adamw() { return optimizer_; }

 private:
  ShardLayout shard_;
  Buffer master_storage_;
  Tensor master_;
  AdamW optimizer_;
};

/// The global gradient norm from each rank's pieces of the reduced gradients: every rank sums the squares of its
/// own pieces, then one all-reduce of N doubles, in which rank r fills slot r and the others add zeros, hands every
/// rank all N sums exactly; they are added in rank order. Those are the additions stage 06 makes over its whole
/// gradients, so the clip factor has the same bits at any N (an all-reduce of the sums themselves would add them in
/// whatever order the MPI library picks).
double global_gradient_norm(Communicator& communicator, const std::vector<Tensor>& owned_pieces);

}  // namespace ladder::stage07
