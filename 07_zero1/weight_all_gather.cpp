#include "07_zero1/weight_all_gather.hpp"

#include <memory>

#include "07_zero1/bucket_packing.hpp"
#include "common/ops/ops.hpp"

namespace ladder::stage07 {

WeightAllGather::WeightAllGather(GPT& model, Communicator& communicator, const ShardLayout& shard,
                                 std::vector<stage06::BucketSpan> buckets)
    : model_(model), communicator_(communicator), shard_(shard), buckets_(std::move(buckets)) {}

void WeightAllGather::run(Tensor master_shard) {
  const int world = shard_.world();
  const DType dtype = model_.dtype();
  for (const stage06::BucketSpan& bucket : buckets_) {
    queue_.make_room();
    // This rank's part of the bucket is a consecutive run of its shard (see packed_pieces).
    const std::int64_t per_rank = bucket.size / world;
    auto send = std::make_shared<Buffer>(per_rank * dtype_size(dtype), MemoryCategory::CommBuffers, model_.device());
    auto receive = std::make_shared<Buffer>(bucket.size * dtype_size(dtype), MemoryCategory::CommBuffers,
                                            model_.device());
    const Tensor input = view_of(*send, dtype);
    const Tensor output = view_of(*receive, dtype);
    ops::convert(input, master_shard.slice(bucket.offset / world, per_rank));  // fp32 -> bf16: the one rounding
    auto pending = communicator_.all_gather_async(output, input);
    queue_.push(std::move(pending), [this, bucket, world, output, send, receive] {
      for (const PackedPiece& piece : packed_pieces(model_.layout(), bucket, world)) {
        ops::copy(model_.unit_parameters(piece.unit).slice(piece.unit_offset, piece.size),
                  output.slice(piece.packed_offset, piece.size));
      }
    });
  }
  queue_.wait_all();
}

}  // namespace ladder::stage07
