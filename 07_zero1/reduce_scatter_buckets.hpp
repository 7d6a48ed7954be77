/// @file reduce_scatter_buckets.hpp
/// @brief Stage 07's reduction: each bucket of gradients is reduce-scattered as soon as backward completes it, so
/// every rank receives the mean gradient of its own shard only.
#pragma once

#include <string>
#include <vector>

#include "06_ddp/gradient_buckets.hpp"
#include "07_zero1/bucket_packing.hpp"
#include "common/comm/collective_queue.hpp"
#include "common/comm/communicator.hpp"
#include "common/model/gpt.hpp"
#include "common/model/shard_layout.hpp"
#include "common/model/unit_hooks.hpp"

namespace ladder::stage07 {

/// Hung on the model's after_backward hook like stage 06's buckets, but a complete bucket is reduce-scattered
/// (averaged) instead of all-reduced: packed rank by rank into a comm buffer of the reduction dtype, then reduced,
/// and this rank's part of the mean is written into its own gradient pieces. At most two buckets are in flight, so
/// the comm buffers stay at two buckets' worth however large the model. The same bytes cross the wire as for half of
/// an all-reduce; the other half is the all-gather of the updated weights.
class ReduceScatterBuckets : public UnitHooks {
 public:
  /// Plans the buckets (as stage 06 does) for `model`, whose layout `shard` splits; `settings` gives the bucket
  /// size, the reduction dtype and the debugging delay.
  ReduceScatterBuckets(GPT& model, Communicator& communicator, const ShardLayout& shard,
                       const stage06::DdpSettings& settings);
  /// Counts unit `unit` as done; starts its bucket's reduce-scatter when the bucket is complete.
  void after_backward(int unit) override;
  /// Waits for every bucket: this rank's gradient pieces then hold the mean over the ranks.
  void wait_all();
  /// This rank's gradient pieces, one per unit in unit order (after wait_all: reduced).
  std::vector<Tensor> owned_gradients() const;
  /// The buckets, in the order backward completes them.
  const std::vector<stage06::BucketSpan>& buckets() const { return buckets_; }
  /// The most reduce-scatters that were in flight at once.
  int most_in_flight() const { return queue_.most_in_flight(); }
  /// One line for the log: "1 bucket of up to 25.0 MiB, reduce-scattered in F32 over 2 ranks (mpi)".
  std::string describe() const;

 protected:
  /// Where this rank's reduced piece of `unit` goes: in stage 07 its piece of the model's full gradients.
  virtual Tensor owned_gradient_piece(int unit) const;
  /// Called once a bucket's gradients are packed for the reduction (stage 08 releases their storage here).
  virtual void bucket_packed(const stage06::BucketSpan& bucket) { (void)bucket; }
  /// The bucket that holds `unit`.
  const stage06::BucketSpan& bucket_of(int unit) const { return buckets_[bucket_of_unit_[unit]]; }
  /// The model whose gradients are reduced.
  GPT& model() const { return model_; }
  /// Which part of the layout this rank owns.
  const ShardLayout& shard() const { return shard_; }
  /// The ranks' communicator.
  Communicator& communicator() const { return communicator_; }

 private:
  void start_reduction(const stage06::BucketSpan& bucket);

  GPT& model_;
  Communicator& communicator_;
  ShardLayout shard_;
  stage06::DdpSettings settings_;
  std::vector<stage06::BucketSpan> buckets_;
  std::vector<int> bucket_of_unit_;
  std::vector<int> units_pending_;  // per bucket: units whose gradients are not complete yet this step
  std::vector<int> started_;        // per bucket: 1 once its reduce-scatter has started this step
  CollectiveQueue queue_;
};

}  // namespace ladder::stage07
