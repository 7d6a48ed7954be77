/// @file sharded_gradients.hpp
/// @brief Stage 08's technique: gradients sharded too. A bucket's full gradients exist only while backward fills
/// them; once reduce-scattered, each rank keeps the mean of its own shard and the full storage is given back.
#pragma once

#include <vector>

#include "07_zero1/reduce_scatter_buckets.hpp"
#include "common/memory.hpp"

/// Stage 08: ZeRO stage 2, optimizer state and gradients sharded.
namespace ladder::stage08 {

/// Bytes per parameter each rank holds for a world of N: 2 (bf16 weights, all of them) + (2 + 12)/N: the bf16
/// gradients, fp32 master weights and Adam moments of its own shard. On top, while backward runs, the full
/// gradients of the buckets in flight (the memory table's "gradient buckets" line).
inline constexpr double bytes_per_parameter(int world) { return 2 + (2.0 + 12.0) / world; }

/// The bucket size stage 08 starts from: 0.5 MiB of the reduction dtype. ZeRO-2 saves the model's gradients minus
/// the buckets in flight, so a bucket of DDP's 25 MiB, larger than the whole small model, would save nothing; half
/// a MiB holds about one block of the small model, as the lecture's layer-by-layer walk does.
inline constexpr std::int64_t kDefaultBucketBytes = 512 * 1024;

/// Stage 07's reduce-scatter buckets with the gradients' storage lent bucket by bucket: before backward reaches a
/// bucket, its units get fresh, zeroed full-size storage (gradient buckets); once the bucket is packed for the
/// reduce-scatter that storage is freed, and the reduced mean lands in this rank's gradient shard (gradients, 2/N
/// bytes per parameter), which is all the optimizer reads. The model must leave its gradients to the stage
/// (GPTStorage{.gradients = StorageOwner::Stage}).
class ShardedGradients : public stage07::ReduceScatterBuckets {
 public:
  /// Plans the buckets and allocates this rank's gradient shard (bf16, zero).
  ShardedGradients(GPT& model, Communicator& communicator, const ShardLayout& shard,
                   const stage06::DdpSettings& settings);
  /// Lends the bucket of `unit` its full-size storage when backward enters the bucket.
  void before_backward(int unit) override;
  /// This rank's reduced gradients, laid out like its shard (after wait_all).
  Tensor gradient_shard() const { return gradient_shard_; }

 protected:
  /// This rank's piece of `unit` in the gradient shard.
  Tensor owned_gradient_piece(int unit) const override;
  /// Takes the bucket's storage back from the model and frees it: it has been copied into the comm buffer.
  void bucket_packed(const stage06::BucketSpan& bucket) override;

 private:
  Buffer gradient_shard_storage_;
  Tensor gradient_shard_;
  Buffer bucket_storage_;  // the full gradients of the bucket backward is filling now (one at a time)
};

}  // namespace ladder::stage08
