// The step log's diagnostics: zero gradients (underflow), unchanged weights (lost updates), non-finite losses.
#include "common/train/update_diagnostics.hpp"

#include <cmath>
#include <iomanip>
#include <sstream>

#include "common/error.hpp"
#include "common/ops/ops.hpp"

namespace ladder {

namespace {

void check_float(Tensor values, const char* what) {
  LADDER_CHECK(values.dtype() != DType::I32, "UpdateDiagnostics expects float ", what, ", got ",
               dtype_name(values.dtype()));
}

// Counts the elements of a float tensor for which `test` (given the value as a double) holds. Converting is exact
// for every float dtype, so a test on the double is a test on the stored value.
template <class Test>
std::int64_t count_values(Tensor values, Test test) {
  std::int64_t matches = 0;
  const std::int64_t count = values.numel();
  auto count_in = [&](const auto* data) {
    for (std::int64_t i = 0; i < count; ++i) matches += test(double(float(data[i])));
  };
  switch (values.dtype()) {
    case DType::F32: count_in(values.as<float>()); break;
    case DType::F16: count_in(values.as<Half>()); break;
    case DType::BF16: count_in(values.as<BFloat16>()); break;
    default: {  // F64, read without a detour through float (I32 was refused when the tensor was first seen)
      const double* data = values.as<double>();
      for (std::int64_t i = 0; i < count; ++i) matches += test(data[i]);
      break;
    }
  }
  return matches;
}

// Counts the elements equal to zero, +0 and -0 alike (an underflowed gradient keeps its sign). fp16 and bf16 are
// read as bits, all but the sign bit zero: the same answer as converting each value, without a call per element.
std::int64_t count_zeros(Tensor values) {
  const std::int64_t count = values.numel();
  std::int64_t zeros = 0;
  if (dtype_size(values.dtype()) == 2) {
    const auto* bits = static_cast<const std::uint16_t*>(values.data());
    for (std::int64_t i = 0; i < count; ++i) zeros += (bits[i] & 0x7FFF) == 0;
    return zeros;
  }
  return count_values(values, [](double value) { return value == 0.0; });
}

// Compared as raw bits, not as numbers: a NaN that stays NaN is unchanged, and -0 → +0 is a change.
template <class Bits>
std::int64_t count_equal_bits(const void* a, const void* b, std::int64_t count) {
  const auto* left = static_cast<const Bits*>(a);
  const auto* right = static_cast<const Bits*>(b);
  std::int64_t equal = 0;
  for (std::int64_t i = 0; i < count; ++i) equal += left[i] == right[i];
  return equal;
}

std::int64_t count_equal(Tensor a, Tensor b) {
  switch (dtype_size(a.dtype())) {
    case 2: return count_equal_bits<std::uint16_t>(a.data(), b.data(), a.numel());
    case 4: return count_equal_bits<std::uint32_t>(a.data(), b.data(), a.numel());
    default: return count_equal_bits<std::uint64_t>(a.data(), b.data(), a.numel());
  }
}

}  // namespace

UpdateDiagnostics::UpdateDiagnostics(const ParameterLayout& layout, Tensor weights)
    : layout_(layout),
      weights_(weights),
      // Host memory, where the comparison runs; for a plan on the meta device, a planned copy like everything else.
      remembered_storage_(static_cast<std::size_t>(weights.bytes()), MemoryCategory::Workspace,
                          weights.device() == Device::Meta ? Device::Meta : Device::CPU),
      remembered_(view_of(remembered_storage_, weights.dtype())) {
  check_float(weights, "weights");
  LADDER_CHECK(weights.numel() == layout.padded_size(), "UpdateDiagnostics expects weights of ", layout.padded_size(),
               " elements (the layout's padded size), got ", weights.numel());
  for (const ParameterTensor& tensor : layout.tensors()) real_count_ += tensor.numel;
  remember_weights();
}

std::vector<std::pair<std::string, double>> UpdateDiagnostics::measure(double loss, Tensor gradients) {
  ++steps_measured_;
  if (weights_.device() == Device::Meta) return {};  // a plan has no values to count
  if (!std::isfinite(loss)) {
    ++nonfinite_losses_;
    if (first_nonfinite_step_ == 0) first_nonfinite_step_ = steps_measured_;
  }
  std::vector<std::pair<std::string, double>> extras = {{"zero_grads", zero_gradient_fraction(gradients)},
                                                        {"unchanged", unchanged_fraction()}};
  remember_weights();
  return extras;
}

double UpdateDiagnostics::zero_gradient_fraction(Tensor gradients) const {
  check_float(gradients, "gradients");
  LADDER_CHECK(gradients.numel() == layout_.padded_size(), "UpdateDiagnostics expects gradients of ",
               layout_.padded_size(), " elements (the layout's padded size), got ", gradients.numel());
  std::vector<unsigned char> staging;
  const Tensor host_gradients = ops::readable_on_host(gradients, staging);
  std::int64_t zeros = 0;
  for (const ParameterTensor& tensor : layout_.tensors()) {
    zeros += count_zeros(host_gradients.slice(tensor.offset, tensor.numel));
  }
  return static_cast<double>(zeros) / static_cast<double>(real_count_);
}

double UpdateDiagnostics::unchanged_fraction() const {
  std::int64_t unchanged = 0;
  std::vector<unsigned char> staging;
  const Tensor weights = ops::readable_on_host(weights_, staging);
  for (const ParameterTensor& tensor : layout_.tensors()) {
    const Tensor now = weights.slice(tensor.offset, tensor.numel);
    unchanged += count_equal(now, remembered_.slice(tensor.offset, tensor.numel));
  }
  return static_cast<double>(unchanged) / static_cast<double>(real_count_);
}

double UpdateDiagnostics::nonfinite_fraction() const {
  std::int64_t nonfinite = 0;
  std::vector<unsigned char> staging;
  const Tensor weights = ops::readable_on_host(weights_, staging);
  for (const ParameterTensor& tensor : layout_.tensors()) {
    const Tensor now = weights.slice(tensor.offset, tensor.numel);
    nonfinite += count_values(now, [](double value) { return !std::isfinite(value); });
  }
  return static_cast<double>(nonfinite) / static_cast<double>(real_count_);
}

std::string UpdateDiagnostics::summary() const {
  std::ostringstream line;
  if (nonfinite_losses_ == 0) {
    line << "all " << steps_measured_ << " step losses were finite";
  } else {
    // The run goes on (the lesson is to see it break), so say plainly that what follows is the wreck.
    line << "the loss was NaN or inf first at step " << first_nonfinite_step_ << " (" << nonfinite_losses_ << " of "
         << steps_measured_ << " steps); " << std::fixed << std::setprecision(1) << 100.0 * nonfinite_fraction()
         << "% of the weights are NaN or inf now, so the evaluation below measures a broken model";
  }
  return line.str();
}

void UpdateDiagnostics::remember_weights() { ops::copy(remembered_, weights_); }

}  // namespace ladder
