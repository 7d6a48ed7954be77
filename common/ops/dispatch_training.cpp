// The Tensor-level ops of ops.hpp around the model rather than in it: the loss, the gradient reductions and
// conversions, and the optimizer update. Same pattern as dispatch.cpp (which holds the layers): check, then
// call the CPU or CUDA template for the device and storage type.
#include <cmath>
#include <cstdint>
#include <cstring>

#include "common/cuda_runtime.hpp"
#include "common/ops/device_dispatch.hpp"
#include "common/ops/op_checks.hpp"
#include "common/ops/ops.hpp"

namespace ladder::ops {

void softmax_cross_entropy_forward(Tensor losses, Tensor logits, Tensor targets, std::int64_t vocab_size) {
  const ArgumentChecks check(__func__);
  const Device device = check.same_device({{"losses", losses}, {"logits", logits}, {"targets", targets}});
  const std::int64_t Vp = check.last_extent({"logits", logits});
  const std::int64_t N = check.rows({"logits", logits}, Vp);
  check.require(vocab_size >= 1 && vocab_size <= Vp, "vocab_size ", vocab_size, " must lie in [1, ", Vp,
                "] (the padded width of logits ", logits.shape_string(), ")");
  check.element_count({"targets", targets}, N);
  check.element_count({"losses", losses}, N);
  check.dtype(DType::I32, {{"targets", targets}});
  check.dtype(compute_dtype(logits.dtype()), {{"losses", losses}});
  run_on_device(device, logits.dtype(), __func__, [&](auto element, auto backend) {
    using S = decltype(element);
    LADDER_BACKEND_CALL(backend, softmax_cross_entropy_forward, losses.as<ComputeType<S>>(), logits.as<S>(), targets.as<std::int32_t>(), N, Vp,
                                       vocab_size);
  });
}

void softmax_cross_entropy_backward(Tensor dlogits, Tensor logits, Tensor targets, std::int64_t vocab_size,
                                    double dloss) {
  const ArgumentChecks check(__func__);
  const Device device = check.same_device({{"dlogits", dlogits}, {"logits", logits}, {"targets", targets}});
  const std::int64_t Vp = check.last_extent({"logits", logits});
  const std::int64_t N = check.rows({"logits", logits}, Vp);
  check.rows({"dlogits", dlogits}, Vp, N);
  check.require(vocab_size >= 1 && vocab_size <= Vp, "vocab_size ", vocab_size, " must lie in [1, ", Vp,
                "] (the padded width of logits ", logits.shape_string(), ")");
  check.element_count({"targets", targets}, N);
  check.dtype(DType::I32, {{"targets", targets}});
  check.dtype(logits.dtype(), {{"dlogits", dlogits}});
  run_on_device(device, logits.dtype(), __func__, [&](auto element, auto backend) {
    using S = decltype(element);
    LADDER_BACKEND_CALL(backend, softmax_cross_entropy_backward, dlogits.as<S>(), logits.as<S>(), targets.as<std::int32_t>(), N, Vp, vocab_size,
                                        dloss);
  });
}

double sum_of_squares(Tensor values, double start) {
  const ArgumentChecks check(__func__);
  const Device device = check.same_device({{"values", values}});
  return run_on_device(device, values.dtype(), __func__, [&](auto element, auto backend) {
    using S = decltype(element);
    if constexpr (decltype(backend)::value == Device::CUDA) {
      return start + cuda::sum_of_squares(values.as<S>(), values.numel());
    } else {
      return cpu::sum_of_squares(values.as<S>(), values.numel(), start);
    }
  });
}

bool all_finite(Tensor values) {
  const ArgumentChecks check(__func__);
  const Device device = check.same_device({{"values", values}});
  if (device == Device::Meta) return true;  // a plan has no values, so nothing overflowed
  return run_on_device(device, values.dtype(), __func__, [&](auto element, auto backend) {
    using S = decltype(element);
    if constexpr (decltype(backend)::value == Device::CUDA) {
      // Squares summed in double overflow only where an element is inf or NaN (fp32's largest squared, times a
      // billion elements, is still finite), so the norm's kernel answers the question too.
      return std::isfinite(cuda::sum_of_squares(values.as<S>(), values.numel()));
    } else {
      return cpu::all_finite(values.as<S>(), values.numel());
    }
  });
}

void scale(Tensor values, double factor) {
  const ArgumentChecks check(__func__);
  const Device device = check.same_device({{"values", values}});
  run_on_device(device, values.dtype(), __func__, [&](auto element, auto backend) {
    using S = decltype(element);
    LADDER_BACKEND_CALL(backend, scale, values.as<S>(), factor, values.numel());
  });
}

// accumulate and convert may mix dtypes (e.g. fp16 gradients into fp32 master gradients): the destination's
// dtype picks the backend and outer type, the source's the inner one.
namespace {
template <class Kernel>
void dispatch_two_dtypes(const char* op, Tensor destination, Tensor source, Kernel kernel) {
  const ArgumentChecks check(op);
  const Device device = check.same_device({{"destination", destination}, {"source", source}});
  check.element_count({"source", source}, destination.numel());
  run_on_device(device, destination.dtype(), op, [&](auto destination_element, auto backend) {
    using Destination = decltype(destination_element);
    auto with_source = [&](auto source_element) {
      using Source = decltype(source_element);
      kernel(destination.as<Destination>(), source.as<Source>(), destination.numel(), backend);
    };
    // The source's types are the backend's own: the CUDA branch never names a kernel for double.
    if constexpr (decltype(backend)::value == Device::CUDA) {
      visit_cuda_dtype(source.dtype(), op, with_source);
    } else {
      cpu::visit_float_dtype(source.dtype(), op, with_source);
    }
  });
}
}  // namespace

void accumulate(Tensor destination, Tensor source) {
  dispatch_two_dtypes(__func__, destination, source, [](auto* out, const auto* in, std::int64_t count, auto backend) {
    LADDER_BACKEND_CALL(backend, accumulate, out, in, count);
  });
}

void convert(Tensor destination, Tensor source) {
  dispatch_two_dtypes(__func__, destination, source, [](auto* out, const auto* in, std::int64_t count, auto backend) {
    LADDER_BACKEND_CALL(backend, convert, out, in, count);
  });
}

void set_zero(Tensor values) {
  if (values.bytes() == 0 || values.device() == Device::Meta) return;
  if (values.device() == Device::CUDA) {
    cuda_zero(values.data(), static_cast<std::size_t>(values.bytes()));
  } else {
    std::memset(values.data(), 0, static_cast<std::size_t>(values.bytes()));
  }
}

void copy(Tensor destination, Tensor source) {
  const ArgumentChecks check(__func__);
  check.dtype(destination.dtype(), {{"source", source}});
  check.element_count({"source", source}, destination.numel());
  if (source.bytes() == 0 || destination.data() == source.data()) return;
  if (destination.device() == Device::Meta || source.device() == Device::Meta) {
    // A plan holds no values: whatever is read from it reads as zeros, and writing to it writes nothing.
    if (destination.device() == Device::CPU) std::memset(destination.data(), 0, static_cast<std::size_t>(source.bytes()));
    LADDER_CHECK(destination.device() != Device::CUDA, "copy: from the meta device to the GPU");
    return;
  }
  if (destination.device() == Device::CPU && source.device() == Device::CPU) {
    std::memcpy(destination.data(), source.data(), static_cast<std::size_t>(source.bytes()));
  } else {
    cuda_copy(destination.data(), source.data(), static_cast<std::size_t>(source.bytes()));
  }
}

void adamw_update(Tensor params, Tensor grads, Tensor first_moment, Tensor second_moment, const AdamWStep& hyper,
                  Tensor rounded_copy) {
  const ArgumentChecks check(__func__);
  // An absent rounded_copy (no copy asked for) is skipped by same_device and reads as F32 to floating.
  const Device device = check.same_device({{"params", params}, {"grads", grads}, {"first_moment", first_moment},
                                           {"second_moment", second_moment}, {"rounded_copy", rounded_copy}});
  check.floating({{"params", params}, {"grads", grads}, {"first_moment", first_moment},
                  {"second_moment", second_moment}, {"rounded_copy", rounded_copy}});
  const std::int64_t count = params.numel();
  check.element_count({"grads", grads}, count);
  check.element_count({"first_moment", first_moment}, count);
  check.element_count({"second_moment", second_moment}, count);
  // Bias correction divides by 1 - β^t: it needs t >= 1 and β < 1.
  check.require(hyper.step >= 1, "step ", hyper.step, " must be at least 1 (steps count from 1)");
  check.require(hyper.beta1 >= 0 && hyper.beta1 < 1, "beta1 ", hyper.beta1, " must lie in [0, 1)");
  check.require(hyper.beta2 >= 0 && hyper.beta2 < 1, "beta2 ", hyper.beta2, " must lie in [0, 1)");
  check.require(hyper.epsilon > 0, "epsilon ", hyper.epsilon, " must be positive");
  const bool copies = rounded_copy.data() != nullptr;
  if (copies) {
    check.element_count({"rounded_copy", rounded_copy}, count);
    check.require(params.dtype() == DType::F32, "a rounded copy is made from F32 params, not ",
                  dtype_name(params.dtype()));
  }
  // Every span is read and written in place, and the CPU update declares them __restrict: spans that overlap
  // would be updated in an order no one chose.
  check.disjoint({{"params", params}, {"grads", grads}, {"first_moment", first_moment},
                  {"second_moment", second_moment}, {"rounded_copy", rounded_copy}});
  run_on_device(device, params.dtype(), __func__, [&](auto element, auto backend) {
    using P = decltype(element);
    if constexpr (decltype(backend)::value == Device::CUDA) {
      cuda::adamw_update(params.as<P>(), grads.data(), grads.dtype(), first_moment.data(), first_moment.dtype(),
                         second_moment.data(), second_moment.dtype(), count, hyper);
    } else {
      cpu::adamw_update(params.as<P>(), grads.data(), grads.dtype(), first_moment.data(), first_moment.dtype(),
                        second_moment.data(), second_moment.dtype(), count, hyper,
                        copies ? rounded_copy.data() : nullptr, copies ? rounded_copy.dtype() : DType::F32);
    }
  });
  // The GPU's update is bound by memory bandwidth either way: its copy is a second kernel, as before.
  if (copies && device == Device::CUDA) convert(rounded_copy, params);
}

}  // namespace ladder::ops
