#include "09_fsdp/fully_sharded_units.hpp"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <sstream>

#include "common/error.hpp"
#include "common/ops/ops.hpp"

namespace ladder::stage09 {

namespace {

// FSDP reduces each unit's gradients as soon as they are complete: a bucket of one element holds one unit.
stage06::DdpSettings one_unit_per_bucket(stage06::DdpSettings reduction) {
  reduction.bucket_bytes = 1;
  return reduction;
}

}  // namespace

void FsdpSettings::add_flags(CLI::App& app) {
  app.add_option("--reshard-after-forward", reshard_after_forward,
                 "Free each unit's gathered weights after its forward and gather them again for backward "
                 "(false: keep them, one all-gather fewer, the whole model's weights held at the end of forward)")
      ->group("Fully sharded");
  app.add_option("--prefetch", prefetch,
                 "Start the next unit's all-gather before the current unit computes (false: gather on demand)")
      ->group("Fully sharded");
  app.add_option("--timeline", timeline_path,
                 "Write the gather/compute/free events of one step as JSON lines (scripts/fsdp_timeline.py draws them)")
      ->group("Fully sharded");
  app.add_option("--timeline-step", timeline_step, "The step --timeline records (1-based)")
      ->check(CLI::PositiveNumber)
      ->group("Fully sharded");
  reduction.add_reduction_flags(app);
}

std::string FsdpSettings::describe_policy(DType parameter_dtype) const {
  std::ostringstream out;
  out << "MixedPrecision(param_dtype=" << (parameter_dtype == DType::BF16 ? "bfloat16" : dtype_name(parameter_dtype))
      << ", reduce_dtype=" << (reduction.reduce_dtype == DType::F32 ? "float32" : "bfloat16")
      << "), fp32 master weights and Adam moments sharded; sharding "
      << (reshard_after_forward ? "FULL_SHARD (reshard after forward)" : "SHARD_GRAD_OP (no reshard after forward)")
      << ", prefetch " << (prefetch ? "on (forward and backward)" : "off");
  return out.str();
}

FullyShardedUnits::FullyShardedUnits(GPT& model, Communicator& communicator, const ShardLayout& shard,
                                     const FsdpSettings& settings)
    : stage08::ShardedGradients(model, communicator, shard, one_unit_per_bucket(settings.reduction)),
      settings_(settings),
      weight_shard_storage_(shard.size() * dtype_size(model.dtype()), MemoryCategory::Parameters, model.device()),
      weight_shard_(view_of(weight_shard_storage_, model.dtype())),
      gathered_(static_cast<std::size_t>(model.unit_count())),
      pending_(static_cast<std::size_t>(model.unit_count())) {
  LADDER_CHECK(model.storage().parameters == StorageOwner::Stage,
               "stage 09 shards the weights, so the model must not hold a full weight buffer: build it with "
               "GPTStorage{.parameters = StorageOwner::Stage, .gradients = StorageOwner::Stage}");
}

std::string FullyShardedUnits::describe() const {
  std::ostringstream out;
  out << model().unit_count() << " units, each reduce-scattered in " << dtype_name(settings_.reduction.reduce_dtype)
      << " as soon as its gradients are complete, over " << communicator().world_size() << " rank"
      << (communicator().world_size() == 1 ? "" : "s") << " (" << communicator().backend() << ")";
  return out.str();
}

void FullyShardedUnits::issue_gather(int unit) {
  const ParameterUnit& whole = model().layout().units()[unit];
  gathered_[unit] = Buffer(whole.size * dtype_size(model().dtype()), MemoryCategory::GatheredParameters,
                           model().device());
  most_gathered_ = std::max(most_gathered_, ++units_gathered_);
  const UnitPiece& piece = shard().pieces()[unit];
  schedule_.note(FsdpEventKind::GatherIssued, unit);
  // Rank r's piece lands at r·(size/N) of the unit: the unit's own layout, so no unpacking is needed.
  pending_[unit] = communicator().all_gather_async(view_of(gathered_[unit], model().dtype()),
                                                   weight_shard_.slice(piece.shard_offset, piece.size));
}

// Unit `unit` is needed now: its all-gather is waited for (issued first if nobody has), then the `next` unit's is
// issued so that it travels while `unit` computes.
void FullyShardedUnits::make_available(int unit, int next) {
  if (!held(unit)) issue_gather(unit);
  if (pending_[unit]) {
    pending_[unit]->wait();
    pending_[unit].reset();
    schedule_.note(FsdpEventKind::GatherWaited, unit);
  }
  model().attach_unit_parameters(unit, view_of(gathered_[unit], model().dtype()));
  if (settings_.prefetch && next >= 0 && next < model().unit_count() && !held(next)) issue_gather(next);
}

void FullyShardedUnits::release(int unit) {
  if (!held(unit)) return;
  LADDER_CHECK(!pending_[unit], "unit ", unit, "'s weights are freed while their all-gather is still in flight");
  model().detach_unit_parameters(unit);
  gathered_[unit].release();
  --units_gathered_;
  schedule_.note(FsdpEventKind::Freed, unit);
}

void FullyShardedUnits::before_forward(int unit) {
  make_available(unit, unit + 1);
  schedule_.note(FsdpEventKind::Forward, unit);
}

void FullyShardedUnits::after_forward(int unit) {
  if (settings_.reshard_after_forward) release(unit);
}

void FullyShardedUnits::before_backward(int unit) {
  make_available(unit, unit - 1);
  stage08::ShardedGradients::before_backward(unit);  // the unit's gradient storage
  schedule_.note(FsdpEventKind::Backward, unit);
}

void FullyShardedUnits::after_backward(int unit) {
  stage08::ShardedGradients::after_backward(unit);  // one unit per bucket: its reduce-scatter starts now
  schedule_.note(FsdpEventKind::ReduceScatterIssued, unit);
  release(unit);
}

void FullyShardedUnits::lend_for_initialization(int unit) {
  const ParameterUnit& whole = model().layout().units()[unit];
  gathered_[unit] = Buffer(whole.size * dtype_size(model().dtype()), MemoryCategory::GatheredParameters,
                           model().device());
  most_gathered_ = std::max(most_gathered_, ++units_gathered_);
  model().attach_unit_parameters(unit, view_of(gathered_[unit], model().dtype()));
}

void FullyShardedUnits::keep_after_initialization(int unit) {
  const UnitPiece& piece = shard().pieces()[unit];
  const ParameterUnit& whole = model().layout().units()[unit];
  ops::copy(weight_shard_.slice(piece.shard_offset, piece.size),
            model().unit_parameters(unit).slice(piece.layout_offset - whole.offset, piece.size));
  release(unit);
}

void FullyShardedUnits::take_updated(Tensor master) {
  for (int unit = 0; unit < model().unit_count(); ++unit) {
    // A unit still gathered (kept since an evaluation's forward without resharding) would now be stale.
    release(unit);
  }
  ops::convert(weight_shard_, master);  // fp32 -> bf16: the one rounding, as every earlier stage makes it
}

}  // namespace ladder::stage09
