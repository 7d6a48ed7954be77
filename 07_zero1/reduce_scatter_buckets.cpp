#include "07_zero1/reduce_scatter_buckets.hpp"

#include <chrono>
#include <iomanip>
#include <memory>
#include <sstream>
#include <thread>

#include "common/error.hpp"
#include "common/ops/ops.hpp"

namespace ladder::stage07 {

ReduceScatterBuckets::ReduceScatterBuckets(GPT& model, Communicator& communicator, const ShardLayout& shard,
                                           const stage06::DdpSettings& settings)
    : model_(model),
      communicator_(communicator),
      shard_(shard),
      settings_(settings),
      buckets_(stage06::plan_buckets(model.layout(), settings.bucket_bytes, dtype_size(settings.reduce_dtype))),
      bucket_of_unit_(model.unit_count(), -1),
      started_(buckets_.size(), 0) {
  LADDER_CHECK(shard.world() == communicator.world_size() && shard.rank() == communicator.rank(),
               "the shard is rank ", shard.rank(), " of ", shard.world(), " but the communicator is rank ",
               communicator.rank(), " of ", communicator.world_size());
  LADDER_CHECK(settings.reduce_dtype == DType::F32 || settings.reduce_dtype == model.dtype(), "gradients in ",
               dtype_name(model.dtype()), " can be reduced in F32 or in their own type, not in ",
               dtype_name(settings.reduce_dtype));
  communicator.set_debug_delay(std::chrono::milliseconds(settings.debug_delay_ms));
  for (std::size_t b = 0; b < buckets_.size(); ++b) {
    for (int unit = buckets_[b].first_unit; unit <= buckets_[b].last_unit; ++unit) {
      bucket_of_unit_[unit] = static_cast<int>(b);
    }
    units_pending_.push_back(buckets_[b].last_unit - buckets_[b].first_unit + 1);
  }
}

void ReduceScatterBuckets::after_backward(int unit) {
  const int b = bucket_of_unit_[unit];
  if (--units_pending_[b] > 0) return;
  start_reduction(buckets_[b]);
  started_[b] = 1;
}

void ReduceScatterBuckets::start_reduction(const stage06::BucketSpan& bucket) {
  const int world = shard_.world();
  const DType reduce_dtype = settings_.reduce_dtype;
  queue_.make_room();  // wait for the oldest bucket before allocating this one's buffers
  auto packed = std::make_shared<Buffer>(bucket.size * dtype_size(reduce_dtype), MemoryCategory::CommBuffers,
                                         model_.device());
  auto reduced = std::make_shared<Buffer>(bucket.size / world * dtype_size(reduce_dtype), MemoryCategory::CommBuffers,
                                          model_.device());
  const Tensor input = view_of(*packed, reduce_dtype);
  const Tensor output = view_of(*reduced, reduce_dtype);
  const std::vector<PackedPiece> pieces = packed_pieces(model_.layout(), bucket, world);
  for (const PackedPiece& piece : pieces) {  // bf16 into fp32 (or a plain copy): rounding nothing
    ops::convert(input.slice(piece.packed_offset, piece.size),
                 model_.unit_gradients(piece.unit).slice(piece.unit_offset, piece.size));
  }
  bucket_packed(bucket);
  auto pending = communicator_.reduce_scatter_async(output, input, Reduction::Average);
  const int rank = shard_.rank();
  const std::int64_t rank_start = rank * (bucket.size / world);
  queue_.push(std::move(pending), [this, pieces, output, rank, rank_start, packed, reduced] {
    for (const PackedPiece& piece : pieces) {
      if (piece.rank != rank) continue;
      // The mean is rounded into the gradients' dtype once, here, as stage 06 rounds its all-reduced mean.
      ops::convert(owned_gradient_piece(piece.unit), output.slice(piece.packed_offset - rank_start, piece.size));
    }
  });  // the lambda holds the buffers; they go when it does
}

void ReduceScatterBuckets::wait_all() {
  for (std::size_t b = 0; b < buckets_.size(); ++b) {
    LADDER_CHECK(started_[b] == 1, "bucket of units ", buckets_[b].first_unit, "..", buckets_[b].last_unit,
                 " was never reduced: backward did not complete every unit");
  }
  queue_.wait_all();
  for (std::size_t b = 0; b < buckets_.size(); ++b) {
    started_[b] = 0;
    units_pending_[b] = buckets_[b].last_unit - buckets_[b].first_unit + 1;
  }
  if (settings_.debug_delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(settings_.debug_delay_ms));
}

Tensor ReduceScatterBuckets::owned_gradient_piece(int unit) const {
  const UnitPiece& piece = shard_.pieces()[unit];
  return model_.unit_gradients(unit).slice(piece.layout_offset - model_.layout().units()[unit].offset, piece.size);
}

std::vector<Tensor> ReduceScatterBuckets::owned_gradients() const {
  std::vector<Tensor> pieces;
  for (int unit = 0; unit < model_.unit_count(); ++unit) pieces.push_back(owned_gradient_piece(unit));
  return pieces;
}

std::string ReduceScatterBuckets::describe() const {
  std::ostringstream out;
  const int count = static_cast<int>(buckets_.size());
  out << count << (count == 1 ? " bucket" : " buckets") << " of up to " << std::fixed << std::setprecision(1)
      << static_cast<double>(settings_.bucket_bytes) / (1024.0 * 1024.0) << " MiB, reduce-scattered in "
      << dtype_name(settings_.reduce_dtype) << " over " << communicator_.world_size() << " rank"
      << (communicator_.world_size() == 1 ? "" : "s") << " (" << communicator_.backend() << ")";
  return out.str();
}

}  // namespace ladder::stage07
