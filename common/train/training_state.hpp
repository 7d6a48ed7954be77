/// @file training_state.hpp
/// @brief What a checkpoint holds: the tensors and numbers a stage carries from one step to the next, by name.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "common/model/parameter_layout.hpp"
#include "common/optim/adamw.hpp"
#include "common/tensor.hpp"

namespace ladder {

/// Who holds a tensor of the training state, and so who writes and reads it.
enum class StateScope {
  Replicated,  ///< every rank holds the same values: rank 0 writes them, every rank reads them back
  Sharded,     ///< each rank holds its own piece: every rank writes and reads its own
};

/// One tensor of the training state: a view of memory the stage owns (on any device), read when a checkpoint is
/// written and overwritten when one is restored.
struct StateTensor {
  std::string name;                          ///< e.g. "master_weights"
  Tensor tensor;                             ///< the values, in place
  StateScope scope = StateScope::Replicated;  ///< whole on every rank, or this rank's piece
};

/// One number carried between steps (a step count, a loss scale), the same on every rank: `read` when a
/// checkpoint is written, `restore` when one is read. Integers are kept exactly; numbers as doubles.
struct StateScalar {
  std::string name;                            ///< e.g. "adamw.step_count"
  bool integer = true;                         ///< an integer (exact) rather than a real number
  std::function<double()> read_number;         ///< the current value, when not an integer
  std::function<void(double)> restore_number;  ///< sets it, when not an integer
  std::function<std::int64_t()> read_integer;  ///< the current value, when an integer
  std::function<void(std::int64_t)> restore_integer;  ///< sets it, when an integer
};

/// Everything a stage must save so that a run stopped after step k and resumed continues with the same bits as a
/// run that never stopped. A stage fills it in a few lines once its objects exist; Experiment::resume restores it
/// from --resume's checkpoint and writes it to --checkpoint-dir. What is *not* here must be rebuilt from the step:
/// the batches and the learning rate are functions of (seed, step), gradients are recomputed every step, and the
/// project's random numbers are counter-based (drawn from a hash of the seed and a position, with no stream to
/// save), so the step itself, which the checkpoint records, is the data position and the RNG state.
class TrainingState {
 public:
  /// An empty state for a model of `layout`, whose units (and so each rank's pieces) the manifest records.
  explicit TrainingState(const ParameterLayout& layout);
  /// A tensor every rank holds whole and equal (a replicated model's weights): rank 0 writes it.
  void add(const std::string& name, Tensor tensor);
  /// This rank's own piece of a sharded tensor (ZeRO's master shard, FSDP's weight shard): each rank writes its own.
  void add_shard(const std::string& name, Tensor tensor);
  /// An optimizer over the whole layout: its moments as `prefix.first_moment`, `prefix.second_moment` and its step
  /// count, which bias correction divides by, as `prefix.step_count`.
  void add_optimizer(const std::string& prefix, AdamW& optimizer);
  /// The same for an optimizer over this rank's shard only (its moments are the rank's piece).
  void add_optimizer_shard(const std::string& prefix, AdamW& optimizer);
  /// An integer carried between steps, the same on every rank.
  void add_integer(const std::string& name, std::function<std::int64_t()> read,
                   std::function<void(std::int64_t)> restore);
  /// A real number carried between steps, the same on every rank (kept to the last bit).
  void add_number(const std::string& name, std::function<double()> read, std::function<void(double)> restore);

  /// The tensors, in the order they were added.
  const std::vector<StateTensor>& tensors() const { return tensors_; }
  /// The numbers, in the order they were added.
  const std::vector<StateScalar>& scalars() const { return scalars_; }
  /// The layout's units: name and elements, padding included.
  const std::vector<std::pair<std::string, std::int64_t>>& units() const { return units_; }

 private:
  void add_tensor(const std::string& name, Tensor tensor, StateScope scope);
  void add_scalar(StateScalar scalar);
  void add_optimizer_in(const std::string& prefix, AdamW& optimizer, StateScope scope);
  void check_new_name(const std::string& name) const;

  std::vector<std::pair<std::string, std::int64_t>> units_;
  std::vector<StateTensor> tensors_;
  std::vector<StateScalar> scalars_;
};

}  // namespace ladder
