// Stage 06's step as its main.cpp takes it, for the tests of the stages built on it; and, for bit-exact comparisons
// at more than two ranks, the same stage with its all-reduce built from a reduce-scatter and an all-gather.
#pragma once

#include <memory>

#include "05_bf16/bf16_training.hpp"
#include "06_ddp/gradient_buckets.hpp"
#include "07_zero1/bucket_packing.hpp"
#include "common/comm/collective_queue.hpp"
#include "common/optim/gradient_norm.hpp"
#include "tests/mpi/sharded_run_support.hpp"

namespace ladder::sharded_runs {

/// Stage 06 with an all-reduce composed of a reduce-scatter of each packed bucket and an all-gather of the means:
/// the order of additions of stages 07-09, and otherwise stage 06 (every rank ends with the whole mean gradient).
/// MPI may add in another order in a plain all-reduce at 3+ ranks, so this is the bit-exact reference there.
class ComposedAllReduce : public UnitHooks {
 public:
  ComposedAllReduce(GPT& model, Communicator& communicator, const stage06::DdpSettings& settings)
      : model_(model),
        communicator_(communicator),
        buckets_(stage06::plan_buckets(model.layout(), settings.bucket_bytes, dtype_size(settings.reduce_dtype))),
        dtype_(settings.reduce_dtype) {}
  void after_backward(int unit) override {
    for (const stage06::BucketSpan& bucket : buckets_) {
      if (bucket.first_unit == unit) reduce(bucket);  // backward completes a bucket at its lowest unit
    }
  }

 private:
  void reduce(const stage06::BucketSpan& bucket) {
    const int world = communicator_.world_size();
    Buffer packed(bucket.size * dtype_size(dtype_), MemoryCategory::CommBuffers);
    Buffer mine(bucket.size / world * dtype_size(dtype_), MemoryCategory::CommBuffers);
    const auto pieces = stage07::packed_pieces(model_.layout(), bucket, world);
    for (const auto& piece : pieces) {
      ops::convert(view_of(packed, dtype_).slice(piece.packed_offset, piece.size),
                   model_.unit_gradients(piece.unit).slice(piece.unit_offset, piece.size));
    }
    communicator_.reduce_scatter(view_of(mine, dtype_), view_of(packed, dtype_), Reduction::Average);
    communicator_.all_gather(view_of(packed, dtype_), view_of(mine, dtype_));
    for (const auto& piece : pieces) {
      ops::convert(model_.unit_gradients(piece.unit).slice(piece.unit_offset, piece.size),
                   view_of(packed, dtype_).slice(piece.packed_offset, piece.size));
    }
  }
  GPT& model_;
  Communicator& communicator_;
  std::vector<stage06::BucketSpan> buckets_;
  DType dtype_;
};

/// Trains `steps` steps of stage 06 (bf16, master weights, buckets) on this rank's rows; `composed` swaps its
/// all-reduce for ComposedAllReduce.
inline StageRun run_stage06(const stage06::DdpSettings& settings, bool composed = false, int steps = kSteps) {
  Communicator& comm = world();
  stage05::Bf16Training training(tiny_config(), clipped_adamw(), kRowsPerRank, kSequenceLength, Device::CPU,
                                 comm.world_size());
  GPT& model = training.model;
  model.initialize(11);
  training.master.copy_from(model);
  std::unique_ptr<UnitHooks> hooks;
  stage06::GradientBuckets* buckets = nullptr;
  if (composed) {
    hooks = std::make_unique<ComposedAllReduce>(model, comm, settings);
  } else {
    auto owned = std::make_unique<stage06::GradientBuckets>(model, comm, settings);
    buckets = owned.get();
    hooks = std::move(owned);
  }
  model.set_hooks(hooks.get());
  StageRun run = record_steps(steps, [&](const Batch& batch) {
    const double loss = model.forward(batch);
    model.zero_gradients();
    model.backward();
    if (buckets != nullptr) buckets->wait_all();
    const double norm = gradient_norm_by_shards(model.gradients(), model.layout(), comm.world_size());
    training.master.step_with_norm(training.optimizer, model, kLearningRate, norm);
    return StepResult{loss, norm};
  });
  run.master = floats_of(training.master.weights());
  return run;
}

}  // namespace ladder::sharded_runs
