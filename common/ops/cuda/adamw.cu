// AdamW on the GPU, exactly as ops/cpu/adamw.cpp (and torch.optim.AdamW) writes it, for parameters of one
// storage type whose gradients and moments may each be stored in another (stage 02 keeps everything in fp16,
// stage 03 keeps fp32 state). The kernel is templated on all four types; the host picks it from the DTypes.
#include <cmath>
#include <cstdint>

#include "common/error.hpp"
#include "common/ops/cuda/cuda_check.hpp"
#include "common/ops/cuda/cuda_ops.hpp"
#include "common/ops/cuda/device_values.cuh"
#include "common/ops/cuda/launch_sizes.cuh"

namespace ladder::ops::cuda {

namespace {

// The step's scalars, formed in double on the host as the CPU forms them, then rounded once to fp32.
struct AdamWScalars {
  float step_size;              // lr / (1 - β1^t)
  float bias_correction2_sqrt;  // sqrt(1 - β2^t)
  float decay_factor;           // 1 - lr·wd
  float beta1;
  float beta2;
  float one_minus_beta1;
  float one_minus_beta2;
  float epsilon;
  float gradient_scale;
  bool decays;  // wd != 0
};

AdamWScalars adamw_scalars(const AdamWStep& hyper) {
  const double step = static_cast<double>(hyper.step);
  AdamWScalars scalars;
  scalars.step_size = static_cast<float>(hyper.learning_rate / (1.0 - std::pow(hyper.beta1, step)));
  scalars.bias_correction2_sqrt = static_cast<float>(std::sqrt(1.0 - std::pow(hyper.beta2, step)));
  scalars.decay_factor = static_cast<float>(1.0 - hyper.learning_rate * hyper.weight_decay);
  scalars.beta1 = static_cast<float>(hyper.beta1);
  scalars.beta2 = static_cast<float>(hyper.beta2);
  scalars.one_minus_beta1 = static_cast<float>(1.0 - hyper.beta1);
  scalars.one_minus_beta2 = static_cast<float>(1.0 - hyper.beta2);
  scalars.epsilon = static_cast<float>(hyper.epsilon);
  scalars.gradient_scale = static_cast<float>(hyper.gradient_scale);
  scalars.decays = hyper.weight_decay != 0.0;
  return scalars;
}

// The CPU's operations in the CPU's order. The __f*_rn intrinsics are plain IEEE operations that nvcc may not
// fuse into FMAs (it fuses a*b + c by default; the CPU build does not), so each parameter and moment comes out
// bit for bit as on the CPU.
template <class Param, class Grad, class FirstMoment, class SecondMoment>
__global__ void adamw_kernel(Param* params, const Grad* grads, FirstMoment* first_moment, SecondMoment* second_moment,
                             std::int64_t count, AdamWScalars s) {
  for (std::int64_t i = grid_stride_start(); i < count; i += grid_stride_step()) {
    const float g = __fmul_rn(load_value(grads[i]), s.gradient_scale);
    float p = load_value(params[i]);
    if (s.decays) p = __fmul_rn(p, s.decay_factor);
    const float m = __fadd_rn(__fmul_rn(s.beta1, load_value(first_moment[i])), __fmul_rn(s.one_minus_beta1, g));
    const float v =
        __fadd_rn(__fmul_rn(s.beta2, load_value(second_moment[i])), __fmul_rn(__fmul_rn(s.one_minus_beta2, g), g));
    const float denominator = __fadd_rn(__fdiv_rn(__fsqrt_rn(v), s.bias_correction2_sqrt), s.epsilon);
    p = __fsub_rn(p, __fmul_rn(s.step_size, __fdiv_rn(m, denominator)));
    params[i] = store_value<Param>(p);
    // The update used the unrounded moments; only what is kept for the next step is rounded.
    first_moment[i] = store_value<FirstMoment>(m);
    second_moment[i] = store_value<SecondMoment>(v);
  }
}

// Calls `function` with a value of the storage type `dtype` names; the GPU ops have no F64 (and I32 is not a
// float), so those are refused before any kernel runs.
template <class Function>
void visit_cuda_float_dtype(DType dtype, const char* what, Function&& function) {
  switch (dtype) {
    case DType::F32: function(float{}); return;
    case DType::F16: function(Half{}); return;
    case DType::BF16: function(BFloat16{}); return;
    case DType::F64:
    case DType::I32: break;
  }
  throw LadderError(make_message("adamw_update: ", what, " of dtype ", dtype_name(dtype),
                                 " cannot be updated on the GPU (expected F32, F16 or BF16)"));
}

}  // namespace

template <class P>
void adamw_update(P* params, const void* grads, DType grads_dtype, void* first_moment, DType first_moment_dtype,
                  void* second_moment, DType second_moment_dtype, std::int64_t count, const AdamWStep& hyper) {
  const AdamWScalars scalars = adamw_scalars(hyper);
  visit_cuda_float_dtype(grads_dtype, "gradients", [&](auto grad_element) {
    using Grad = decltype(grad_element);
    visit_cuda_float_dtype(first_moment_dtype, "first moment", [&](auto first_element) {
      using FirstMoment = decltype(first_element);
      visit_cuda_float_dtype(second_moment_dtype, "second moment", [&](auto second_element) {
        using SecondMoment = decltype(second_element);
        if (count <= 0) return;
        adamw_kernel<P, Grad, FirstMoment, SecondMoment><<<grid_stride_blocks(count), kElementwiseThreads>>>(
            params, static_cast<const Grad*>(grads), static_cast<FirstMoment*>(first_moment),
            static_cast<SecondMoment*>(second_moment), count, scalars);
        check_launch("adamw_kernel");
      });
    });
  });
}

#define LADDER_INSTANTIATE_CUDA_ADAMW(P) \
  template void adamw_update<P>(P*, const void*, DType, void*, DType, void*, DType, std::int64_t, const AdamWStep&);
LADDER_FOR_EACH_CUDA_STORAGE_TYPE(LADDER_INSTANTIATE_CUDA_ADAMW)

}  // namespace ladder::ops::cuda
