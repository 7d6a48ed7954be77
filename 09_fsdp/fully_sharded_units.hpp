/// @file fully_sharded_units.hpp
/// @brief Stage 09's technique: the weights sharded too, each unit gathered just before it is used and freed after,
/// as PyTorch's FullyShardedDataParallel does.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "08_zero2/sharded_gradients.hpp"
#include "09_fsdp/fsdp_schedule.hpp"
#include "common/memory.hpp"

namespace CLI {
class App;
}

/// Stage 09: fully sharded data parallel (ZeRO stage 3).
namespace ladder::stage09 {

/// Bytes per parameter each rank holds for a world of N: (2 + 2 + 12)/N, its shard of the bf16 weights, the bf16
/// gradients, the fp32 master weights and Adam's moments. On top, for a while: the gathered units' whole weights
/// ("gathered weights") and the gradients of the unit backward is computing ("gradient buckets").
inline constexpr double bytes_per_parameter(int world) { return (2.0 + 2.0 + 12.0) / world; }

/// FSDP's knobs, named after PyTorch's where it has them.
struct FsdpSettings {
  /// The reduction (--reduce-dtype, fp32 by default as FSDP's MixedPrecision(reduce_dtype=float32)) and
  /// --debug-delay-ms; FSDP reduces unit by unit, so there is no bucket size.
  stage06::DdpSettings reduction;
  /// Free each unit's gathered weights after its forward and gather them again for its backward (PyTorch's
  /// reshard_after_forward, FULL_SHARD). Off keeps every unit gathered from forward to backward (SHARD_GRAD_OP):
  /// one all-gather fewer per step, for the whole model's weights in memory at the end of forward.
  bool reshard_after_forward = true;
  /// Issue the all-gather of the next unit (u+1 in forward, u-1 in backward) before unit u computes, so
  /// communication overlaps compute (PyTorch's forward_prefetch / BACKWARD_PRE). At most two units are gathered.
  bool prefetch = true;
  /// --timeline FILE: the hook events of one step (timeline_step) as JSON lines, for scripts/fsdp_timeline.py.
  std::string timeline_path;
  /// Which step (1-based) --timeline records; the first steps warm up, so the default is the third.
  std::int64_t timeline_step = 3;
  /// Adds --reshard-after-forward, --prefetch, --timeline, --reduce-dtype and --debug-delay-ms.
  void add_flags(CLI::App& app);
  /// The mixed-precision policy and sharding settings in PyTorch's words, for the log.
  std::string describe_policy(DType parameter_dtype) const;
};

/// Stage 08's sharded gradients, with one unit per bucket, plus the weights sharded: this rank keeps only its
/// piece of every unit's bf16 weights. Hung on all four unit hooks:
/// - before_forward(u) and before_backward(u): wait for unit u's all-gather (issuing it first unless it was
///   prefetched or is still gathered), then issue the next unit's, then lend u's whole weights to the model;
/// - after_forward(u): free u's gathered weights (when resharding after forward);
/// - after_backward(u): reduce-scatter u's gradients (stage 08), then free u's gathered weights.
/// The model must leave both its weights and its gradients to the stage.
class FullyShardedUnits : public stage08::ShardedGradients {
 public:
  /// Allocates this rank's weight shard (bf16, zero) and plans one bucket per unit.
  FullyShardedUnits(GPT& model, Communicator& communicator, const ShardLayout& shard, const FsdpSettings& settings);
  /// Gathers unit `unit` (or waits for its prefetch) and prefetches the next.
  void before_forward(int unit) override;
  /// Frees unit `unit`'s gathered weights when resharding after forward.
  void after_forward(int unit) override;
  /// Gathers unit `unit` again unless still held, prefetches the one before, lends gradient storage.
  void before_backward(int unit) override;
  /// Reduce-scatters unit `unit`'s gradients and frees its gathered weights.
  void after_backward(int unit) override;

  /// Lends unit `unit` whole, zeroed weight storage so it can be initialised or loaded (Experiment::initialize_by_unit).
  void lend_for_initialization(int unit);
  /// Keeps this rank's piece of the just-initialised unit in the shard and frees the whole unit.
  void keep_after_initialization(int unit);
  /// Rounds the optimizer's updated fp32 `master` shard into this rank's bf16 weight shard. No all-gather follows:
  /// each unit is gathered when the next forward reaches it.
  void take_updated(Tensor master);
  /// This rank's bf16 weights, laid out like its shard.
  Tensor weight_shard() const { return weight_shard_; }
  /// The schedule of hook events, for tests and the README's timeline.
  FsdpSchedule& schedule() { return schedule_; }
  /// The most units whose gathered weights were held at once.
  int most_units_gathered() const { return most_gathered_; }
  /// One line for the log: "4 units, each reduce-scattered in F32 as soon as its gradients are complete, over 2
  /// ranks (mpi)".
  std::string describe() const;

 private:
  bool held(int unit) const { return gathered_[unit].data() != nullptr; }
  void issue_gather(int unit);
  void make_available(int unit, int next);
  void release(int unit);

  FsdpSettings settings_;
  Buffer weight_shard_storage_;
  Tensor weight_shard_;
  std::vector<Buffer> gathered_;                           // per unit: its whole weights while gathered
  std::vector<std::unique_ptr<PendingCollective>> pending_;  // per unit: its all-gather while in flight
  int units_gathered_ = 0;
  int most_gathered_ = 0;
  FsdpSchedule schedule_;
};

}  // namespace ladder::stage09
