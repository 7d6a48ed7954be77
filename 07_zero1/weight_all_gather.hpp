/// @file weight_all_gather.hpp
/// @brief After the sharded update: every rank's updated weights, rounded to bf16, gathered into every replica.
#pragma once

#include <vector>

#include "06_ddp/gradient_buckets.hpp"
#include "common/comm/collective_queue.hpp"
#include "common/comm/communicator.hpp"
#include "common/model/gpt.hpp"
#include "common/model/shard_layout.hpp"

namespace ladder::stage07 {

/// The second half of ZeRO-1's communication: each rank rounds its fp32 master shard into the model's working dtype
/// and an all-gather, bucket by bucket (at most two in flight), writes every rank's shard into every replica's full
/// weights. Rounding before the gather sends 2 bytes per weight instead of 4, and gives each replica exactly the
/// bits stage 06 computes when every rank rounds the whole master copy itself.
class WeightAllGather {
 public:
  /// Gathers into `model`'s own weights, in the units grouped as `buckets`.
  WeightAllGather(GPT& model, Communicator& communicator, const ShardLayout& shard,
                  std::vector<stage06::BucketSpan> buckets);
  /// Rounds `master_shard` (fp32, the shard's layout) into the working dtype and gathers all ranks' shards.
  void run(Tensor master_shard);

 private:
  GPT& model_;
  Communicator& communicator_;
  ShardLayout shard_;
  std::vector<stage06::BucketSpan> buckets_;
  CollectiveQueue queue_;
};

}  // namespace ladder::stage07
