#include "common/train/training_state.hpp"

#include <utility>

#include "common/error.hpp"

namespace ladder {

TrainingState::TrainingState(const ParameterLayout& layout) {
  for (const ParameterUnit& unit : layout.units()) units_.emplace_back(unit.name, unit.size);
}

void TrainingState::add(const std::string& name, Tensor tensor) { add_tensor(name, tensor, StateScope::Replicated); }

void TrainingState::add_shard(const std::string& name, Tensor tensor) { add_tensor(name, tensor, StateScope::Sharded); }

void TrainingState::add_optimizer(const std::string& prefix, AdamW& optimizer) {
  add_optimizer_in(prefix, optimizer, StateScope::Replicated);
}

void TrainingState::add_optimizer_shard(const std::string& prefix, AdamW& optimizer) {
  add_optimizer_in(prefix, optimizer, StateScope::Sharded);
}

void TrainingState::add_integer(const std::string& name, std::function<std::int64_t()> read,
                                std::function<void(std::int64_t)> restore) {
  add_scalar({name, /*integer=*/true, {}, {}, std::move(read), std::move(restore)});
}

void TrainingState::add_number(const std::string& name, std::function<double()> read,
                               std::function<void(double)> restore) {
  add_scalar({name, /*integer=*/false, std::move(read), std::move(restore), {}, {}});
}

void TrainingState::add_scalar(StateScalar scalar) {
  check_new_name(scalar.name);
  scalars_.push_back(std::move(scalar));
}

void TrainingState::add_tensor(const std::string& name, Tensor tensor, StateScope scope) {
  check_new_name(name);
  LADDER_CHECK(tensor.data() != nullptr || tensor.numel() == 0, "training state '", name, "': the tensor has no memory");
  tensors_.push_back({name, tensor.reshaped({tensor.numel()}), scope});
}

void TrainingState::add_optimizer_in(const std::string& prefix, AdamW& optimizer, StateScope scope) {
  add_tensor(prefix + ".first_moment", optimizer.first_moment(), scope);
  add_tensor(prefix + ".second_moment", optimizer.second_moment(), scope);
  add_integer(
      prefix + ".step_count", [&optimizer] { return optimizer.step_count(); },
      [&optimizer](std::int64_t steps) { optimizer.set_step_count(steps); });
}

void TrainingState::check_new_name(const std::string& name) const {
  LADDER_CHECK(!name.empty(), "training state: a name is empty");
  for (const StateTensor& tensor : tensors_) {
    LADDER_CHECK(tensor.name != name, "training state: '", name, "' is added twice");
  }
  for (const StateScalar& scalar : scalars_) {
    LADDER_CHECK(scalar.name != name, "training state: '", name, "' is added twice");
  }
}

}  // namespace ladder
