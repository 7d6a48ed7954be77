// Where the GPT finds each unit's weights and gradients: its own flat buffers, or storage a stage lends it one
// unit at a time (ZeRO-2 lends gradient buckets during backward, FSDP gathered weights around each use).
#include "common/error.hpp"
#include "common/model/gpt.hpp"
#include "common/ops/ops.hpp"

namespace ladder {

void GPT::check_unit(int unit) const {
  LADDER_CHECK(unit >= 0 && unit < unit_count(), "unit ", unit, " does not exist: the model has units 0..",
               unit_count() - 1);
}

Tensor GPT::parameters() const {
  LADDER_CHECK(storage_.parameters == StorageOwner::Model,
               "this model has no flat parameter buffer: the stage holds its weights and lends them unit by unit");
  return view_of(parameter_storage_, dtype_);
}

Tensor GPT::gradients() const {
  LADDER_CHECK(storage_.gradients != StorageOwner::None, "this model is frozen: it has no gradients");
  LADDER_CHECK(storage_.gradients == StorageOwner::Model,
               "this model has no flat gradient buffer: the stage lends gradient storage unit by unit in backward");
  return view_of(gradient_storage_, dtype_);
}

Tensor GPT::unit_parameters(int unit) const {
  check_unit(unit);
  const Tensor& values = unit_parameters_[static_cast<std::size_t>(unit)];
  LADDER_CHECK(values.data() != nullptr || layout_.units()[unit].size == 0, "the weights of unit ", unit, " (",
               layout_.units()[unit].name, ") are not in place: the stage must attach them before the unit is used");
  return values;
}

Tensor GPT::unit_gradients(int unit) const {
  check_unit(unit);
  LADDER_CHECK(storage_.gradients != StorageOwner::None, "this model is frozen: unit ", unit, " has no gradients");
  const Tensor& values = unit_gradients_[static_cast<std::size_t>(unit)];
  LADDER_CHECK(values.data() != nullptr || layout_.units()[unit].size == 0, "the gradients of unit ", unit, " (",
               layout_.units()[unit].name, ") have no storage: the stage must attach it before the unit's backward");
  return values;
}

Tensor GPT::parameter(const std::string& name) const {
  const ParameterTensor& tensor = layout_.tensor(name);
  return unit_tensor_view(unit_parameters(tensor.unit), layout_.units()[tensor.unit], tensor);
}

Tensor GPT::gradient(const std::string& name) const {
  const ParameterTensor& tensor = layout_.tensor(name);
  return unit_tensor_view(unit_gradients(tensor.unit), layout_.units()[tensor.unit], tensor);
}

Tensor GPT::check_attachable(int unit, Tensor storage, const char* what) const {
  check_unit(unit);
  const ParameterUnit& expected = layout_.units()[unit];
  LADDER_CHECK(storage.numel() == expected.size, what, " for unit ", unit, " (", expected.name, ") must hold ",
               expected.size, " elements, got ", storage.numel());
  LADDER_CHECK(storage.dtype() == dtype_, what, " for unit ", unit, " must be ", dtype_name(dtype_), ", got ",
               dtype_name(storage.dtype()));
  LADDER_CHECK(storage.device() == device_, what, " for unit ", unit, " must be on ", device_name(device_), ", got ",
               device_name(storage.device()));
  return storage.slice(0, storage.numel());  // flat, whatever shape it came in
}

void GPT::attach_unit_parameters(int unit, Tensor storage) {
  LADDER_CHECK(storage_.parameters == StorageOwner::Stage,
               "attach_unit_parameters: this model owns its weights; build it with GPTStorage{.parameters = Stage}");
  unit_parameters_[static_cast<std::size_t>(unit)] = check_attachable(unit, storage, "weights");
}

void GPT::attach_unit_gradients(int unit, Tensor storage) {
  LADDER_CHECK(storage_.gradients == StorageOwner::Stage,
               "attach_unit_gradients: this model owns its gradients; build it with GPTStorage{.gradients = Stage}");
  unit_gradients_[static_cast<std::size_t>(unit)] = check_attachable(unit, storage, "gradient storage");
}

void GPT::detach_unit_parameters(int unit) {
  check_unit(unit);
  LADDER_CHECK(storage_.parameters == StorageOwner::Stage, "detach_unit_parameters: this model owns its weights");
  unit_parameters_[static_cast<std::size_t>(unit)] = Tensor();
}

void GPT::detach_unit_gradients(int unit) {
  check_unit(unit);
  LADDER_CHECK(storage_.gradients == StorageOwner::Stage, "detach_unit_gradients: this model owns its gradients");
  unit_gradients_[static_cast<std::size_t>(unit)] = Tensor();
}

void GPT::read_unit_weights(int unit, const std::function<void(Tensor)>& read) {
  check_unit(unit);
  announce(&UnitHooks::before_forward, unit);
  read(unit_parameters(unit));
  announce(&UnitHooks::after_forward, unit);
}

void GPT::zero_gradients() {
  if (storage_.gradients == StorageOwner::Model) {
    ops::set_zero(view_of(gradient_storage_, dtype_));
    return;
  }
  for (const Tensor& values : unit_gradients_) {
    if (values.data() != nullptr) ops::set_zero(values);
  }
}

}  // namespace ladder
