#include "08_zero2/sharded_gradients.hpp"

#include "common/error.hpp"

namespace ladder::stage08 {

ShardedGradients::ShardedGradients(GPT& model, Communicator& communicator, const ShardLayout& shard,
                                   const stage06::DdpSettings& settings)
    : stage07::ReduceScatterBuckets(model, communicator, shard, settings),
      gradient_shard_storage_(shard.size() * dtype_size(model.dtype()), MemoryCategory::Gradients, model.device()),
      gradient_shard_(view_of(gradient_shard_storage_, model.dtype())) {
  LADDER_CHECK(model.storage().gradients == StorageOwner::Stage,
               "stage 08 shards the gradients, so the model must not hold a full gradient buffer: build it with "
               "GPTStorage{.gradients = StorageOwner::Stage}");
}

void ShardedGradients::before_backward(int unit) {
  const stage06::BucketSpan& bucket = bucket_of(unit);
  if (unit != bucket.last_unit) return;  // backward enters a bucket at its highest unit
  LADDER_CHECK(bucket_storage_.data() == nullptr, "bucket of units ", bucket.first_unit, "..", bucket.last_unit,
               " starts while the previous bucket's gradients are still held");
  // Zeroed on allocation: backward accumulates into it.
  bucket_storage_ = Buffer(bucket.size * dtype_size(model().dtype()), MemoryCategory::GradientBuckets,
                           model().device());
  const Tensor storage = view_of(bucket_storage_, model().dtype());
  for (int member = bucket.first_unit; member <= bucket.last_unit; ++member) {
    const ParameterUnit& whole = model().layout().units()[member];
    model().attach_unit_gradients(member, storage.slice(whole.offset - bucket.offset, whole.size));
  }
}

void ShardedGradients::bucket_packed(const stage06::BucketSpan& bucket) {
  for (int member = bucket.first_unit; member <= bucket.last_unit; ++member) model().detach_unit_gradients(member);
  bucket_storage_.release();
}

Tensor ShardedGradients::owned_gradient_piece(int unit) const {
  const UnitPiece& piece = shard().pieces()[unit];
  return gradient_shard_.slice(piece.shard_offset, piece.size);
}

}  // namespace ladder::stage08
