/// @file device_dispatch.hpp
/// @brief How an op's entry point picks its implementation: by the tensors' device (cpu:: or cuda::), then by
/// their storage type.
///
/// Each entry point passes one generic lambda `[&](auto element, auto device) { ... }`. `element` is a value of the
/// storage type (float, double, Half, BFloat16); `device` is a DeviceTag, and LADDER_BACKEND_CALL(device, op, ...)
/// calls cpu::op or cuda::op with the same arguments, since both backends share names and signatures. In a build
/// without CUDA the cuda:: branch is never instantiated, so nothing links against kernels that do not exist.
#pragma once

#include <type_traits>

#include "common/dtype.hpp"
#include "common/error.hpp"
#include "common/memory.hpp"
#include "common/ops/cpu/compute_values.hpp"
#include "common/ops/cpu/cpu_ops.hpp"
#include "common/ops/cuda/cuda_ops.hpp"

namespace ladder::ops {

/// Whether this build compiled the CUDA ops.
#ifdef LADDER_WITH_CUDA
inline constexpr bool kCudaBuild = true;
#else
inline constexpr bool kCudaBuild = false;
#endif

/// A device as a type, so that `if constexpr` can choose a backend at compile time.
template <Device D>
using DeviceTag = std::integral_constant<Device, D>;

/// Calls `function` with a value of the CUDA storage type of `dtype` (float, Half, BFloat16); F64 and I32 throw.
template <class Function>
decltype(auto) visit_cuda_dtype(DType dtype, const char* op, Function&& function) {
  switch (dtype) {
    case DType::F32: return function(float{});
    case DType::F16: return function(Half{});
    case DType::BF16: return function(BFloat16{});
    case DType::F64:
      throw LadderError(make_message(op, ": F64 tensors run only on the CPU (the GPU ops take F32, F16 or BF16)"));
    case DType::I32: break;
  }
  throw LadderError(make_message(op, ": dtype ", dtype_name(dtype),
                                 " is not a floating-point storage type (expected F32, F16 or BF16 on the GPU)"));
}

/// Runs `call(element, DeviceTag)` for `dtype` on `device`. On the meta device nothing runs (the checks before it
/// have run): an op that returns a value returns zero.
template <class Call>
decltype(auto) run_on_device(Device device, DType dtype, const char* op, Call&& call) {
  if (device == Device::Meta) {
    using Result = decltype(cpu::visit_float_dtype(dtype, op, [&](auto element) {
      return call(element, DeviceTag<Device::CPU>{});
    }));
    if constexpr (std::is_void_v<Result>) {
      return;
    } else {
      return Result{};
    }
  }
  if (device == Device::CUDA) {
    if constexpr (kCudaBuild) {
      return visit_cuda_dtype(dtype, op, [&](auto element) { return call(element, DeviceTag<Device::CUDA>{}); });
    } else {
      throw LadderError(make_message(op, ": a tensor is on cuda, but this build of ladder has no CUDA"));
    }
  }
  return cpu::visit_float_dtype(dtype, op, [&](auto element) { return call(element, DeviceTag<Device::CPU>{}); });
}

}  // namespace ladder::ops

/// Calls the op `name` of the backend `device_tag` stands for: cuda::name(...) or cpu::name(...).
#define LADDER_BACKEND_CALL(device_tag, name, ...)                                    \
  do {                                                                                \
    if constexpr (decltype(device_tag)::value == ::ladder::Device::CUDA) {            \
      ::ladder::ops::cuda::name(__VA_ARGS__);                                         \
    } else {                                                                          \
      ::ladder::ops::cpu::name(__VA_ARGS__);                                          \
    }                                                                                 \
  } while (0)
