// The Tensor-level ops of ops.hpp around the model rather than in it: the loss, the gradient reductions and
// conversions, and the optimizer update. Same pattern as dispatch.cpp (which holds the layers): check, then
// call the CPU template for the storage type.
#include <cstdint>

#include "common/ops/cpu/compute_values.hpp"
#include "common/ops/cpu/cpu_ops.hpp"
#include "common/ops/op_checks.hpp"
#include "common/ops/ops.hpp"

namespace ladder::ops {

using cpu::visit_float_dtype;

void softmax_cross_entropy_forward(Tensor losses, Tensor logits, Tensor targets, std::int64_t vocab_size) {
  const ArgumentChecks check(__func__);
  check.on_cpu({{"losses", losses}, {"logits", logits}, {"targets", targets}});
  const std::int64_t Vp = check.last_extent({"logits", logits});
  const std::int64_t N = check.rows({"logits", logits}, Vp);
  check.require(vocab_size >= 1 && vocab_size <= Vp, "vocab_size ", vocab_size, " must lie in [1, ", Vp,
                "] (the padded width of logits ", logits.shape_string(), ")");
  check.element_count({"targets", targets}, N);
  check.element_count({"losses", losses}, N);
  check.dtype(DType::I32, {{"targets", targets}});
  check.dtype(compute_dtype(logits.dtype()), {{"losses", losses}});
  visit_float_dtype(logits.dtype(), __func__, [&](auto element) {
    using S = decltype(element);
    cpu::softmax_cross_entropy_forward(losses.as<ComputeType<S>>(), logits.as<S>(), targets.as<std::int32_t>(), N, Vp,
                                       vocab_size);
  });
}

void softmax_cross_entropy_backward(Tensor dlogits, Tensor logits, Tensor targets, std::int64_t vocab_size,
                                    double dloss) {
  const ArgumentChecks check(__func__);
  check.on_cpu({{"dlogits", dlogits}, {"logits", logits}, {"targets", targets}});
  const std::int64_t Vp = check.last_extent({"logits", logits});
  const std::int64_t N = check.rows({"logits", logits}, Vp);
  check.rows({"dlogits", dlogits}, Vp, N);
  check.require(vocab_size >= 1 && vocab_size <= Vp, "vocab_size ", vocab_size, " must lie in [1, ", Vp,
                "] (the padded width of logits ", logits.shape_string(), ")");
  check.element_count({"targets", targets}, N);
  check.dtype(DType::I32, {{"targets", targets}});
  check.dtype(logits.dtype(), {{"dlogits", dlogits}});
  visit_float_dtype(logits.dtype(), __func__, [&](auto element) {
    using S = decltype(element);
    cpu::softmax_cross_entropy_backward(dlogits.as<S>(), logits.as<S>(), targets.as<std::int32_t>(), N, Vp, vocab_size,
                                        dloss);
  });
}

double sum_of_squares(Tensor values) {
  const ArgumentChecks check(__func__);
  check.on_cpu({{"values", values}});
  return visit_float_dtype(values.dtype(), __func__, [&](auto element) {
    using S = decltype(element);
    return cpu::sum_of_squares(values.as<S>(), values.numel());
  });
}

void scale(Tensor values, double factor) {
  const ArgumentChecks check(__func__);
  check.on_cpu({{"values", values}});
  visit_float_dtype(values.dtype(), __func__, [&](auto element) {
    using S = decltype(element);
    cpu::scale(values.as<S>(), factor, values.numel());
  });
}

// accumulate and convert may mix dtypes (e.g. fp16 gradients into fp32 master gradients): two-level dispatch.
namespace {
template <class Kernel>
void dispatch_two_dtypes(const char* op, Tensor destination, Tensor source, Kernel kernel) {
  const ArgumentChecks check(op);
  check.on_cpu({{"destination", destination}, {"source", source}});
  check.element_count({"source", source}, destination.numel());
  visit_float_dtype(destination.dtype(), op, [&](auto destination_element) {
    visit_float_dtype(source.dtype(), op, [&](auto source_element) {
      using Destination = decltype(destination_element);
      using Source = decltype(source_element);
      kernel(destination.as<Destination>(), source.as<Source>(), destination.numel());
    });
  });
}
}  // namespace

void accumulate(Tensor destination, Tensor source) {
  dispatch_two_dtypes(__func__, destination, source,
                      [](auto* out, const auto* in, std::int64_t count) { cpu::accumulate(out, in, count); });
}

void convert(Tensor destination, Tensor source) {
  dispatch_two_dtypes(__func__, destination, source,
                      [](auto* out, const auto* in, std::int64_t count) { cpu::convert(out, in, count); });
}

void adamw_update(Tensor params, Tensor grads, Tensor first_moment, Tensor second_moment, const AdamWStep& hyper) {
  const ArgumentChecks check(__func__);
  check.on_cpu(
      {{"params", params}, {"grads", grads}, {"first_moment", first_moment}, {"second_moment", second_moment}});
  check.floating(
      {{"params", params}, {"grads", grads}, {"first_moment", first_moment}, {"second_moment", second_moment}});
  const std::int64_t count = params.numel();
  check.element_count({"grads", grads}, count);
  check.element_count({"first_moment", first_moment}, count);
  check.element_count({"second_moment", second_moment}, count);
  // Bias correction divides by 1 - β^t: it needs t >= 1 and β < 1.
  check.require(hyper.step >= 1, "step ", hyper.step, " must be at least 1 (steps count from 1)");
  check.require(hyper.beta1 >= 0 && hyper.beta1 < 1, "beta1 ", hyper.beta1, " must lie in [0, 1)");
  check.require(hyper.beta2 >= 0 && hyper.beta2 < 1, "beta2 ", hyper.beta2, " must lie in [0, 1)");
  check.require(hyper.epsilon > 0, "epsilon ", hyper.epsilon, " must be positive");
  visit_float_dtype(params.dtype(), __func__, [&](auto element) {
    using P = decltype(element);
    cpu::adamw_update(params.as<P>(), grads.data(), grads.dtype(), first_moment.data(), first_moment.dtype(),
                      second_moment.data(), second_moment.dtype(), count, hyper);
  });
}

}  // namespace ladder::ops
